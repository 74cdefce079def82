"""kopf wiring: watch caches of the children, and thin handlers that call `reconcile`.

Every RagSystem is reconciled on create, update and resume, and then by a per-object daemon
that wakes when one of its children changes (the watch caches call `_wake`) or at the latest
every RAGOPS_RESYNC_SECONDS (default 5). Each pass compares desired children with the watch
caches (kopf indices), so an unchanged system costs no API writes and a hand-edited or deleted
child is put back within a second or so. kopf keeps its own state in annotations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from rag_operator import metrics
from rag_operator.builders.common import credentials_name
from rag_operator.kube import Kube, KubeError, load_configuration
from rag_operator.models import (
    GROUP,
    PLURAL,
    VERSION,
    Condition,
    ConditionStatus,
    OperatorConfig,
    Phase,
    RagSystem,
    RagSystemStatus,
)
from rag_operator.reconcile import (
    INSTANCE_LABEL,
    AppliedCache,
    Observed,
    Outcome,
    PodInfo,
    finalize,
    now_rfc3339,
    pod_info,
    reconcile,
    status_body,
    trim,
)

log = logging.getLogger(__name__)

RESYNC_S = float(os.environ.get("RAGOPS_RESYNC_SECONDS", "5"))
DEBOUNCE_S = 0.2
MAX_PARALLEL = int(os.environ.get("RAGOPS_MAX_PARALLEL_RECONCILES", "16"))
CHILD_SELECTOR = {"app.kubernetes.io/managed-by": "ragops-operator"}
# (group, version, plural) of every child kind held in a watch cache.
CHILD_KINDS = [
    ("", "v1", "configmaps"),
    ("", "v1", "services"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("networking.k8s.io", "v1", "ingresses"),
]
Key = tuple[str, str]


@dataclass
class State:
    """What the operator keeps in memory (rebuilt from the cluster on restart)."""

    kube: Kube
    cfg: OperatorConfig
    applied: AppliedCache = field(default_factory=AppliedCache)
    locks: defaultdict[Key, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    failures: dict[Key, int] = field(default_factory=dict)
    not_before: dict[Key, float] = field(default_factory=dict)
    phases: dict[Key, str] = field(default_factory=dict)
    wakeups: dict[Key, asyncio.Event] = field(default_factory=dict)
    # Systems reconciled at once: under a burst, whole systems finish in turn instead of
    # every system waiting on everyone's requests.
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_PARALLEL))

    def wake(self, key: Key) -> None:
        event = self.wakeups.get(key)
        if event is not None:
            event.set()


def _state(memo: Any) -> State:
    state = memo.get("state") if isinstance(memo, Mapping) else getattr(memo, "state", None)
    if not isinstance(state, State):
        raise kopf.TemporaryError("operator is still starting", delay=1)
    return state


def operator_config_from_env() -> OperatorConfig:
    env = os.environ
    defaults = OperatorConfig()
    return OperatorConfig(
        ready_timeout_s=float(env.get("RAGOPS_READY_TIMEOUT", defaults.ready_timeout_s)),
        postgres_image=env.get("RAGOPS_POSTGRES_IMAGE", defaults.postgres_image),
        redis_image=env.get("RAGOPS_REDIS_IMAGE", defaults.redis_image),
        neo4j_image=env.get("RAGOPS_NEO4J_IMAGE", defaults.neo4j_image),
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = "ragops.io/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ragops.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="ragops.io", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.batching.batch_window = 0.1
    settings.networking.request_timeout = 60
    kube = Kube(load_configuration(), field_manager="ragops-operator")
    cfg = operator_config_from_env()
    try:
        cfg = cfg.model_copy(
            update={
                "has_service_monitor": await kube.has_api(
                    "monitoring.coreos.com/v1", "servicemonitors"
                ),
                "has_gateway_api": await kube.has_api("gateway.networking.k8s.io/v1", "httproutes"),
            }
        )
    except KubeError as exc:
        log.warning("API discovery failed, optional kinds off: %s", exc)
    memo["state"] = State(kube=kube, cfg=cfg)
    log.info("ragops operator started: %s", cfg.model_dump())


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    state = memo.get("state")
    if isinstance(state, State):
        await state.kube.close()


@kopf.on.probe(id="reconciler")
def probe(memo: kopf.Memo, **_: Any) -> bool:
    return isinstance(memo.get("state"), State)


# ---------------------------------------------------------------------------- watch caches


def _pack(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _wake(memo: Any, namespace: str | None, instance: str | None) -> None:
    state = memo.get("state") if isinstance(memo, Mapping) else None
    if isinstance(state, State) and namespace and instance:
        state.wake((namespace, instance))


def _register_child_index(group: str, version: str, plural: str) -> None:
    async def index(
        *,
        namespace: str | None,
        labels: Mapping[str, str],
        body: kopf.Body,
        memo: Any,
        **_: Any,
    ) -> Any:
        instance = labels.get(INSTANCE_LABEL)
        _wake(memo, namespace, instance)
        # Held as compact JSON: a tenth of the memory of nested dicts, decoded per pass.
        return {(namespace, instance): _pack(trim(body))} if instance else None

    index.__name__ = f"idx_{plural}"
    kopf.index(group, version, plural, id=f"idx_{plural}", labels=CHILD_SELECTOR)(index)


for _group, _version, _plural in CHILD_KINDS:
    _register_child_index(_group, _version, _plural)


@kopf.index("", "v1", "pods", labels=CHILD_SELECTOR)
async def idx_pods(
    *, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, memo: Any, **_: Any
) -> Any:
    instance = labels.get(INSTANCE_LABEL)
    _wake(memo, namespace, instance)
    return {(namespace, instance): pod_info(body)} if instance else None


@kopf.index("", "v1", "secrets", labels=CHILD_SELECTOR)
async def idx_secrets(
    *,
    namespace: str | None,
    name: str,
    labels: Mapping[str, str],
    body: kopf.Body,
    memo: Any,
    **_: Any,
) -> Any:
    _wake(memo, namespace, labels.get(INSTANCE_LABEL))
    # Only the key names: the operator never keeps or logs the values.
    return {(namespace, name): frozenset((body.get("data") or {}).keys())}


def _observed(rs: RagSystem, indices: Mapping[str, Any]) -> Observed:
    key = (rs.namespace, rs.name)
    children: list[Mapping[str, Any]] = []
    for _g, _v, plural in CHILD_KINDS:
        store = indices[f"idx_{plural}"]
        if key in store:
            children.extend(json.loads(packed) for packed in store[key])
    pods: list[PodInfo] = list(indices["idx_pods"].get(key, []))
    secret_key = (rs.namespace, credentials_name(rs))
    keys = None
    if secret_key in indices["idx_secrets"]:
        keys = next(iter(indices["idx_secrets"][secret_key]), None)
    return Observed.from_items(children, pods, keys)


# ---------------------------------------------------------------------------- RagSystem


def _invalid_status(body: Mapping[str, Any], error: ValidationError) -> RagSystemStatus:
    """Degraded status for an object the API server admitted but the models reject."""
    first = error.errors()[0]
    where = "spec." + ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid')}"
    gen = int((body.get("metadata") or {}).get("generation") or 0)
    now = now_rfc3339()

    def cond(type_: str, value: bool, reason: str) -> Condition:
        return Condition(
            type=type_,
            status=ConditionStatus.TRUE if value else ConditionStatus.FALSE,
            reason=reason,
            message=message,
            observed_generation=gen,
            last_transition_time=now,
        )

    return RagSystemStatus(
        observed_generation=gen,
        phase=Phase.DEGRADED,
        conditions=[
            cond("Ready", False, "InvalidSpec"),
            cond("Progressing", False, "InvalidSpec"),
            cond("Degraded", True, "InvalidSpec"),
        ],
    )


async def _reconcile(
    trigger: str, body: kopf.Body, memo: kopf.Memo, indices: Mapping[str, Any]
) -> Outcome | None:
    state = _state(memo)
    key = (body.metadata.namespace or "", body.metadata.name or "")
    started = time.perf_counter()
    async with state.locks[key], state.slots:
        try:
            rs = RagSystem.from_body(dict(body))
        except ValidationError as exc:
            metrics.ERRORS.labels("invalid_spec").inc()
            metrics.RECONCILES.labels(trigger, "invalid").inc()
            status = _invalid_status(body, exc)
            old = (body.get("status") or {}).get("conditions") or []
            if not any(c.get("reason") == "InvalidSpec" for c in old):
                name, ns = key[1], key[0]
                await state.kube.apply(
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "RagSystem",
                        "metadata": {"name": name, "namespace": ns},
                        "status": status.wire(),
                    },
                    subresource="status",
                )
                kopf.event(
                    body, type="Warning", reason="InvalidSpec", message=status.conditions[0].message
                )
            return None
        outcome = await reconcile(rs, state.cfg, state.kube, _observed(rs, indices), state.applied)
        if outcome.status_changed:
            try:
                await state.kube.apply(status_body(rs, outcome.status), subresource="status")
            except KubeError as exc:
                if exc.status == 404:
                    return outcome
                raise kopf.TemporaryError(f"status write failed: {exc}", delay=2) from exc
        for type_, reason, message in outcome.events:
            kopf.event(body, type=type_, reason=reason, message=message)
        for item in outcome.applied:
            metrics.APPLIES.labels(item.split("/")[0]).inc()
        if outcome.error:
            metrics.ERRORS.labels("api").inc()
        old_phase = state.phases.get(key)
        new_phase = outcome.status.phase.value
        if old_phase != new_phase:
            if old_phase:
                metrics.SYSTEMS.labels(old_phase).dec()
            metrics.SYSTEMS.labels(new_phase).inc()
            state.phases[key] = new_phase
        if outcome.applied or outcome.deleted:
            log.info(
                "%s/%s: applied %s, deleted %s",
                key[0],
                key[1],
                ", ".join(outcome.applied) or "-",
                ", ".join(outcome.deleted) or "-",
            )
        result = "retry" if outcome.retry_after else "ok"
        metrics.RECONCILES.labels(trigger, result).inc()
        metrics.DURATION.labels(trigger).observe(time.perf_counter() - started)
        if outcome.retry_after:
            failures = state.failures.get(key, 0) + 1
            state.failures[key] = failures
            # Backoff, capped so a Secret created later is picked up within half a minute.
            delay = min(outcome.retry_after * 2 ** (failures - 1), 30.0)
            state.not_before[key] = time.monotonic() + delay
        else:
            state.failures.pop(key, None)
            state.not_before.pop(key, None)
        return outcome


def _backoff_delay(memo: kopf.Memo, body: kopf.Body) -> float:
    state = _state(memo)
    key = (body.metadata.namespace or "", body.metadata.name or "")
    return max(1.0, state.not_before.get(key, 0.0) - time.monotonic())


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def on_change(body: kopf.Body, memo: kopf.Memo, reason: str, **kwargs: Any) -> None:
    if body.metadata.get("deletionTimestamp"):
        return
    outcome = await _reconcile(str(reason), body, memo, kwargs)
    if outcome is not None and outcome.retry_after:
        # Missing Secrets and API errors: kopf retries this handler with our backoff.
        raise kopf.TemporaryError(
            outcome.error or "waiting for referenced Secrets", delay=_backoff_delay(memo, body)
        )


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def resync(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **kwargs: Any
) -> None:
    """Level-based loop: put back drifted children and refresh the status.

    Wakes when a child of this system changes, and at least every RESYNC_S seconds.
    """
    state = _state(memo)
    key = (body.metadata.namespace or "", body.metadata.name or "")
    wakeup = state.wakeups.setdefault(key, asyncio.Event())

    async def until_stopped() -> None:
        await stopped

    stop_task = asyncio.ensure_future(until_stopped())
    try:
        while not stopped:
            wake_task = asyncio.ensure_future(wakeup.wait())
            done, _ = await asyncio.wait(
                {wake_task, stop_task}, timeout=RESYNC_S, return_when=asyncio.FIRST_COMPLETED
            )
            wake_task.cancel()
            if wake_task in done:
                await asyncio.sleep(DEBOUNCE_S)  # let a burst of child events settle
            wakeup.clear()
            if stopped or body.metadata.get("deletionTimestamp"):
                break
            if time.monotonic() < state.not_before.get(key, 0.0):
                continue
            try:
                await _reconcile("resync", body, memo, kwargs)
            except (KubeError, kopf.TemporaryError) as exc:
                metrics.ERRORS.labels("api").inc()
                log.warning("%s/%s: resync failed, retrying: %s", *key, exc)
                state.not_before[key] = time.monotonic() + 5.0
    finally:
        stop_task.cancel()
        state.wakeups.pop(key, None)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def on_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    state = _state(memo)
    key = (body.metadata.namespace or "", body.metadata.name or "")
    async with state.locks[key]:
        try:
            rs = RagSystem.from_body(dict(body))
        except ValidationError:
            log.warning("%s/%s: invalid spec on deletion, keeping data", *key)
            return
        try:
            await state.kube.merge_patch(
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "RagSystem",
                    "metadata": {"name": rs.name, "namespace": rs.namespace},
                },
                {"status": {"phase": Phase.DELETING.value}},
                subresource="status",
            )
            removed = await finalize(rs, state.kube)
        except KubeError as exc:
            raise kopf.TemporaryError(f"cleanup failed: {exc}", delay=5) from exc
        metrics.RECONCILES.labels("delete", "ok").inc()
        if removed:
            log.info("%s/%s: deleted %s", *key, ", ".join(removed))
    phase = state.phases.pop(key, None)
    if phase:
        metrics.SYSTEMS.labels(phase).dec()
    state.failures.pop(key, None)
    state.not_before.pop(key, None)
    state.locks.pop(key, None)
