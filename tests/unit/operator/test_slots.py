"""Reconcile slots (`rag_operator.slots.Slots`).

Aspects covered: no more than `size` holders at once; a waiting urgent pass (a create) gets
the next slot before resyncs that waited longer; passes of one priority keep their order; a
waiter cancelled before or after it was granted a slot leaks nothing; a size below 1 is
refused naming the size.
"""

from __future__ import annotations

import asyncio

import pytest

from rag_operator.slots import URGENT_TRIGGERS, Slots


def test_creates_and_spec_changes_are_urgent_resyncs_are_not() -> None:
    assert {"create", "update"} <= URGENT_TRIGGERS
    assert "resync" not in URGENT_TRIGGERS
    assert "resume" not in URGENT_TRIGGERS


def test_never_more_holders_than_slots() -> None:
    async def main() -> int:
        slots, inside, peak = Slots(3), 0, 0

        async def one() -> None:
            nonlocal inside, peak
            async with slots.hold():
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.001)
                inside -= 1

        await asyncio.gather(*(one() for _ in range(20)))
        assert slots.free == 3
        return peak

    assert asyncio.run(main()) == 3


def test_an_urgent_pass_overtakes_waiting_resyncs() -> None:
    async def main() -> list[str]:
        slots, order = Slots(1), []
        release = asyncio.Event()

        async def holder() -> None:
            async with slots.hold():
                await release.wait()

        async def one(name: str, urgent: bool) -> None:
            async with slots.hold(urgent=urgent):
                order.append(name)

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(one(f"resync-{i}", False)) for i in range(3)]
        await asyncio.sleep(0)
        waiters.append(asyncio.create_task(one("create", True)))
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *waiters)
        return order

    assert asyncio.run(main()) == ["create", "resync-0", "resync-1", "resync-2"]


@pytest.mark.parametrize("granted", [False, True])
def test_a_cancelled_waiter_leaks_no_slot(granted: bool) -> None:
    async def main() -> int:
        slots = Slots(1)
        release = asyncio.Event()

        async def holder() -> None:
            async with slots.hold():
                await release.wait()

        async def waiter() -> None:
            async with slots.hold():
                pytest.fail("a cancelled waiter ran")

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        second = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        if granted:
            release.set()
            await first  # the slot goes to the waiter, which is cancelled before it runs
        second.cancel()
        release.set()
        await asyncio.gather(first, second, return_exceptions=True)
        async with slots.hold():  # still there
            pass
        return slots.free

    assert asyncio.run(main()) == 1


def test_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1, not 0"):
        Slots(0)
