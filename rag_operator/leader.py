"""Leader election on a `coordination.k8s.io/v1` Lease, so two replicas can run.

Only the holder of the Lease runs kopf (and with it every handler and watch cache); the
other replicas wait, serving /healthz and /metrics, and retry every `retry_s`. The holder
renews every `renew_s`; a replica takes the Lease over once it has seen the same record,
unrenewed, for `duration_s` of its own clock (never comparing clocks across machines). The
holder that cannot renew within `renew_deadline_s` gives up leadership: it stops its kopf
before another replica can take over, so two replicas never reconcile at once. On a clean
stop the holder releases the Lease, and the standby takes over within `retry_s`.

Writes are conditional on the Lease's resourceVersion: of two replicas trying at once, one
wins and the other gets a 409. `decide` is the pure rule; `Elector` does the I/O through
`rag_operator.kube` in a thread of its own, beside kopf's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rag_operator import metrics
from rag_operator.kube import Kube, KubeError

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"


class Decision(StrEnum):
    TAKE = "take"  # free, expired or ours: write it with us as holder
    WAIT = "wait"  # someone else holds it


@dataclass(frozen=True)
class Timing:
    duration_s: float = 8.0
    renew_s: float = 2.0
    renew_deadline_s: float = 6.0
    retry_s: float = 1.0


def micro_time(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decide(spec: dict[str, Any], identity: str, unchanged_for_s: float) -> Decision:
    """Whether to write the Lease: it is ours, nobody holds it, or the holder has not
    renewed it for longer than its leaseDurationSeconds (as seen on our own clock)."""
    holder = spec.get("holderIdentity") or ""
    if not holder or holder == identity:
        return Decision.TAKE
    duration = float(spec.get("leaseDurationSeconds") or 0)
    return Decision.TAKE if unchanged_for_s > duration else Decision.WAIT


def lease_body(
    name: str, namespace: str, identity: str, timing: Timing, now: datetime, old: dict[str, Any]
) -> dict[str, Any]:
    """The Lease with us as holder (from `old`, the record read, or a new one)."""
    spec = dict(old.get("spec") or {})
    taken = spec.get("holderIdentity") != identity
    stamp = micro_time(now)
    if taken:
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if old else 0)
    spec.update(
        holderIdentity=identity, leaseDurationSeconds=int(timing.duration_s), renewTime=stamp
    )
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    version = (old.get("metadata") or {}).get("resourceVersion")
    if version:
        meta["resourceVersion"] = version
    return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": meta, "spec": spec}


class Elector:
    """Acquires and renews the Lease; `acquired` and `lost` are threading events."""

    def __init__(
        self, kube: Kube, namespace: str, name: str, identity: str, timing: Timing = Timing()
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.timing = timing
        self.acquired = threading.Event()
        self.lost = threading.Event()
        self.stopping = threading.Event()
        self._seen: tuple[str, float] = ("", 0.0)  # (record, monotonic time first seen)
        self.thread: threading.Thread | None = None

    def _unchanged_for(self, lease: dict[str, Any]) -> float:
        spec = lease.get("spec") or {}
        record = f"{spec.get('holderIdentity')}|{spec.get('renewTime')}"
        now = time.monotonic()
        if record != self._seen[0]:
            self._seen = (record, now)
        return now - self._seen[1]

    async def try_once(self) -> bool:
        """One attempt to take or renew; True when we hold the Lease afterwards."""
        lease = await self.kube.get(LEASE_API, "Lease", self.namespace, self.name)
        now = datetime.now(UTC)
        if lease is None:
            body = lease_body(self.name, self.namespace, self.identity, self.timing, now, {})
            return await self.kube.create(body)
        spec = lease.get("spec") or {}
        if decide(spec, self.identity, self._unchanged_for(lease)) is Decision.WAIT:
            return False
        body = lease_body(self.name, self.namespace, self.identity, self.timing, now, lease)
        try:
            await self.kube.replace(body)
        except KubeError as exc:
            if exc.status == 409:
                return False  # another replica wrote it first
            raise
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_once()
        except KubeError as exc:
            log.warning("leader election: %s", exc)
            return False

    async def acquire(self) -> None:
        while not self.stopping.is_set():
            if await self._attempt():
                log.info(
                    "leader election: %s holds lease %s/%s",
                    self.identity,
                    self.namespace,
                    self.name,
                )
                metrics.LEADER.set(1)
                self.acquired.set()
                return
            await asyncio.sleep(self.timing.retry_s)

    async def keep(self) -> None:
        """Renew until stopped; set `lost` when a renewal does not succeed in time."""
        last_ok = time.monotonic()
        while not self.stopping.is_set():
            await asyncio.sleep(self.timing.renew_s)
            if await self._attempt():
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > self.timing.renew_deadline_s:
                log.error("leader election: lease %s lost, stopping", self.name)
                metrics.LEADER.set(0)
                self.lost.set()
                return

    async def release(self) -> None:
        """Give the Lease up (holder cleared), so a standby takes over at once."""
        with contextlib.suppress(KubeError):
            lease = await self.kube.get(LEASE_API, "Lease", self.namespace, self.name)
            spec = (lease or {}).get("spec") or {}
            if lease is not None and spec.get("holderIdentity") == self.identity:
                lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1}
                await self.kube.replace(lease)
        metrics.LEADER.set(0)

    async def run(self) -> None:
        try:
            await self.acquire()
            if self.acquired.is_set():
                await self.keep()
            if not self.lost.is_set():
                await self.release()
        finally:
            await self.kube.close()

    def start(self) -> None:
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self._run_until_stopped()), name="leader", daemon=True
        )
        self.thread.start()

    async def _run_until_stopped(self) -> None:
        task = asyncio.create_task(self.run())
        stop = asyncio.create_task(asyncio.to_thread(self.stopping.wait))
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            # Stopping: the renew loop notices within renew_s, then releases the Lease.
            await asyncio.wait({task}, timeout=self.timing.renew_s + 5)
        self.stopping.set()  # ends the waiting thread when the Lease was lost
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stop
