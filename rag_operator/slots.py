"""Reconcile slots: at most N passes at once, a system's first pass ahead of the resyncs.

Under a burst (hundreds of RagSystems applied at once) every child event of a system already
created wakes its resync loop; with one plain semaphore those passes took the slots from
systems not yet created, whose children then waited behind status refreshes. Here a waiting
pass marked urgent (a create or a spec change: what a user is waiting for) gets the next free
slot before any waiting resync; passes of one priority run in arrival order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

URGENT_TRIGGERS = frozenset({"create", "update"})


class Slots:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"slots: size must be at least 1, not {size}")
        self.free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def hold(self, urgent: bool = False) -> AsyncIterator[None]:
        """A slot for the duration of the block (waiting for one if none is free)."""
        if self.free > 0:  # a released slot goes to a waiter first: free > 0, nobody waits
            self.free -= 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), fut))
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release()  # granted as it was cancelled: pass the slot on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, _, fut = heapq.heappop(self._waiting)
            if not fut.done():
                fut.set_result(None)
                return
        self.free += 1
