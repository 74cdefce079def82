"""One reconcile pass: desired vs observed, apply what drifted, prune leftovers, status.

`reconcile()` is level-based and only orchestrates. It derives the runtime configuration once
(`builders.runtime_config`), builds every child (`builders.desired_children`), compares each
with what the watch caches hold (`observed`, `drift`), applies only what is missing or
drifted (so an unchanged system costs no API writes), deletes children the spec no longer
asks for, and computes the status (`conditions`). It never raises for a bad object:
problems become conditions, and `Outcome.retry_after` tells the caller to try again later.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from rag_operator import drift
from rag_operator.builders import (
    RuntimeConfig,
    build_credentials_secret,
    runtime_config,
)
from rag_operator.builders.common import STORES, credentials_name, store_mode
from rag_operator.builders.runtime import SecretReference
from rag_operator.builders.secret import PASSWORD_KEYS
from rag_operator.children import BY_KIND, Capabilities
from rag_operator.conditions import (
    Problem,
    compute_status,
    events_for,
    now_rfc3339,
    set_condition,
)
from rag_operator.kube import Kube, KubeError
from rag_operator.models import Condition, OperatorConfig, RagSystem, RagSystemStatus
from rag_operator.models.naming import COMPONENT_LABEL, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from rag_operator.models.status import RolloutPhase, RolloutStatus
from rag_operator.observed import Key, Observed
from rag_operator.release.canary import release_children
from rag_operator.release.probes import ProbeTargets
from rag_operator.release.prometheus import Prometheus
from rag_operator.release.run import ReleaseOutcome, release_pass
from rag_operator.release.state import Plan, Verdict, fmt

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: RagSystemStatus
    status_changed: bool
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    retry_after: float | None = None
    error: str = ""
    # The release: the analysis run of this pass, when the next one is due, what to probe.
    verdict: Verdict | None = None
    requeue_after: float | None = None
    probes: ProbeTargets | None = None


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


@dataclass
class Pass:
    """The inputs and the running record of one reconcile pass."""

    rs: RagSystem
    cfg: OperatorConfig
    caps: Capabilities
    kube: Kube
    observed: Observed
    cache: AppliedCache
    runtime: RuntimeConfig
    plan: Plan
    problems: list[Problem] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    applied_keys: set[Key] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Apply:
    key: Key
    manifest: dict[str, Any]
    digest: str


async def check_secrets(
    rs: RagSystem, kube: Kube, refs: tuple[SecretReference, ...]
) -> list[Problem]:
    """A problem per referenced Secret (or key) that does not exist."""
    problems: list[Problem] = []
    cache: dict[str, dict[str, Any] | None] = {}
    for ref in refs:
        if ref.name not in cache:
            cache[ref.name] = await kube.get("v1", "Secret", rs.namespace, ref.name)
        secret = cache[ref.name]
        if secret is None:
            text = f"{ref.path}: Secret {ref.name!r} not found in namespace {rs.namespace}"
            problems.append(Problem("SecretNotFound", text))
        elif (
            ref.key is not None
            and ref.key not in (secret.get("data") or {})
            and ref.key not in (secret.get("stringData") or {})
        ):
            text = f"{ref.path}: Secret {ref.name!r} has no key {ref.key!r}"
            problems.append(Problem("SecretKeyNotFound", text))
    return problems


def missing_kinds(rs: RagSystem, caps: Capabilities) -> list[Problem]:
    """Spec fields that need a kind the cluster does not serve."""
    if rs.spec.api.exposure.http_route is not None and not caps.serves("HTTPRoute"):
        text = (
            "spec.api.exposure.httpRoute: the cluster does not serve "
            "gateway.networking.k8s.io/v1 HTTPRoute"
        )
        return [Problem("GatewayAPINotInstalled", text)]
    return []


async def ensure_credentials(p: Pass) -> None:
    """Create the generated credentials Secret once (never overwritten)."""
    needs = any(store_mode(p.rs, s) == "managed" for s in STORES)
    if not needs or p.observed.credentials_keys is not None:
        return
    passwords = {k: secrets.token_urlsafe(24) for k in PASSWORD_KEYS}
    if await p.kube.create(build_credentials_secret(p.rs, passwords)):
        p.applied.append(f"Secret/{credentials_name(p.rs)}")
    del passwords


def plan(p: Pass, desired: list[dict[str, Any]]) -> list[Apply]:
    """The children to apply: missing or drifted, and not just applied (watch lag)."""
    todo: list[Apply] = []
    for manifest in desired:
        key = (manifest["kind"], manifest["metadata"]["name"])
        current = p.observed.children.get(key)
        digest = drift.applied_hash(manifest)
        to_apply = drift.stamp(drift.keep_immutable(manifest, current), digest)
        if drift.in_sync(to_apply, current, digest):
            continue
        p.applied_keys.add(key)
        if not p.cache.recent(p.rs.namespace, key[0], key[1], digest):
            todo.append(Apply(key, to_apply, digest))
    return todo


async def apply_all(p: Pass, todo: list[Apply]) -> None:
    """Apply independent children concurrently; the ConfigMap first (pods read it)."""
    first = [a for a in todo if a.key[0] == "ConfigMap"]
    rest = [a for a in todo if a.key[0] != "ConfigMap"]
    for batch in (first, rest):
        results = await asyncio.gather(
            *(p.kube.apply(a.manifest) for a in batch), return_exceptions=True
        )
        failure: BaseException | None = None
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            p.cache.remember(p.rs.namespace, item.key[0], item.key[1], item.digest)
            p.applied.append(f"{item.key[0]}/{item.key[1]}")
        if failure is not None:
            raise failure


async def prune(p: Pass, desired: list[dict[str, Any]]) -> None:
    """Delete owned children of prunable kinds that the spec no longer asks for."""
    wanted = {(d["kind"], d["metadata"]["name"]) for d in desired}
    for (kind, name), child in list(p.observed.children.items()):
        info = BY_KIND.get(kind)
        if (kind, name) in wanted or info is None or not info.prunable:
            continue
        if not p.caps.serves(kind):
            continue  # its CRD is gone, and the objects with it
        owners = (child.get("metadata") or {}).get("ownerReferences") or []
        if not any(o.get("uid") == p.rs.metadata.uid for o in owners):
            continue
        await p.kube.delete(child["apiVersion"], kind, p.rs.namespace, name)
        p.deleted.append(f"{kind}/{name}")


async def grow_claims(p: Pass, desired_sts: dict[str, Any]) -> None:
    """Storage may grow: resize the claims the StatefulSet made (templates are immutable)."""
    current = p.observed.children.get(("StatefulSet", desired_sts["metadata"]["name"]))
    store = desired_sts["metadata"]["labels"][COMPONENT_LABEL]
    managed = getattr(p.rs.spec, store).managed
    if current is None or managed is None:
        return
    want = drift.quantity(managed.storage.size)
    have = drift.quantity(drift.claim_size(current) or "")
    if want is None or have is None or want <= have:
        return
    claim = f"data-{desired_sts['metadata']['name']}-0"
    pvc = await p.kube.get("v1", "PersistentVolumeClaim", p.rs.namespace, claim)
    if pvc is None:
        return
    size = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    current_size = drift.quantity(size) if isinstance(size, str) else None
    if current_size is not None and current_size >= want:
        return
    await p.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": p.rs.namespace},
            "spec": {"resources": {"requests": {"storage": managed.storage.size}}},
        }
    )


async def converge(p: Pass) -> None:
    """The steps that talk to the API, in order."""
    p.problems += await check_secrets(p.rs, p.kube, p.runtime.secret_refs)
    p.problems += missing_kinds(p.rs, p.caps)
    await ensure_credentials(p)
    desired = release_children(p.rs, p.cfg, p.caps, p.runtime, p.plan)
    await apply_all(p, plan(p, desired))
    for manifest in desired:
        if manifest["kind"] == "StatefulSet":
            await grow_claims(p, manifest)
    await prune(p, desired)


def retry_for(exc: KubeError) -> float:
    """Seconds until the next try after an API error."""
    if exc.status == 403 and "being terminated" in exc.message:
        return 60.0  # the namespace is going away, and the RagSystem with it
    return 2.0 if exc.transient or exc.status == 409 else 30.0


async def reconcile(
    rs: RagSystem,
    cfg: OperatorConfig,
    kube: Kube,
    observed: Observed,
    caps: Capabilities | None = None,
    applied_cache: AppliedCache | None = None,
    prom: Prometheus | None = None,
) -> Outcome:
    """One level-based pass: the release decision, apply drift, prune leftovers, status."""
    caps = caps or Capabilities()
    release = await release_pass(rs, cfg, kube, observed, caps, prom, time.time())
    p = Pass(
        rs=rs,
        cfg=cfg,
        caps=caps,
        kube=kube,
        observed=observed,
        cache=applied_cache or AppliedCache(),
        runtime=runtime_config(rs),
        plan=release.decision.plan,
    )
    created = not observed.children and not rs.status.conditions
    retry: float | None = None
    error = ""
    try:
        await converge(p)
    except KubeError as exc:
        error = str(exc)
        log.warning("reconcile of %s/%s hit an API error: %s", rs.namespace, rs.name, exc)
        p.problems.append(Problem("ApplyFailed", f"API error: {exc.message[:500]}"))
        retry = retry_for(exc)
    if p.problems and retry is None:
        retry = 5.0
    status = with_rollout(
        rs,
        compute_status(
            rs, cfg, observed, p.problems, p.applied_keys, now_rfc3339(), p.runtime.config_hash
        ),
        release,
    )
    return Outcome(
        status=status,
        status_changed=status.wire() != rs.status.wire(),
        applied=p.applied,
        deleted=p.deleted,
        events=[
            *events_for(rs.status, status, created and bool(p.applied)),
            *release.decision.events,
        ],
        retry_after=retry,
        error=error,
        verdict=release.verdict,
        requeue_after=release.decision.requeue_after,
        probes=release.probes,
    )


def rollout_condition(rs: RagSystem, st: RolloutStatus, now: float) -> Condition:
    """Released: True once the asked version serves (or nothing is being released); False
    while a canary runs or after a rollback (reason RolledBack, the failing metric in the
    message)."""
    ok = st.phase in (None, RolloutPhase.SUCCEEDED)
    reason = st.phase.value if st.phase is not None else "Stable"
    message = st.message or f"{st.stable_version} serves"
    return set_condition(
        rs.status.conditions, "Released", ok, reason, message, rs.metadata.generation, fmt(now)
    )


def with_rollout(
    rs: RagSystem, status: RagSystemStatus, release: ReleaseOutcome
) -> RagSystemStatus:
    """The status with the release's part: status.rollout and the Released condition.

    A system that never used the Canary strategy keeps no rollout status.
    """
    rollout = release.decision.status
    if rs.status.rollout is None and rollout.phase is None:
        return status
    now = time.time()
    conditions = [*status.conditions, rollout_condition(rs, rollout, now)]
    return status.model_copy(update={"rollout": rollout, "conditions": conditions})


async def finalize(rs: RagSystem, kube: Kube) -> list[str]:
    """On deletion: remove the volume claims and credentials when deletionPolicy is Delete.

    Everything else goes with the RagSystem through owner references.
    """
    if rs.spec.deletion_policy.value != "Delete":
        return []
    removed: list[str] = []
    selector = f"{INSTANCE_LABEL}={rs.name},{MANAGED_BY_LABEL}={MANAGED_BY}"
    for pvc in await kube.list("v1", "PersistentVolumeClaim", rs.namespace, selector):
        name = pvc["metadata"]["name"]
        if await kube.delete("v1", "PersistentVolumeClaim", rs.namespace, name):
            removed.append(f"PersistentVolumeClaim/{name}")
    if await kube.delete("v1", "Secret", rs.namespace, credentials_name(rs)):
        removed.append(f"Secret/{credentials_name(rs)}")
    return removed
