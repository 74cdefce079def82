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
import base64
import dataclasses
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from rag_operator import drift, policy
from rag_operator.builders import (
    Release,
    RuntimeConfig,
    build_credentials_secret,
    runtime_config,
)
from rag_operator.builders.common import (
    CREDENTIALS_KEYS,
    STORES,
    api_keys_name,
    child_name,
    credentials_name,
    store_mode,
)
from rag_operator.builders.runtime import SecretReference
from rag_operator.builders.secret import (
    PASSWORD_KEYS,
    build_api_keys_secret,
    missing_credentials,
)
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
from rag_operator.models.ragbackup import BACKUP_API_VERSION, BACKUP_KIND, RagBackup
from rag_operator.models.rollout import RolloutStrategy
from rag_operator.models.status import RolloutPhase, RolloutStatus
from rag_operator.observed import Key, Observed, earlier_system_children, without
from rag_operator.release.canary import release_children
from rag_operator.release.migration import MigrationPlan, plan_migration
from rag_operator.release.probes import ProbeTargets
from rag_operator.release.prometheus import Prometheus
from rag_operator.release.restore import RestorePlan, plan_restore
from rag_operator.release.run import ReleaseOutcome, release_pass
from rag_operator.release.state import Plan, Verdict, fmt

log = logging.getLogger(__name__)
REFUSED = frozenset({policy.IMAGE_NOT_ALLOWED, policy.SECRET_NOT_ALLOWED})


@dataclass
class Outcome:
    status: RagSystemStatus
    status_changed: bool
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    retry_after: float | None = None
    error: str = ""
    reasons: list[str] = field(default_factory=list)  # of the problems this pass found
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
    migration: MigrationPlan
    restore: RestorePlan
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
    rs: RagSystem, kube: Kube, refs: tuple[SecretReference, ...], cfg: OperatorConfig
) -> list[Problem]:
    """A problem per referenced Secret (or key) that does not exist or that the operator's
    policy does not allow."""
    problems: list[Problem] = []
    cache: dict[str, dict[str, Any] | None] = {}
    for ref in refs:
        by_name = policy.secret_name_refusal(ref, cfg)
        if by_name is not None:
            problems.append(Problem(by_name.reason, by_name.message))
            continue  # never read a Secret the policy keeps the system from
        if ref.name not in cache:
            cache[ref.name] = await kube.get("v1", "Secret", rs.namespace, ref.name)
        secret = cache[ref.name]
        labels = ((secret or {}).get("metadata") or {}).get("labels") or {}
        refusal = policy.secret_label_refusal(ref, labels, cfg) if secret is not None else None
        if refusal is not None:
            problems.append(Problem(refusal.reason, refusal.message))
        elif secret is None:
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


def owns_credentials(rs: RagSystem, secret: dict[str, Any]) -> bool:
    """Whether the operator generated this `<name>-credentials` Secret for this system (its
    labels say so); a Secret the user made under that name is never deleted."""
    found = (secret.get("metadata") or {}).get("labels") or {}
    return found.get(MANAGED_BY_LABEL) == MANAGED_BY and found.get(INSTANCE_LABEL) == rs.name


def own_store_sets(rs: RagSystem, observed: Observed) -> bool:
    """Whether any managed store's StatefulSet exists (or no store is managed)."""
    stores = [s for s in STORES if store_mode(rs, s) == "managed"]
    return not stores or any(
        ("StatefulSet", child_name(rs, s)) in observed.children for s in stores
    )


async def claims_being_deleted(rs: RagSystem, kube: Kube) -> list[Key]:
    """The stores' volume claims still terminating, before any StatefulSet of this system
    exists: an earlier system of the name is being deleted with its data. They count as
    data until they are gone (so the credentials would be refused as lost), and a new
    StatefulSet would bind its pods to them, so nothing is applied until then."""
    selector = f"{INSTANCE_LABEL}={rs.name},{MANAGED_BY_LABEL}={MANAGED_BY}"
    return sorted(
        ("PersistentVolumeClaim", str(pvc["metadata"]["name"]))
        for pvc in await kube.list("v1", "PersistentVolumeClaim", rs.namespace, selector)
        if (pvc.get("metadata") or {}).get("deletionTimestamp")
    )


async def store_data(p: Pass) -> list[str]:
    """Managed stores whose data exists: their StatefulSet or a volume claim of theirs."""
    stores = [s for s in STORES if store_mode(p.rs, s) == "managed"]
    found = {s for s in stores if ("StatefulSet", child_name(p.rs, s)) in p.observed.children}
    if len(found) < len(stores):
        selector = f"{INSTANCE_LABEL}={p.rs.name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        for pvc in await p.kube.list("v1", "PersistentVolumeClaim", p.rs.namespace, selector):
            component = ((pvc.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL)
            if component in stores:
                found.add(component)
    return [s for s in stores if s in found]


async def complete_credentials(p: Pass) -> None:
    """Add the keys a Secret from an older operator lacks; existing keys never change."""
    name = credentials_name(p.rs)
    secret = await p.kube.get("v1", "Secret", p.rs.namespace, name)
    if secret is None or not owns_credentials(p.rs, secret):
        return
    existing = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    fresh = {k: secrets.token_urlsafe(24) for k in PASSWORD_KEYS}
    added = missing_credentials(p.rs, existing, fresh)
    if added:
        await p.kube.merge_patch(secret, {"stringData": added})
        p.applied.append(f"Secret/{name}")
    del existing, fresh, added


def credentials_lost(rs: RagSystem, stores: list[str]) -> Problem:
    name = credentials_name(rs)
    keys = ", ".join(PASSWORD_KEYS)
    text = (
        f"Secret {name!r} is gone but the data of {', '.join(stores)} remains, and it "
        "keeps the passwords that Secret held; the operator does not draw new ones over "
        f"existing data. Recover: re-create Secret {name!r} with its old keys ({keys}, "
        "and the URLs built from them) from a backup; or, to start over with empty stores, "
        f"delete the StatefulSets and the PersistentVolumeClaims of {rs.name} (the data is lost)"
    )
    return Problem("CredentialsLost", text)


async def ensure_credentials(p: Pass) -> None:
    """Create the generated credentials Secret once (never overwritten), and never while
    the stores' data exists without it: new passwords would lock the system out of it."""
    needs = any(store_mode(p.rs, s) == "managed" for s in STORES)
    if not needs:
        return
    if p.observed.credentials_keys is not None:
        if not set(CREDENTIALS_KEYS) <= p.observed.credentials_keys:
            await complete_credentials(p)
        return
    # Not in the watch cache: deleted, or its label removed (then it is still in use).
    if await p.kube.get("v1", "Secret", p.rs.namespace, credentials_name(p.rs)) is not None:
        return
    stores = await store_data(p)
    if stores:
        p.problems.append(credentials_lost(p.rs, stores))
        return
    passwords = {k: secrets.token_urlsafe(24) for k in PASSWORD_KEYS}
    if await p.kube.create(build_credentials_secret(p.rs, passwords)):
        p.applied.append(f"Secret/{credentials_name(p.rs)}")
    del passwords


def wants_generated_key(rs: RagSystem) -> bool:
    """Authentication by default: a generated admin key unless the spec names keys or asks
    for anonymous access."""
    return rs.spec.api.api_keys_secret_ref is None and not rs.spec.api.auth.anonymous


async def ensure_api_keys(p: Pass) -> None:
    """Create the generated admin key Secret once (never overwritten)."""
    if not wants_generated_key(p.rs) or api_keys_name(p.rs) in p.observed.secrets:
        return
    if await p.kube.create(build_api_keys_secret(p.rs, secrets.token_urlsafe(32))):
        p.applied.append(f"Secret/{api_keys_name(p.rs)}")


def plan(p: Pass, desired: list[dict[str, Any]]) -> list[Apply]:
    """The children to apply: missing or drifted, and not just applied (watch lag)."""
    todo: list[Apply] = []
    for manifest in desired:
        key = (manifest["kind"], manifest["metadata"]["name"])
        current = p.observed.children.get(key)
        if key[0] == "Job" and current is not None:
            continue  # a Job is created once, then only read (its template is immutable)
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
    p.problems += [Problem(r.reason, r.message) for r in policy.image_refusals(p.rs, p.cfg)]
    p.problems += await check_secrets(p.rs, p.kube, p.runtime.secret_refs, p.cfg)
    p.problems += missing_kinds(p.rs, p.caps)
    if any(pr.reason in REFUSED for pr in p.problems):
        return  # refused by the operator's policy: nothing is applied (or pruned)
    await ensure_credentials(p)
    await ensure_api_keys(p)
    desired = release_children(p.rs, p.cfg, p.caps, p.runtime, p.plan, joined_release(p))
    await apply_all(p, plan(p, desired))
    for manifest in desired:
        if manifest["kind"] == "StatefulSet":
            await grow_claims(p, manifest)
    await prune(p, desired)


def postgres_ready(rs: RagSystem, observed: Observed) -> bool:
    """Whether a migration Job can reach Postgres: external, or the managed pod is ready.

    The pod's own Ready condition counts at once; the StatefulSet's readyReplicas says the
    same one controller round trip later (seconds, on a busy control plane)."""
    if store_mode(rs, "postgres") != "managed":
        return True
    if any(p.component == "postgres" and p.ready and not p.job for p in observed.pods):
        return True
    sts = observed.children.get(("StatefulSet", f"{rs.name}-postgres")) or {}
    return int((sts.get("status") or {}).get("readyReplicas") or 0) >= 1


async def bootstrap_backup(rs: RagSystem, kube: Kube) -> RagBackup | None:
    """The RagBackup spec.bootstrap.backup names, while a restore still needs it."""
    boot = rs.spec.bootstrap
    done = rs.status.restore is not None and rs.status.restore.phase.value == "Succeeded"
    if boot is None or boot.backup.name is None or done:
        return None
    body = await kube.get(BACKUP_API_VERSION, BACKUP_KIND, rs.namespace, boot.backup.name)
    return RagBackup.from_body(body) if body is not None else None


def release_of(migration: MigrationPlan, restore: RestorePlan | None = None) -> Release:
    """What the builders need from the release step."""
    status = migration.status
    source = restore.job if restore is not None else None
    return Release(
        restore_source=(source.url, source.name, source.destination) if source else None,
        stable_version=migration.stable_version,
        migration_job=status.job if migration.job else "",
        migration_version=status.version,
        backup_job=migration.backup[0] if migration.backup else "",
        backup_version=migration.backup[1] if migration.backup else "",
    )


def joined_release(p: Pass) -> Release:
    """The migration step's release, with the stable version the canary release decided
    while a Canary strategy runs (the canary starts only after its migration succeeded)."""
    release = release_of(p.migration, p.restore)
    if p.rs.spec.rollout.strategy is RolloutStrategy.CANARY and release.stable_version:
        release = dataclasses.replace(release, stable_version=p.plan.stable_version)
    return release


def retry_for(exc: KubeError) -> float:
    """Seconds until the next try after an API error."""
    if exc.status == 403 and "being terminated" in exc.message:
        return 60.0  # the namespace is going away, and the RagSystem with it
    return 2.0 if exc.transient or exc.status == 409 else 30.0


async def restore_plan(
    rs: RagSystem, kube: Kube, observed: Observed, db_ready: bool, now: str
) -> RestorePlan:
    """The restore bootstrap's plan; an API error reading the backup is a problem, not a crash."""
    try:
        return plan_restore(rs, observed, await bootstrap_backup(rs, kube), db_ready, now)
    except KubeError as exc:
        text = f"spec.bootstrap.backup: API error: {exc.message[:200]}"
        return RestorePlan(rs.status.restore, problem=text, done=False)


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
    earlier = earlier_system_children(observed, rs.metadata.uid)
    if not earlier and not own_store_sets(rs, observed):
        earlier = await claims_being_deleted(rs, kube)
    if earlier:
        return waiting_for_earlier_system(rs, cfg, without(observed, earlier), earlier)
    return await full_pass(rs, cfg, kube, observed, caps or Capabilities(), applied_cache, prom)


async def full_pass(
    rs: RagSystem,
    cfg: OperatorConfig,
    kube: Kube,
    observed: Observed,
    caps: Capabilities,
    applied_cache: AppliedCache | None,
    prom: Prometheus | None,
) -> Outcome:
    """The pass of a system whose children are its own."""
    db_ready, now = postgres_ready(rs, observed), now_rfc3339()
    restore = await restore_plan(rs, kube, observed, db_ready, now)
    release = await release_pass(rs, cfg, kube, observed, caps, prom, time.time())
    p = Pass(
        rs=rs,
        cfg=cfg,
        caps=caps,
        kube=kube,
        observed=observed,
        cache=applied_cache or AppliedCache(),
        runtime=runtime_config(rs),
        migration=plan_migration(rs, observed, db_ready, now, restore.hold),
        restore=restore,
        plan=release.decision.plan,
    )
    if restore.problem:
        p.problems.append(Problem("RestoreFailed", restore.problem, "restore"))
    created = not observed.children and not rs.status.conditions
    retry: float | None = None
    error = ""
    reasons: list[str] = []
    try:
        await converge(p)
    except KubeError as exc:
        error = str(exc)
        log.warning("reconcile of %s/%s hit an API error: %s", rs.namespace, rs.name, exc)
        p.problems.append(Problem("ApplyFailed", f"API error: {exc.message[:500]}"))
        reasons = ["ApiError"]
        retry = retry_for(exc)
    if p.problems and retry is None:
        retry = 5.0
    status = pass_status(p, release)
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
        reasons=sorted({*reasons, *(q.reason for q in p.problems if q.reason != "ApplyFailed")}),
        verdict=release.verdict,
        requeue_after=release.decision.requeue_after,
        probes=release.probes,
    )


def waiting_for_earlier_system(
    rs: RagSystem, cfg: OperatorConfig, observed: Observed, earlier: list[Key]
) -> Outcome:
    """A system recreated under the name of one just deleted: nothing is applied until the
    garbage collector has deleted that one's children (applying over them would adopt its
    workloads and its data); the status says what it waits for."""
    shown = ", ".join(f"{kind}/{name}" for kind, name in earlier[:3])
    if len(earlier) > 3:
        shown += f" and {len(earlier) - 3} more"
    what = f"the deletion of {shown} (left by an earlier RagSystem {rs.name})"
    status = compute_status(
        rs,
        cfg,
        observed,
        [],
        set(),
        now_rfc3339(),
        runtime_config(rs).config_hash,
        waiting=[what],
    )
    changed = status.wire() != rs.status.wire()
    if changed:
        log.info("%s/%s: waiting for %s", rs.namespace, rs.name, what)
    return Outcome(status=status, status_changed=changed, requeue_after=1.0)


def pass_status(p: Pass, release: ReleaseOutcome) -> RagSystemStatus:
    """The status after the pass: components, conditions, migration, restore and rollout."""
    status = compute_status(
        p.rs,
        p.cfg,
        p.observed,
        p.problems,
        p.applied_keys,
        now_rfc3339(),
        p.runtime.config_hash,
        migration=p.migration,
        restore=p.restore.status,
    )
    return with_rollout(p.rs, status, release)


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
    secret = await kube.get("v1", "Secret", rs.namespace, credentials_name(rs))
    if secret is not None and not owns_credentials(rs, secret):
        log.info(
            "%s/%s: keeping Secret %s: not generated by the operator",
            *_ns_name(rs),
            credentials_name(rs),
        )
    elif secret is not None and await kube.delete(
        "v1", "Secret", rs.namespace, credentials_name(rs)
    ):
        removed.append(f"Secret/{credentials_name(rs)}")
    return removed


def _ns_name(rs: RagSystem) -> tuple[str, str]:
    return rs.namespace, rs.name
