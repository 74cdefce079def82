"""kopf wiring: thin handlers that call `reconcile`, fed by the operator's own watch caches.

Every RagSystem is reconciled on create, update and resume, and then by a per-object daemon
that wakes when one of its children changes (the watch caches of `rag_operator.watches` call
`State.wake`) or at the latest every `resync_seconds`. Each pass compares desired children
with the watch caches (one per cached kind of `children.KINDS`, label-selected by the API
server, so only the operator's own objects reach the process), so an unchanged system costs
no API writes and a hand-edited or deleted child is put back within a second or so. No pass
runs before the caches have synced. A background task asks the API every
`discovery_seconds` which optional CRDs it serves, starts or stops each optional kind's cache
on its own, and wakes every system when the set changes. kopf watches only RagSystems (and
keeps its own state in their annotations).

The configuration (`OperatorConfig`) comes through kopf's memo (`rag_operator.main` puts it
there); nothing here reads the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from rag_operator import metrics
from rag_operator.backup import job_key, plan_backup
from rag_operator.builders.common import api_keys_name, credentials_name
from rag_operator.children import Capabilities
from rag_operator.conditions import (
    invalid_status,
    now_rfc3339,
    parse_time,
    rag_object,
)
from rag_operator.kube import Kube, KubeError, load_configuration
from rag_operator.models import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    OperatorConfig,
    Phase,
    RagSystem,
)
from rag_operator.models.naming import (
    ANNOTATION_PREFIX,
    FIELD_MANAGER,
    FINALIZER,
)
from rag_operator.models.ragbackup import (
    BACKUP_API_VERSION,
    BACKUP_KIND,
    BACKUP_PLURAL,
    BackupPhase,
    RagBackup,
)
from rag_operator.models.status import RolloutStatus
from rag_operator.observed import Observed
from rag_operator.pacing import StatusPacer, replacing_patch
from rag_operator.reconcile import AppliedCache, Outcome, finalize, reconcile
from rag_operator.release.probes import Prober
from rag_operator.release.prometheus import Prometheus
from rag_operator.slots import URGENT_TRIGGERS, Slots
from rag_operator.watches import Caches

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.2
Key = tuple[str, str]


@dataclass
class State:
    """What the operator keeps in memory (rebuilt from the cluster on restart)."""

    kube: Kube
    cfg: OperatorConfig
    caps: Capabilities = field(default_factory=Capabilities)
    applied: AppliedCache = field(default_factory=AppliedCache)
    locks: defaultdict[Key, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    failures: dict[Key, int] = field(default_factory=dict)
    not_before: dict[Key, float] = field(default_factory=dict)
    phases: dict[Key, str] = field(default_factory=dict)
    wakeups: dict[Key, asyncio.Event] = field(default_factory=dict)
    # The release: Prometheus for the analysis, probe traffic, and when a rollout's next
    # analysis is due (the resync daemon wakes then instead of at its period).
    prom: Prometheus = field(default_factory=Prometheus)
    prober: Prober = field(default_factory=Prober)
    due: dict[Key, float] = field(default_factory=dict)
    # The rollout status last written per system: a pass that runs before the watch has
    # delivered that write reads it from here, not from the stale body (no step twice).
    rollouts: dict[Key, RolloutStatus] = field(default_factory=dict)
    # Status writes: progress waits for its turn (`pacing`); when a held one is due.
    pacer: StatusPacer = field(default_factory=StatusPacer)
    status_due: dict[Key, float] = field(default_factory=dict)
    discovery: asyncio.Task[None] | None = None
    caches: Caches | None = None
    # Systems reconciled at once: under a burst, whole systems finish in turn instead of
    # every system waiting on everyone's requests; first passes go before resyncs.
    slots: Slots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = Slots(self.cfg.max_parallel_reconciles)

    def wake(self, key: Key) -> None:
        event = self.wakeups.get(key)
        if event is not None:
            event.set()

    def on_change(self, namespace: str, instance: str | None) -> None:
        """A cached object of system namespace/instance changed."""
        if instance:
            self.wake((namespace, instance))

    def wake_all(self) -> None:
        for event in self.wakeups.values():
            event.set()


def _state(memo: Any) -> State:
    state = memo.get("state") if isinstance(memo, Mapping) else getattr(memo, "state", None)
    if not isinstance(state, State):
        raise kopf.TemporaryError("operator is still starting", delay=1)
    return state


def _config(memo: Any) -> OperatorConfig:
    """The configuration `main` put into the memo (defaults under a bare `kopf run`)."""
    cfg = memo.get("config") if isinstance(memo, Mapping) else None
    return cfg if isinstance(cfg, OperatorConfig) else OperatorConfig()


def _tune(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60


async def _discover(state: State) -> None:
    """Refresh which optional CRDs are served; wake every system when that changes."""
    try:
        served = await state.kube.discover()
    except KubeError as exc:
        log.warning("API discovery failed, keeping %s: %s", sorted(state.caps.served), exc)
        return
    # A kind counts once its own cache has synced; each optional kind independently.
    assert state.caches is not None
    caps = Capabilities.of(await state.caches.follow(served.served))
    if caps != state.caps:
        log.info("optional kinds served: %s", ", ".join(sorted(caps.served)) or "none")
        state.caps = caps
        state.not_before.clear()  # a system waiting out a backoff may be fine now
        state.wake_all()


async def _discovery_loop(state: State) -> None:
    while True:
        await asyncio.sleep(state.cfg.discovery_seconds)
        await _discover(state)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    _tune(settings)
    state = State(kube=Kube(load_configuration(), field_manager=FIELD_MANAGER), cfg=_config(memo))
    state.caches = Caches(state.kube, state.cfg.namespaces, state.on_change)
    state.caches.start_core()
    await _discover(state)
    state.discovery = asyncio.create_task(_discovery_loop(state))
    memo["state"] = state
    log.info("ragops operator started: %s", state.cfg.model_dump())


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    state = memo.get("state")
    if isinstance(state, State):
        if state.discovery is not None:
            state.discovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.discovery
        if state.caches is not None:
            await state.caches.stop()
        await state.prober.close()
        await state.prom.close()
        await state.kube.close()


@kopf.on.probe(id="reconciler")
def probe(memo: kopf.Memo, **_: Any) -> bool:
    return isinstance(memo.get("state"), State)


# ---------------------------------------------------------------------------- RagSystem


def _key(body: kopf.Body) -> Key:
    return (body.metadata.namespace or "", body.metadata.name or "")


async def _report_invalid(state: State, body: kopf.Body, error: ValidationError) -> None:
    """An object the API server admitted but the models reject: Degraded, once."""
    metrics.ERRORS.labels(*_key(body), "InvalidSpec").inc()
    status = invalid_status(body, error)
    old = (body.get("status") or {}).get("conditions") or []
    if any(c.get("reason") == "InvalidSpec" for c in old):
        return
    namespace, name = _key(body)
    state.pacer.forget((namespace, name))  # this write is not the pacer's to compare with
    await state.kube.apply(
        {**rag_object(namespace, name), "status": status.wire()}, subresource="status"
    )
    message = status.conditions[0].message
    kopf.event(body, type="Warning", reason="InvalidSpec", message=message)


def _record(state: State, key: Key, trigger: str, outcome: Outcome, started: float) -> None:
    """Metrics, logs and the retry backoff of one finished pass."""
    for item in outcome.applied:
        metrics.APPLIES.labels(item.split("/")[0]).inc()
    for reason in outcome.reasons:
        metrics.ERRORS.labels(*key, reason).inc()
    old_phase, new_phase = state.phases.get(key), outcome.status.phase.value
    if old_phase != new_phase:
        if old_phase:
            metrics.SYSTEMS.labels(old_phase).dec()
        metrics.SYSTEMS.labels(new_phase).inc()
        state.phases[key] = new_phase
    _record_release(state, key, outcome)
    if outcome.applied or outcome.deleted:
        applied, deleted = ", ".join(outcome.applied) or "-", ", ".join(outcome.deleted) or "-"
        log.info("%s/%s: applied %s, deleted %s", *key, applied, deleted)
    backup = outcome.status.backup
    if backup is not None and backup.last_successful_time:
        ts = parse_time(backup.last_successful_time)
        metrics.BACKUP_LAST_SUCCESS.labels(*key).set(ts)
    if backup is not None and backup.last_failure_time:
        metrics.BACKUP_LAST_FAILURE.labels(*key).set(parse_time(backup.last_failure_time))
    metrics.RECONCILES.labels(trigger, "retry" if outcome.retry_after else "ok").inc()
    metrics.DURATION.labels(trigger).observe(time.perf_counter() - started)
    if outcome.retry_after:
        failures = state.failures.get(key, 0) + 1
        state.failures[key] = failures
        # Backoff, capped so a Secret created later is picked up within half a minute.
        delay = min(outcome.retry_after * 2 ** (failures - 1), 30.0)
        state.not_before[key] = time.monotonic() + delay
        metrics.BACKOFF.labels(*key).set(delay)
    else:
        state.failures.pop(key, None)
        state.not_before.pop(key, None)
        metrics.BACKOFF.labels(*key).set(0)


def _record_release(state: State, key: Key, outcome: Outcome) -> None:
    """Rollout metrics, probe traffic and the time of the next analysis."""
    state.prober.update(key, outcome.probes)
    if outcome.requeue_after is None:
        state.due.pop(key, None)
    else:
        state.due[key] = time.monotonic() + outcome.requeue_after
    rollout = outcome.status.rollout
    if rollout is None:
        return
    runs: list[tuple[str, str, float | None]] = []
    if outcome.verdict is not None:
        runs.append(("analysis", outcome.verdict.result, None))
        runs += [(m.metric, m.result, m.value) for m in outcome.verdict.measurements]
    phase = rollout.phase.value if rollout.phase is not None else None
    metrics.record_rollout(key[0], key[1], phase, rollout.weight, runs)


def _with_written_rollout(state: State, key: Key, rs: RagSystem) -> RagSystem:
    """The system with the rollout status this operator wrote last, when the body read from
    the watch does not show it yet (the operator is the only writer of the status)."""
    written = state.rollouts.get(key)
    if written is None or rs.status.rollout == written:
        return rs
    return rs.model_copy(update={"status": rs.status.model_copy(update={"rollout": written})})


async def _reconcile(trigger: str, body: kopf.Body, memo: kopf.Memo) -> Outcome | None:
    state = _state(memo)
    key = _key(body)
    assert state.caches is not None
    await state.caches.wait_core()  # an unsynced cache is not "no children"
    started = time.perf_counter()
    async with state.locks[key], state.slots.hold(urgent=trigger in URGENT_TRIGGERS):
        try:
            rs = RagSystem.from_body(dict(body))
        except ValidationError as exc:
            metrics.RECONCILES.labels(trigger, "invalid").inc()
            await _report_invalid(state, body, exc)
            return None
        rs = _with_written_rollout(state, key, rs)
        indices = state.caches.indices()
        observed = Observed.from_indices(
            rs.namespace, rs.name, credentials_name(rs), indices, (api_keys_name(rs),)
        )
        outcome = await reconcile(
            rs, state.cfg, state.kube, observed, state.caps, state.applied, state.prom
        )
        if not await _write_status(state, key, rs, outcome):
            return outcome  # the RagSystem is gone
        if outcome.status.rollout is not None:
            state.rollouts[key] = outcome.status.rollout
        for type_, reason, message in outcome.events:
            kopf.event(body, type=type_, reason=reason, message=message)
        _record(state, key, trigger, outcome, started)
        return outcome


async def _write_status(state: State, key: Key, rs: RagSystem, outcome: Outcome) -> bool:
    """Write the pass's status when it changed and its turn has come (`pacing`); False when
    the RagSystem no longer exists."""
    if not outcome.status_changed or state.pacer.written(key, outcome.status):
        state.status_due.pop(key, None)  # nothing new (or written already: the watch is behind)
        return True
    held = state.pacer.due(key, outcome.status, bool(outcome.events), time.monotonic())
    if held is not None:
        state.status_due[key] = held
        return True
    last = state.pacer.last(key)
    olds = [rs.status.wire(), *([last.wire()] if last is not None else [])]
    patch = {"status": replacing_patch(outcome.status.wire(), *olds)}
    try:
        await state.kube.merge_patch(rag_object(*key), patch, subresource="status")
    except KubeError as exc:
        if exc.status == 404:
            return False
        raise kopf.TemporaryError(f"status write failed: {exc}", delay=2) from exc
    state.pacer.wrote(key, outcome.status, time.monotonic())
    state.status_due.pop(key, None)
    return True


def _backoff_delay(memo: kopf.Memo, body: kopf.Body) -> float:
    state = _state(memo)
    return max(1.0, state.not_before.get(_key(body), 0.0) - time.monotonic())


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def on_change(body: kopf.Body, memo: kopf.Memo, reason: str, **kwargs: Any) -> None:
    if body.metadata.get("deletionTimestamp"):
        return
    outcome = await _reconcile(str(reason), body, memo)
    if outcome is not None and outcome.retry_after:
        # Missing Secrets and API errors: kopf retries this handler with our backoff.
        raise kopf.TemporaryError(
            outcome.error or "waiting for referenced Secrets", delay=_backoff_delay(memo, body)
        )


def wait_seconds(resync_s: float, due: float | None, not_before: float | None, now: float) -> float:
    """How long a system's loop sleeps: until its resync, or its next analysis when sooner,
    but never less than what is left of a backoff (nothing runs before it ends anyway: a due
    analysis that is past would otherwise wake the loop every 50 ms until then)."""
    timeout = resync_s
    if due is not None:
        timeout = min(timeout, max(0.05, due - now))
    if not_before is not None and not_before > now:
        timeout = max(timeout, not_before - now)
    return timeout


async def _woken(
    state: State, key: Key, wakeup: asyncio.Event, stop_task: asyncio.Future[Any]
) -> None:
    """Wait for a child event (then let the burst settle), the stop, the next analysis of a
    rollout, a held status write's turn, or the resync period."""
    wake_task = asyncio.ensure_future(wakeup.wait())
    dues = [d for d in (state.due.get(key), state.status_due.get(key)) if d is not None]
    timeout = wait_seconds(
        state.cfg.resync_seconds,
        min(dues, default=None),
        state.not_before.get(key),
        time.monotonic(),
    )
    done, _ = await asyncio.wait(
        {wake_task, stop_task},
        timeout=timeout,
        return_when=asyncio.FIRST_COMPLETED,
    )
    wake_task.cancel()
    if wake_task in done:
        await asyncio.sleep(DEBOUNCE_S)
    wakeup.clear()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def resync(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **kwargs: Any
) -> None:
    """Level-based loop: put back drifted children and refresh the status.

    Wakes when a child of this system changes, and at least every resync_seconds.
    """
    state = _state(memo)
    key = _key(body)
    wakeup = state.wakeups.setdefault(key, asyncio.Event())

    async def until_stopped() -> None:
        await stopped.wait()  # (awaiting `stopped` itself raises at once: the loop would spin)

    stop_task = asyncio.ensure_future(until_stopped())
    try:
        while not stopped:
            await _woken(state, key, wakeup, stop_task)
            if stopped or body.metadata.get("deletionTimestamp"):
                break
            if time.monotonic() < state.not_before.get(key, 0.0):
                continue
            try:
                await _reconcile("resync", body, memo)
            except (KubeError, kopf.TemporaryError) as exc:
                metrics.ERRORS.labels(*key, "ApiError").inc()
                log.warning("%s/%s: resync failed, retrying: %s", *key, exc)
                state.not_before[key] = time.monotonic() + 5.0
    finally:
        stop_task.cancel()
        state.wakeups.pop(key, None)


def _forget(state: State, key: Key) -> None:
    phase = state.phases.pop(key, None)
    if phase:
        metrics.SYSTEMS.labels(phase).dec()
    state.failures.pop(key, None)
    state.not_before.pop(key, None)
    state.locks.pop(key, None)
    state.due.pop(key, None)
    state.rollouts.pop(key, None)
    state.pacer.forget(key)
    state.status_due.pop(key, None)
    state.prober.update(key, None)
    metrics.forget_rollout(*key)
    for metric in (metrics.BACKOFF, metrics.ERRORS):
        _remove_system(metric, key)


def _remove_system(metric: Any, key: Key) -> None:
    """Drop a deleted system's series (labels namespace, ragsystem, ...)."""
    for labels in list(metric._metrics):  # prometheus_client keeps label tuples here
        if labels[:2] == key:
            metric.remove(*labels)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def on_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    state = _state(memo)
    key = _key(body)
    async with state.locks[key]:
        try:
            rs = RagSystem.from_body(dict(body))
        except ValidationError:
            log.warning("%s/%s: invalid spec on deletion, keeping data", *key)
            return
        try:
            await state.kube.merge_patch(
                rag_object(rs.namespace, rs.name),
                {"status": {"phase": Phase.DELETING.value}},
                subresource="status",
            )
            removed = await finalize(rs, state.kube)
        except KubeError as exc:
            raise kopf.TemporaryError(f"cleanup failed: {exc}", delay=5) from exc
        metrics.RECONCILES.labels("delete", "ok").inc()
        if removed:
            log.info("%s/%s: deleted %s", *key, ", ".join(removed))
    _forget(state, key)


# ---------------------------------------------------------------------------- RagBackup

BACKUP_POLL_S = 3.0


@kopf.on.resume(GROUP, VERSION, BACKUP_PLURAL)
@kopf.on.create(GROUP, VERSION, BACKUP_PLURAL)
@kopf.timer(GROUP, VERSION, BACKUP_PLURAL, interval=BACKUP_POLL_S, initial_delay=BACKUP_POLL_S)
async def backup_pass(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """Run the RagBackup's Job once and record its result; finished backups cost nothing."""
    phase = (body.get("status") or {}).get("phase")
    if phase in (BackupPhase.COMPLETED.value, BackupPhase.FAILED.value):
        return
    state = _state(memo)
    try:
        rb = RagBackup.from_body(dict(body))
    except ValidationError as exc:
        log.warning("%s/%s: invalid RagBackup: %s", *_key(body), exc)
        return
    system = rb.spec.system_ref.name
    rs_body = await state.kube.get(API_VERSION, KIND, rb.namespace, system)
    rs = RagSystem.from_body(rs_body) if rs_body is not None else None
    assert state.caches is not None
    await state.caches.wait_core()
    observed = Observed.from_indices(rb.namespace, system, "", state.caches.indices())
    job = observed.children.get(job_key(rb, rs)) if rs is not None else None
    plan = plan_backup(rb, rs, job, observed.pods, now_rfc3339())
    if plan.job is not None:
        await state.kube.apply(plan.job)
        log.info("%s/%s: applied Job/%s", rb.namespace, rb.name, plan.job["metadata"]["name"])
    if plan.status.wire() != rb.status.wire():
        target = {
            "apiVersion": BACKUP_API_VERSION,
            "kind": BACKUP_KIND,
            "metadata": {"name": rb.name, "namespace": rb.namespace},
            "status": plan.status.wire(),
        }
        await state.kube.apply(target, subresource="status")
    for type_, reason, message in plan.events:
        kopf.event(body, type=type_, reason=reason, message=message)
    state.wake((rb.namespace, system))
