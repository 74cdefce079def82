"""Stopping background tasks for sure.

On Python 3.11 a cancellation can get lost: `asyncio.wait_for` returns the result of an
awaitable that completed in the same loop iteration as the cancellation, and the task goes
on (still counted as `cancelling()`). psycopg_pool waits for a free connection with
`wait_for`, so a loop cancelled while it gets a connection (a sweep right after start) could
carry on forever and whoever awaited it would hang. `stop` cancels again until the task ends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

RECANCEL_S = 0.5  # how long a cancelled task gets before it is cancelled again


async def stop(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks and wait until every one has ended; log any that failed."""
    given = [t for t in tasks if t is not None]
    while pending := [t for t in given if not t.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in given:
        if not task.cancelled() and task.exception() is not None:
            log.warning("task %s had failed: %r", task.get_name(), task.exception())
