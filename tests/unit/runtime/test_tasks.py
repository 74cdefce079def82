"""`rag_runtime.tasks.stop`: background tasks end for sure.

Covers: a task whose cancellation `asyncio.wait_for` swallowed (Python 3.11 returns a result
that completed in the same loop iteration as the cancellation) still ends; so does a task
that ignores a cancellation outright; a task that had failed is logged, not raised; None and
finished tasks are fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from rag_runtime import tasks


async def _sweep_like(ready: asyncio.Future[int]) -> None:
    """Gets a value through `wait_for` (as psycopg_pool hands out connections), then sleeps."""
    while True:
        await asyncio.wait_for(ready, 10)
        await asyncio.sleep(30)


def test_a_task_whose_cancellation_wait_for_swallowed_still_stops() -> None:
    async def scenario() -> bool:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(_sweep_like(ready))
        await asyncio.sleep(0)  # the task waits in wait_for
        ready.set_result(1)  # the value arrives in the loop iteration of the cancellation
        await asyncio.wait_for(tasks.stop(task), 10)
        return task.cancelled()

    assert asyncio.run(scenario())


def test_a_task_that_ignores_a_cancellation_still_stops() -> None:
    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        await asyncio.sleep(30)

    async def scenario() -> bool:
        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        await asyncio.wait_for(tasks.stop(task), 10)
        return task.cancelled()

    assert asyncio.run(scenario())


def test_a_failed_task_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("broken sweep")

    async def scenario() -> None:
        task = asyncio.create_task(fails(), name="sweep")
        await asyncio.sleep(0)
        await tasks.stop(task, None)

    with caplog.at_level(logging.WARNING, logger="rag_runtime.tasks"):
        asyncio.run(scenario())
    assert "task sweep had failed: ValueError('broken sweep')" in caplog.text
