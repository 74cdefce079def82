"""Desired vs observed: apply what drifted, compute the status.

`reconcile()` is level-based. It builds every child from the spec, compares each with the
object the watch cache holds (`Observed`), applies only what is missing or drifted (so an
unchanged system costs no API writes), deletes children the spec no longer asks for, and
computes the status from what it saw. It never raises for a bad object: problems become
conditions, and `Outcome.retry_after` tells the caller to try again later.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rag_operator.builders import build_credentials_secret, desired_children
from rag_operator.builders.common import (
    STORES,
    api_endpoint,
    credentials_name,
    stable_hash,
    store_mode,
)
from rag_operator.builders.runtime import config_hash, secret_references
from rag_operator.builders.secret import PASSWORD_KEYS
from rag_operator.kube import Kube, KubeError
from rag_operator.models import (
    Components,
    ComponentStatus,
    Condition,
    ConditionStatus,
    OperatorConfig,
    Phase,
    RagSystem,
    RagSystemStatus,
)

log = logging.getLogger(__name__)

COMPONENT_CONDITIONS = {
    "api": "ApiReady",
    "worker": "WorkerReady",
    "postgres": "PostgresReady",
    "redis": "RedisReady",
    "neo4j": "Neo4jReady",
}
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# Kinds whose children the operator deletes when the spec stops asking for them.
PRUNABLE = {
    "ConfigMap",
    "Service",
    "Deployment",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Ingress",
    "HTTPRoute",
    "ServiceMonitor",
}


# Kinds from optional CRDs: read on demand instead of watched.
UNCACHED = {"HTTPRoute", "ServiceMonitor"}


# ---------------------------------------------------------------------------- observed state


@dataclass(frozen=True)
class PodInfo:
    name: str
    component: str
    ready: bool
    unschedulable: str = ""
    waiting: str = ""
    unschedulable_since: str = ""


@dataclass
class Observed:
    """What the watch caches hold for one RagSystem."""

    children: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: list[PodInfo] = field(default_factory=list)
    credentials_keys: frozenset[str] | None = None

    @classmethod
    def from_items(
        cls,
        children: Iterable[Mapping[str, Any]],
        pods: Iterable[PodInfo] = (),
        credentials_keys: frozenset[str] | None = None,
    ) -> Observed:
        out = cls(pods=list(pods), credentials_keys=credentials_keys)
        for child in children:
            out.children[(child["kind"], child["metadata"]["name"])] = dict(child)
        return out


def trim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a child the operator compares or reads (keeps the watch cache small)."""
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            k: meta[k]
            for k in (
                "name",
                "namespace",
                "labels",
                "annotations",
                "ownerReferences",
                "generation",
                "resourceVersion",
                "uid",
                "deletionTimestamp",
            )
            if k in meta
        },
    }
    for key in ("spec", "data"):
        if key in body:
            out[key] = body[key]
    status = body.get("status")
    if isinstance(status, Mapping):
        # Only what readiness needs.
        out["status"] = {
            k: status[k]
            for k in (
                "observedGeneration",
                "replicas",
                "readyReplicas",
                "updatedReplicas",
                "availableReplicas",
                "conditions",
            )
            if k in status
        }
    if body.get("kind") == "Secret":
        out.pop("data", None)
    return out


def pod_info(body: Mapping[str, Any]) -> PodInfo:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    sched = conditions.get("PodScheduled") or {}
    unschedulable = since = ""
    if sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        unschedulable = sched.get("message") or "pod cannot be scheduled"
        since = str(sched.get("lastTransitionTime") or "")
    waiting = ""
    for cs in status.get("containerStatuses") or []:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
        if reason in {
            "CreateContainerConfigError",
            "ImagePullBackOff",
            "ErrImagePull",
            "CrashLoopBackOff",
            "InvalidImageName",
        }:
            waiting = reason
    return PodInfo(
        name=meta.get("name", ""),
        component=(meta.get("labels") or {}).get(COMPONENT_LABEL, ""),
        ready=ready,
        unschedulable=unschedulable,
        waiting=waiting,
        unschedulable_since=since,
    )


# ---------------------------------------------------------------------------- drift


def _quantity(text: str) -> Decimal | None:
    suffixes: dict[str, Decimal] = {
        "Ki": Decimal(2**10),
        "Mi": Decimal(2**20),
        "Gi": Decimal(2**30),
        "Ti": Decimal(2**40),
        "Pi": Decimal(2**50),
        "Ei": Decimal(2**60),
        "n": Decimal("1e-9"),
        "u": Decimal("1e-6"),
        "m": Decimal("1e-3"),
        "": Decimal(1),
        "k": Decimal(10**3),
        "M": Decimal(10**6),
        "G": Decimal(10**9),
        "T": Decimal(10**12),
        "P": Decimal(10**15),
        "E": Decimal(10**18),
    }
    for suffix in sorted(suffixes, key=len, reverse=True):
        if suffix and not text.endswith(suffix):
            continue
        number = text[: len(text) - len(suffix)] if suffix else text
        try:
            return Decimal(number) * suffixes[suffix]
        except InvalidOperation:
            return None
    return None


def matches(desired: Any, observed: Any) -> bool:
    """True when every field of `desired` has the same value in `observed`.

    Extra fields in `observed` (defaults, other managers' fields, extra list items) are fine;
    quantities compare by value ("1000m" == "1"), empty maps and lists match absence.
    """
    if isinstance(desired, dict):
        if observed is None:
            return not desired
        if not isinstance(observed, dict):
            return False
        return all(matches(v, observed.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        if observed is None:
            return not desired
        if not isinstance(observed, list) or len(observed) < len(desired):
            return False
        return all(any(matches(d, o) for o in observed) for d in desired)
    if isinstance(desired, bool) or isinstance(observed, bool):
        return desired is observed
    if desired == observed:
        return True
    if isinstance(desired, str) and isinstance(observed, str):
        left, right = _quantity(desired), _quantity(observed)
        return left is not None and left == right
    if isinstance(desired, int | float) and isinstance(observed, int | float):
        return float(desired) == float(observed)
    return False


def _keep_immutable(desired: dict[str, Any], observed: dict[str, Any] | None) -> dict[str, Any]:
    """StatefulSet volumeClaimTemplates cannot change: apply the existing ones."""
    if observed is None or desired["kind"] != "StatefulSet":
        return desired
    current = (observed.get("spec") or {}).get("volumeClaimTemplates")
    if not current:
        return desired
    kept = [
        {
            "metadata": {"name": t["metadata"]["name"], "labels": t["metadata"].get("labels", {})},
            "spec": {k: v for k, v in t.get("spec", {}).items() if k != "volumeMode"},
        }
        for t in current
    ]
    return {**desired, "spec": {**desired["spec"], "volumeClaimTemplates": kept}}


def _claim_size(sts: Mapping[str, Any]) -> str | None:
    for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        size = (((template.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
            "storage"
        )
        if isinstance(size, str):
            return size
    return None


# ---------------------------------------------------------------------------- status


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> float:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return time.time()


@dataclass(frozen=True)
class Problem:
    """Something the user must know; makes the system Degraded."""

    reason: str
    message: str
    component: str = ""


def set_condition(
    previous: Iterable[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> Condition:
    """A condition whose lastTransitionTime moves only when its status flips."""
    value = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    old = next((c for c in previous if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == value else now
    return Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )


def _workload_counts(obj: Mapping[str, Any] | None, desired: int) -> tuple[int, bool, str]:
    """(ready pods, whether the rollout is complete, progress message)."""
    if obj is None:
        return 0, False, "not created yet"
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation", 0)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    current = int(status.get("replicas") or 0)
    if int(status.get("observedGeneration") or 0) < generation:
        return ready, False, "rollout not observed yet"
    if desired == 0:
        return ready, current == 0, f"{ready}/0 ready"
    done = ready >= desired and updated >= desired and current <= desired + 0
    if obj.get("kind") == "Deployment":
        done = done and int(status.get("availableReplicas") or 0) >= desired
    return ready, done, f"{ready}/{desired} ready, {updated} updated"


def _deadline_exceeded(obj: Mapping[str, Any] | None) -> str:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return str(cond.get("message") or "progress deadline exceeded")
    return ""


def compute_status(
    rs: RagSystem,
    cfg: OperatorConfig,
    observed: Observed,
    problems: list[Problem],
    applied: set[tuple[str, str]],
    now: str,
) -> RagSystemStatus:
    """The status the system should show, from the observed children and known problems."""
    gen = rs.metadata.generation
    previous = rs.status.conditions
    now_ts = _parse_time(now)
    conditions: list[Condition] = []
    components: dict[str, ComponentStatus] = {}
    problems = list(problems)
    not_ready: list[str] = []
    enabled = 0
    ready_count = 0
    store_text: list[str] = []

    def workload(component: str, kind: str, desired: int) -> None:
        nonlocal enabled, ready_count
        name = f"{rs.name}-{component}"
        obj = observed.children.get((kind, name))
        ready, done, progress = _workload_counts(obj, desired)
        if (kind, name) in applied:
            done = False
            progress = "applied a change, waiting for the rollout"
        components[component] = ComponentStatus(
            ready=ready, desired=desired, mode="managed" if component in STORES else ""
        )
        enabled += 1
        type_ = COMPONENT_CONDITIONS[component]
        pods = [p for p in observed.pods if p.component == component]
        # A pod waits for its volume to bind for a moment; only a lasting failure counts.
        grace = min(cfg.unschedulable_grace_s, cfg.ready_timeout_s)
        stuck = next(
            (
                p
                for p in pods
                if p.unschedulable and now_ts - _parse_time(p.unschedulable_since or now) >= grace
            ),
            None,
        )
        waiting = next((p for p in pods if p.waiting), None)
        if done:
            ready_count += 1
            conditions.append(set_condition(previous, type_, True, "Ready", progress, gen, now))
            return
        not_ready.append(component)
        reason, message = "Progressing", progress
        if stuck is not None:
            reason, message = "Unschedulable", f"pod {stuck.name}: {stuck.unschedulable}"
        elif waiting is not None:
            reason, message = waiting.waiting, f"pod {waiting.name}: {waiting.waiting}"
        elif _deadline_exceeded(obj):
            reason, message = "ProgressDeadlineExceeded", _deadline_exceeded(obj)
        cond = set_condition(previous, type_, False, reason, message, gen, now)
        if reason == "Progressing" and now_ts - _parse_time(cond.last_transition_time) > (
            cfg.ready_timeout_s
        ):
            reason = "NotReadyTimeout"
            message = f"not ready for more than {int(cfg.ready_timeout_s)}s: {progress}"
            cond = set_condition(previous, type_, False, reason, message, gen, now)
        conditions.append(cond)
        if reason != "Progressing":
            problems.append(Problem(reason, f"{component}: {message}", component))

    api = rs.spec.api
    if api.autoscaling.enabled:
        dep = observed.children.get(("Deployment", f"{rs.name}-api")) or {}
        api_desired = max(
            api.autoscaling.min_replicas, int((dep.get("spec") or {}).get("replicas") or 0)
        )
    else:
        api_desired = api.replicas
    workload("api", "Deployment", api_desired)
    workload("worker", "Deployment", rs.spec.worker.replicas)
    for store in STORES:
        mode = store_mode(rs, store)
        type_ = COMPONENT_CONDITIONS[store]
        if mode == "managed":
            workload(store, "StatefulSet", 1)
            comp = components[store]
            store_text.append(f"{store}={comp.ready}/1")
        else:
            components[store] = ComponentStatus(mode=mode)
            store_text.append(f"{store}={'ext' if mode == 'external' else 'off'}")
            text = (
                "external store, connection from a Secret"
                if mode == "external"
                else ("disabled in the spec")
            )
            conditions.append(
                set_condition(previous, type_, True, mode.capitalize(), text, gen, now)
            )

    config_problems = [p for p in problems if not p.component]
    conditions.append(
        set_condition(
            previous,
            "ConfigReady",
            not config_problems,
            config_problems[0].reason if config_problems else "Valid",
            "; ".join(p.message for p in config_problems)
            or "settings and referenced Secrets are valid",
            gen,
            now,
        )
    )
    degraded = bool(problems)
    progressing = bool(not_ready)
    all_ready = not degraded and not progressing
    conditions.insert(
        0,
        set_condition(
            previous,
            "Degraded",
            degraded,
            problems[0].reason if problems else "AsExpected",
            "; ".join(p.message for p in problems) or "no problems",
            gen,
            now,
        ),
    )
    conditions.insert(
        0,
        set_condition(
            previous,
            "Progressing",
            progressing,
            "Reconciling" if progressing else "Stable",
            f"waiting for {', '.join(not_ready)}"
            if progressing
            else "all components are rolled out",
            gen,
            now,
        ),
    )
    conditions.insert(
        0,
        set_condition(
            previous,
            "Ready",
            all_ready,
            "AllComponentsReady"
            if all_ready
            else ("Degraded" if degraded else "ComponentsNotReady"),
            "all components are ready"
            if all_ready
            else (
                f"not ready: {', '.join(not_ready)}" if not_ready else "see the Degraded condition"
            ),
            gen,
            now,
        ),
    )
    if rs.metadata.deletion_timestamp:
        phase = Phase.DELETING
    elif degraded:
        phase = Phase.DEGRADED
    elif all_ready:
        phase = Phase.READY
    elif observed.children or applied:
        phase = Phase.PROGRESSING
    else:
        phase = Phase.PENDING
    return RagSystemStatus(
        observed_generation=gen,
        phase=phase,
        conditions=conditions,
        components=Components(**components),
        ready_summary=f"{ready_count}/{enabled}",
        stores=",".join(store_text),
        endpoint=api_endpoint(rs, cfg),
        version=rs.spec.version,
        config_hash=config_hash(rs, cfg),
    )


def status_body(rs: RagSystem, status: RagSystemStatus) -> dict[str, Any]:
    """The object to server-side apply to the status subresource."""
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": rs.name, "namespace": rs.namespace},
        "status": status.wire(),
    }


def events_for(
    old: RagSystemStatus, new: RagSystemStatus, created: bool
) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events a user should see for this change."""
    out: list[tuple[str, str, str]] = []
    if created:
        out.append(("Normal", "Created", "created the system's children"))
    degraded = next((c for c in new.conditions if c.type == "Degraded"), None)
    if new.phase == Phase.DEGRADED and old.phase != Phase.DEGRADED and degraded is not None:
        out.append(("Warning", degraded.reason, degraded.message))
    if new.phase == Phase.READY and old.phase != Phase.READY:
        if old.phase == Phase.DEGRADED:
            out.append(("Normal", "Recovered", "recovered: all components are ready"))
        else:
            out.append(("Normal", "Ready", "all components are ready"))
    return out


# ---------------------------------------------------------------------------- reconcile


@dataclass
class Outcome:
    status: RagSystemStatus
    status_changed: bool
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    retry_after: float | None = None
    error: str = ""


class AppliedCache:
    """Remembers recent applies, so a watch cache lagging behind does not cause re-applies."""

    def __init__(self, grace_s: float = 3.0) -> None:
        self.grace_s = grace_s
        self._seen: dict[tuple[str, str, str], tuple[str, float]] = {}

    def recent(self, ns: str, kind: str, name: str, digest: str) -> bool:
        entry = self._seen.get((ns, kind, name))
        return (
            entry is not None
            and entry[0] == digest
            and time.monotonic() - entry[1] < (self.grace_s)
        )

    def remember(self, ns: str, kind: str, name: str, digest: str) -> None:
        self._seen[(ns, kind, name)] = (digest, time.monotonic())

    def forget_namespace_prefix(self, ns: str, prefix: str) -> None:
        for key in [k for k in self._seen if k[0] == ns and k[2].startswith(prefix)]:
            del self._seen[key]


async def _check_secrets(rs: RagSystem, kube: Kube) -> list[Problem]:
    problems: list[Problem] = []
    cache: dict[str, dict[str, Any] | None] = {}
    for path, name, key in secret_references(rs):
        if name not in cache:
            cache[name] = await kube.get("v1", "Secret", rs.namespace, name)
        secret = cache[name]
        if secret is None:
            problems.append(
                Problem(
                    "SecretNotFound",
                    f"{path}: Secret {name!r} not found in namespace {rs.namespace}",
                )
            )
        elif (
            key is not None
            and key not in (secret.get("data") or {})
            and key not in (secret.get("stringData") or {})
        ):
            problems.append(
                Problem("SecretKeyNotFound", f"{path}: Secret {name!r} has no key {key!r}")
            )
    return problems


async def reconcile(
    rs: RagSystem,
    cfg: OperatorConfig,
    kube: Kube,
    observed: Observed,
    applied_cache: AppliedCache | None = None,
) -> Outcome:
    """One level-based pass: apply drift, prune leftovers, compute status."""
    cache = applied_cache or AppliedCache()
    ns = rs.namespace
    problems: list[Problem] = []
    applied: list[str] = []
    applied_keys: set[tuple[str, str]] = set()
    deleted: list[str] = []
    retry: float | None = None
    error = ""
    created = False

    try:
        problems += await _check_secrets(rs, kube)
        if rs.spec.api.exposure.http_route is not None and not cfg.has_gateway_api:
            problems.append(
                Problem(
                    "GatewayAPINotInstalled",
                    "spec.api.exposure.httpRoute: the cluster does not serve "
                    "gateway.networking.k8s.io/v1 HTTPRoute",
                )
            )
        needs_credentials = any(store_mode(rs, s) == "managed" for s in STORES)
        if needs_credentials and observed.credentials_keys is None:
            passwords = {k: secrets.token_urlsafe(24) for k in PASSWORD_KEYS}
            created_secret = await kube.create(build_credentials_secret(rs, passwords))
            if created_secret:
                applied.append(f"Secret/{credentials_name(rs)}")
            del passwords
        desired = desired_children(rs, cfg)
        desired_keys = {(d["kind"], d["metadata"]["name"]) for d in desired}
        for manifest in desired:
            # Optional kinds (CRDs that may be absent) have no watch cache: read them.
            key = (manifest["kind"], manifest["metadata"]["name"])
            if key[0] in UNCACHED and key not in observed.children:
                found = await kube.get(manifest["apiVersion"], key[0], ns, key[1])
                if found is not None:
                    observed.children[key] = trim(found)
        created = not observed.children and not rs.status.conditions
        todo: list[tuple[tuple[str, str], dict[str, Any], str]] = []
        for manifest in desired:
            key = (manifest["kind"], manifest["metadata"]["name"])
            current = observed.children.get(key)
            manifest = _keep_immutable(manifest, current)
            if current is not None and matches(manifest, current):
                continue
            digest = stable_hash(manifest)
            applied_keys.add(key)
            if not cache.recent(ns, key[0], key[1], digest):
                todo.append((key, manifest, digest))
        # Independent objects: apply them concurrently (the ConfigMap first, pods read it).
        first = [t for t in todo if t[0][0] == "ConfigMap"]
        rest = [t for t in todo if t[0][0] != "ConfigMap"]
        for batch in (first, rest):
            results = await asyncio.gather(
                *(kube.apply(manifest) for _key, manifest, _digest in batch),
                return_exceptions=True,
            )
            failure: BaseException | None = None
            for (key, _manifest, digest), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failure = failure or result
                    continue
                cache.remember(ns, key[0], key[1], digest)
                applied.append(f"{key[0]}/{key[1]}")
            if failure is not None:
                raise failure
        for manifest in desired:
            if manifest["kind"] == "StatefulSet":
                await _grow_claims(rs, cfg, kube, manifest, observed)
        for kind, name in list(observed.children):
            if (kind, name) in desired_keys or kind not in PRUNABLE:
                continue
            child = observed.children[(kind, name)]
            owners = (child.get("metadata") or {}).get("ownerReferences") or []
            if not any(o.get("uid") == rs.metadata.uid for o in owners):
                continue
            await kube.delete(child["apiVersion"], kind, ns, name)
            deleted.append(f"{kind}/{name}")
    except KubeError as exc:
        error = str(exc)
        log.warning("reconcile of %s/%s hit an API error: %s", ns, rs.name, exc)
        problems.append(Problem("ApplyFailed", f"API error: {exc.message[:500]}"))
        retry = 2.0 if exc.transient or exc.status == 409 else 30.0
        if exc.status == 403 and "being terminated" in exc.message:
            retry = 60.0  # the namespace is going away, and the RagSystem with it

    if problems and retry is None:
        retry = 5.0
    now = now_rfc3339()
    status = compute_status(rs, cfg, observed, problems, applied_keys, now)
    changed = status.wire() != rs.status.wire()
    events = events_for(rs.status, status, created and bool(applied))
    return Outcome(
        status=status,
        status_changed=changed,
        applied=applied,
        deleted=deleted,
        events=events,
        retry_after=retry,
        error=error,
    )


async def _grow_claims(
    rs: RagSystem,
    cfg: OperatorConfig,
    kube: Kube,
    desired_sts: dict[str, Any],
    observed: Observed,
) -> None:
    """Storage may grow: resize the claims the StatefulSet made (templates are immutable)."""
    del cfg
    current = observed.children.get(("StatefulSet", desired_sts["metadata"]["name"]))
    if current is None:
        return
    store = desired_sts["metadata"]["labels"][COMPONENT_LABEL]
    managed = getattr(rs.spec, store).managed
    if managed is None:
        return
    want = managed.storage.size
    have = _claim_size(current)
    left, right = _quantity(want), _quantity(have or "")
    if left is None or right is None or left <= right:
        return
    claim = f"data-{desired_sts['metadata']['name']}-0"
    pvc = await kube.get("v1", "PersistentVolumeClaim", rs.namespace, claim)
    if pvc is None:
        return
    size = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    current_size = _quantity(size) if isinstance(size, str) else None
    if current_size is not None and current_size >= left:
        return
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": rs.namespace},
            "spec": {"resources": {"requests": {"storage": want}}},
        }
    )


async def finalize(rs: RagSystem, kube: Kube) -> list[str]:
    """On deletion: remove the volume claims and credentials when deletionPolicy is Delete.

    Everything else goes with the RagSystem through owner references.
    """
    if rs.spec.deletion_policy.value != "Delete":
        return []
    removed: list[str] = []
    selector = f"{INSTANCE_LABEL}={rs.name},{MANAGED_BY_LABEL}=ragops-operator"
    for pvc in await kube.list("v1", "PersistentVolumeClaim", rs.namespace, selector):
        name = pvc["metadata"]["name"]
        if await kube.delete("v1", "PersistentVolumeClaim", rs.namespace, name):
            removed.append(f"PersistentVolumeClaim/{name}")
    if await kube.delete("v1", "Secret", rs.namespace, credentials_name(rs)):
        removed.append(f"Secret/{credentials_name(rs)}")
    return removed
