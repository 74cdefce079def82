"""Synthetic probe traffic while a rollout runs, so that the analysis is never short of data.

Each probe is a `POST /api/v1/query` with the header X-Ragops-Probe (the runtime counts it
with `source="probe"`) and the operator's API key (`probe_key`), sent straight to a pod: at
`ratePerSecond` to the canary's pods and as many to stable's, round robin over the ready
pods of each. Probes are traffic, not state:
they live in memory and restart with the operator.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from rag_operator.builders.common import ADMIN_KEY, api_keys_name
from rag_operator.kube import Kube, KubeError
from rag_operator.models import API_PORT, RagSystem
from rag_operator.models.naming import PROBE_HEADER
from rag_operator.observed import Observed, PodInfo
from rag_operator.release.state import Plan

log = logging.getLogger(__name__)
Key = tuple[str, str]


@dataclass(frozen=True)
class ProbeTargets:
    """Pod addresses of each side, and what to send."""

    canary: tuple[str, ...]
    stable: tuple[str, ...]
    rate_per_second: float
    collection: str
    query: str
    key: str | None = field(default=None, repr=False)  # the API key sent, if any

    def headers(self) -> dict[str, str]:
        return auth_headers(self.key, PROBE_HEADER, "1")


def auth_headers(key: str | None, header: str, value: str) -> dict[str, str]:
    """The probe marker, and the Bearer key when there is one."""
    out = {header: value}
    if key:
        out["Authorization"] = f"Bearer {key}"
    return out


@dataclass(frozen=True)
class ProbeKey:
    """The key the operator's own requests send (None = anonymous access), or why none."""

    key: str | None = field(default=None, repr=False)
    problem: str = ""


def probe_key_ref(rs: RagSystem) -> tuple[str, str] | None:
    """(Secret, key) of the key probes send; None when no key is needed or none is known."""
    ref = rs.spec.rollout.canary.probes.api_key_secret_ref
    if ref is not None:
        return ref.name, ref.key
    if rs.spec.api.api_keys_secret_ref is None and not rs.spec.api.auth.anonymous:
        return api_keys_name(rs), ADMIN_KEY
    return None


async def probe_key(rs: RagSystem, kube: Kube) -> ProbeKey:
    """Read the probes' key. Without one, against a system that needs one, every probe and
    golden query would get 401: they are not sent and the problem says what to set."""
    ref = probe_key_ref(rs)
    if ref is None:
        if rs.spec.api.auth.anonymous:
            return ProbeKey()
        return ProbeKey(
            problem="no API key for the operator's probes: api.apiKeysSecretRef names the "
            "keys, so set spec.rollout.canary.probes.apiKeySecretRef to one of them"
        )
    where = f"Secret {ref[0]!r} key {ref[1]!r} (the probes' API key)"
    try:
        secret = await kube.get("v1", "Secret", rs.namespace, ref[0])
    except KubeError as exc:
        return ProbeKey(problem=f"{where}: API error: {exc.message[:200]}")
    value = ((secret or {}).get("data") or {}).get(ref[1])
    if not value:
        return ProbeKey(problem=f"{where}: not found")
    return ProbeKey(key=base64.b64decode(value).decode().strip())


def is_canary(pod: PodInfo) -> bool:
    return pod.component == "canary" or pod.track == "canary"


def ready_ips(pods: Sequence[PodInfo], canary: bool) -> tuple[str, ...]:
    return tuple(
        sorted(
            p.ip
            for p in pods
            if p.ready and p.ip and is_canary(p) == canary and (canary or p.component == "api")
        )
    )


def probe_targets(
    rs: RagSystem, observed: Observed, plan: Plan, active: bool, key: ProbeKey
) -> ProbeTargets | None:
    """What to probe this pass, or None (no rollout, probes off, no key, no ready pod)."""
    probes = rs.spec.rollout.canary.probes
    if not active or probes.rate_per_second <= 0 or key.problem:
        return None
    canary = ready_ips(observed.pods, True) if plan.canary_version else ()
    stable = ready_ips(observed.pods, False)
    if not canary and not stable:
        return None
    return ProbeTargets(
        canary, stable, probes.rate_per_second, probes.collection, probes.query, key.key
    )


class Prober:
    """One probe task per RagSystem, replaced when its targets change."""

    def __init__(self) -> None:
        self._tasks: dict[Key, tuple[ProbeTargets, asyncio.Task[None]]] = {}
        self.sent = 0

    def update(self, key: Key, targets: ProbeTargets | None) -> None:
        running = self._tasks.get(key)
        if running is not None and running[0] == targets:
            return
        if running is not None:
            running[1].cancel()
            del self._tasks[key]
        if targets is not None:
            self._tasks[key] = (targets, asyncio.create_task(self._loop(targets)))

    async def close(self) -> None:
        tasks = [t for _, t in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, targets: ProbeTargets) -> None:
        period = 1.0 / targets.rate_per_second
        body = {"collection": targets.collection, "query": targets.query}
        headers = targets.headers()
        sides = [itertools.cycle(ips) for ips in (targets.canary, targets.stable) if ips]
        timeout = aiohttp.ClientTimeout(total=max(5.0, period * 4))
        in_flight: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                while True:
                    for side in sides:
                        send = self._send(session, next(side), body, headers)
                        task = asyncio.create_task(send)
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                    await asyncio.sleep(period)
            finally:
                for task in list(in_flight):
                    task.cancel()

    async def _send(
        self,
        session: aiohttp.ClientSession,
        ip: str,
        body: dict[str, str],
        headers: dict[str, str],
    ) -> None:
        url = f"http://{ip}:{API_PORT}/api/v1/query"
        try:
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
            self.sent += 1
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.debug("probe to %s failed: %s", ip, exc)
