"""Status, conditions and Events: pure functions of the spec, what was observed and the known
problems.

`compute_status` gives the whole status: a condition per component (ApiReady, WorkerReady,
PostgresReady, RedisReady, Neo4jReady), ConfigReady, AnonymousAccess (True only when the
spec asks for an API without keys; a Warning Event when it turns on), and the summary
conditions Ready, Progressing and Degraded; the phase, ready counts, the stores column and
the endpoint.
`lastTransitionTime` moves only when a condition's status flips. A new condition goes here:
a function that returns it, called from `compute_status`.

Why a component is not ready, most specific first: a pod unschedulable past the grace
(Unschedulable), a container that cannot start (its waiting reason), a Deployment past its
progress deadline, and only then the generic NotReadyTimeout. While a pod is unschedulable
the timeout never stands in for its reason, so the outcome does not depend on which of the
two clocks runs out first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rag_operator.builders.common import (
    ADMIN_KEY,
    STORES,
    api_endpoint,
    api_keys_name,
    child_name,
    store_mode,
)
from rag_operator.models import (
    API_VERSION,
    KIND,
    BackupStatus,
    Components,
    ComponentStatus,
    Condition,
    ConditionStatus,
    MigrationPhase,
    OperatorConfig,
    Phase,
    RagSystem,
    RagSystemStatus,
    RestoreStatus,
)
from rag_operator.models.naming import COMPONENT_LABEL
from rag_operator.observed import Key, Observed, PodInfo
from rag_operator.release.migration import (
    MigrationPlan,
    deployed_version,
    job_state,
    termination_message,
)

COMPONENT_CONDITIONS = {
    "api": "ApiReady",
    "worker": "WorkerReady",
    "postgres": "PostgresReady",
    "redis": "RedisReady",
    "neo4j": "Neo4jReady",
}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIMEOUT = "NotReadyTimeout"  # the reason of a component not ready for too long


@dataclass(frozen=True)
class Problem:
    """Something the user must know; makes the system Degraded."""

    reason: str
    message: str
    component: str = ""


@dataclass(frozen=True)
class Clock:
    """The pass's time, as written into conditions and as seconds."""

    now: str

    @property
    def ts(self) -> float:
        return parse_time(self.now)

    def since(self, when: str) -> float:
        """Seconds from `when` (RFC 3339) to now; 0 for an empty or unreadable time."""
        return self.ts - parse_time(when or self.now)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


def parse_time(value: str) -> float:
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return time.time()


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


# ---------------------------------------------------------------------------- one workload


def workload_counts(obj: Mapping[str, Any] | None, desired: int) -> tuple[int, bool, str]:
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
    done = ready >= desired and updated >= desired and current <= desired
    if obj.get("kind") == "Deployment":
        done = done and int(status.get("availableReplicas") or 0) >= desired
    return ready, done, f"{ready}/{desired} ready, {updated} updated"


def deadline_exceeded(obj: Mapping[str, Any] | None) -> str:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return str(cond.get("message") or "progress deadline exceeded")
    return ""


def not_ready_reason(
    pods: Sequence[PodInfo],
    obj: Mapping[str, Any] | None,
    progress: str,
    not_ready_for: float,
    cfg: OperatorConfig,
    clock: Clock,
) -> tuple[str, str]:
    """(reason, message) of a component that is not ready; reason Progressing means no
    problem yet. `not_ready_for` is how long its condition has been False."""
    timed_out = not_ready_for > cfg.ready_timeout_seconds
    grace = min(cfg.unschedulable_grace_seconds, cfg.ready_timeout_seconds)
    unscheduled = [p for p in pods if p.unschedulable]
    for pod in unscheduled:
        if timed_out or clock.since(pod.unschedulable_since) >= grace:
            return "Unschedulable", f"pod {pod.name}: {pod.unschedulable}"
    waiting = next((p for p in pods if p.waiting), None)
    if waiting is not None:
        return waiting.waiting, f"pod {waiting.name}: {waiting.waiting}"
    if deadline_exceeded(obj):
        return "ProgressDeadlineExceeded", deadline_exceeded(obj)
    if unscheduled:
        # Waiting for a node or a volume: its own reason comes after the grace.
        return "Progressing", f"{progress}; pod {unscheduled[0].name} not scheduled yet"
    if timed_out:
        limit = int(cfg.ready_timeout_seconds)
        return TIMEOUT, f"not ready for more than {limit}s: {progress}"
    return "Progressing", progress


@dataclass(frozen=True)
class ComponentView:
    """The outcome for one component: its condition, counts and problem (if any)."""

    condition: Condition
    status: ComponentStatus
    ready: bool
    problem: Problem | None = None


def workload_view(
    rs: RagSystem,
    cfg: OperatorConfig,
    observed: Observed,
    applied: set[Key],
    component: str,
    kind: str,
    desired: int,
    clock: Clock,
) -> ComponentView:
    """Condition and counts of the Deployment or StatefulSet of one component."""
    key = (kind, child_name(rs, component))
    obj = observed.children.get(key)
    ready, done, progress = workload_counts(obj, desired)
    if key in applied:
        done, progress = False, "applied a change, waiting for the rollout"
    counts = ComponentStatus(
        ready=ready, desired=desired, mode="managed" if component in STORES else ""
    )
    type_, gen, previous = (
        COMPONENT_CONDITIONS[component],
        rs.metadata.generation,
        rs.status.conditions,
    )
    if done:
        cond = set_condition(previous, type_, True, "Ready", progress, gen, clock.now)
        return ComponentView(cond, counts, ready=True)
    since = set_condition(previous, type_, False, "", "", gen, clock.now).last_transition_time
    pods = [p for p in observed.pods if p.component == component]
    reason, message = not_ready_reason(pods, obj, progress, clock.since(since), cfg, clock)
    cond = set_condition(previous, type_, False, reason, message, gen, clock.now)
    problem = (
        None if reason == "Progressing" else Problem(reason, f"{component}: {message}", component)
    )
    return ComponentView(cond, counts, ready=False, problem=problem)


def external_view(rs: RagSystem, store: str, mode: str, clock: Clock) -> ComponentView:
    """A store the operator does not run: external (a Secret) or disabled."""
    text = (
        "external store, connection from a Secret" if mode == "external" else "disabled in the spec"
    )
    type_, gen = COMPONENT_CONDITIONS[store], rs.metadata.generation
    cond = set_condition(rs.status.conditions, type_, True, mode.capitalize(), text, gen, clock.now)
    return ComponentView(cond, ComponentStatus(mode=mode), ready=True)


def api_replicas(rs: RagSystem, observed: Observed) -> int:
    """API pods the system should have: the HPA's count when autoscaling is on."""
    api = rs.spec.api
    if not api.autoscaling.enabled:
        return api.replicas
    dep = observed.children.get(("Deployment", child_name(rs, "api"))) or {}
    return max(api.autoscaling.min_replicas, int((dep.get("spec") or {}).get("replicas") or 0))


# ---------------------------------------------------------------------------- the whole system


@dataclass
class Tally:
    """Component views gathered for one status, in order."""

    views: dict[str, ComponentView] = field(default_factory=dict)
    stores: list[str] = field(default_factory=list)

    @property
    def not_ready(self) -> list[str]:
        return [name for name, view in self.views.items() if not view.ready]

    def problems(self) -> list[Problem]:
        return [v.problem for v in self.views.values() if v.problem is not None]

    def ready_summary(self) -> str:
        """Ready components out of those the operator runs, e.g. 4/4."""
        run = [v for v in self.views.values() if v.status.mode in ("", "managed")]
        return f"{sum(v.ready for v in run)}/{len(run)}"


def held_view(
    rs: RagSystem, component: str, desired: int, why: str, clock: Clock, ready: int = 0
) -> ComponentView:
    """A workload the release holds back (no Deployment while a restore runs) or whose pods
    wait for the schema (a first install's migration): not ready, but no timeout counts
    against it."""
    type_, gen = COMPONENT_CONDITIONS[component], rs.metadata.generation
    cond = set_condition(
        rs.status.conditions, type_, False, "WaitingForMigration", why, gen, clock.now
    )
    return ComponentView(cond, ComponentStatus(ready=ready, desired=desired), ready=False)


def component_views(
    rs: RagSystem,
    cfg: OperatorConfig,
    observed: Observed,
    applied: set[Key],
    clock: Clock,
    held: str = "",
) -> Tally:
    """A view per component: api, worker, then the stores. `held` says what the API and
    worker wait for ("" = nothing): their Deployments are missing, or their pods wait for the
    schema; then only a problem of their own (a crash, an unschedulable pod) is one."""
    tally = Tally()
    workloads = (("api", api_replicas(rs, observed)), ("worker", rs.spec.worker.replicas))
    for component, desired in workloads:
        if held and ("Deployment", child_name(rs, component)) not in observed.children:
            tally.views[component] = held_view(rs, component, desired, held, clock)
            continue
        view = workload_view(rs, cfg, observed, applied, component, "Deployment", desired, clock)
        if held and not view.ready and (view.problem is None or view.problem.reason == TIMEOUT):
            view = held_view(rs, component, desired, held, clock, view.status.ready)
        tally.views[component] = view
    for store in STORES:
        mode = store_mode(rs, store)
        if mode == "managed":
            view = workload_view(rs, cfg, observed, applied, store, "StatefulSet", 1, clock)
            tally.stores.append(f"{store}={view.status.ready}/1")
        else:
            view = external_view(rs, store, mode, clock)
            tally.stores.append(f"{store}={'ext' if mode == 'external' else 'off'}")
        tally.views[store] = view
    return tally


def summary_conditions(
    rs: RagSystem, problems: Sequence[Problem], not_ready: Sequence[str], clock: Clock
) -> list[Condition]:
    """Ready, Progressing, Degraded and ConfigReady."""
    previous, gen, now = rs.status.conditions, rs.metadata.generation, clock.now
    config = [p for p in problems if not p.component]
    degraded, progressing = bool(problems), bool(not_ready)
    ready = not degraded and not progressing
    if ready:
        ready_reason, ready_text = "AllComponentsReady", "all components are ready"
    elif degraded:
        ready_reason = "Degraded"
        ready_text = (
            f"not ready: {', '.join(not_ready)}" if not_ready else "see the Degraded condition"
        )
    else:
        ready_reason, ready_text = "ComponentsNotReady", f"not ready: {', '.join(not_ready)}"
    return [
        set_condition(previous, "Ready", ready, ready_reason, ready_text, gen, now),
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
        set_condition(
            previous,
            "Degraded",
            degraded,
            problems[0].reason if problems else "AsExpected",
            "; ".join(p.message for p in problems) or "no problems",
            gen,
            now,
        ),
        set_condition(
            previous,
            "ConfigReady",
            not config,
            config[0].reason if config else "Valid",
            "; ".join(p.message for p in config) or "settings and referenced Secrets are valid",
            gen,
            now,
        ),
    ]


ANONYMOUS_CONDITION = "AnonymousAccess"
ANONYMOUS_MESSAGE = (
    "spec.api.auth.anonymous is true: the API asks for no key, and any client that reaches "
    "it may read, change and delete every collection"
)


def auth_condition(rs: RagSystem, clock: Clock) -> Condition:
    """AnonymousAccess: True only when the spec asks for an API without authentication."""
    api = rs.spec.api
    if api.auth.anonymous:
        reason, text = "AnonymousAccessEnabled", ANONYMOUS_MESSAGE
    elif api.api_keys_secret_ref is not None:
        reason = "ApiKeysFromSecret"
        text = f"API keys from Secret {api.api_keys_secret_ref.name!r}"
    else:
        reason = "GeneratedAdminKey"
        text = f"the admin key is in Secret {api_keys_name(rs)!r}, key {ADMIN_KEY!r}"
    return set_condition(
        rs.status.conditions,
        ANONYMOUS_CONDITION,
        api.auth.anonymous,
        reason,
        text,
        rs.metadata.generation,
        clock.now,
    )


def migration_condition(rs: RagSystem, plan: MigrationPlan, clock: Clock) -> Condition:
    """MigrationSucceeded: whether the desired version's schema migration succeeded."""
    m = plan.status
    reasons = {
        MigrationPhase.PENDING: "Pending",
        MigrationPhase.RUNNING: "Running",
        MigrationPhase.SUCCEEDED: "Succeeded",
        MigrationPhase.FAILED: "MigrationFailed",
    }
    text = {
        MigrationPhase.PENDING: f"migration to {m.version} not started: {m.message or 'pending'}",
        MigrationPhase.RUNNING: f"migrating the schema to {m.version} (Job {m.job})",
        MigrationPhase.SUCCEEDED: f"the schema is migrated to {m.version} (Job {m.job})",
        MigrationPhase.FAILED: migration_failure(plan),
    }[m.phase]
    return set_condition(
        rs.status.conditions,
        "MigrationSucceeded",
        m.phase is MigrationPhase.SUCCEEDED,
        reasons[m.phase],
        text,
        rs.metadata.generation,
        clock.now,
    )


def migration_failure(plan: MigrationPlan) -> str:
    m = plan.status
    serving = plan.stable_version or "none"
    return f"migration to {m.version} failed (Job {m.job}); {serving} keeps serving: {m.message}"


def versions(rs: RagSystem, observed: Observed, tally: Tally, ready: bool) -> tuple[str, str]:
    """(status.version, status.lastGoodVersion).

    The version is what the API and worker Deployments run once both are rolled out (the
    previous one while a rollout is under way); the last good one is the version at the last
    pass where the whole system was Ready.
    """
    rolled_out = all(tally.views[c].ready for c in ("api", "worker") if c in tally.views)
    version = rs.status.version
    if rolled_out:
        version = deployed_version(rs, observed) or ""
    last_good = version if ready and version else rs.status.last_good_version
    return version, last_good


def backup_status(rs: RagSystem, observed: Observed) -> BackupStatus | None:
    """Last success and failure among the system's finished backup Jobs (and what the
    status said before: Jobs past the history limit are gone)."""
    prev = rs.status.backup or BackupStatus()
    success, failure, last_job, message = (
        prev.last_successful_time,
        prev.last_failure_time,
        prev.last_job,
        prev.message,
    )
    for (kind, name), job in observed.children.items():
        labels = (job.get("metadata") or {}).get("labels") or {}
        if kind != "Job" or labels.get(COMPONENT_LABEL) != "backup":
            continue
        state = job_state(job, observed.pods)
        if state is None or not state.completed_at:
            continue
        if state.phase is MigrationPhase.SUCCEEDED and state.completed_at > success:
            success = state.completed_at
            if success >= failure:
                last_job, message = name, ""
        elif state.phase is MigrationPhase.FAILED and state.completed_at > failure:
            failure = state.completed_at
            if failure > success:
                last_job = name
                message = termination_message(observed.pods, name) or state.message
    if not (success or failure) and rs.spec.backup is None:
        return None
    return BackupStatus(
        last_successful_time=success,
        last_failure_time=failure,
        last_job=last_job,
        message=message[-2048:],
    )


def backup_condition(rs: RagSystem, backup: BackupStatus, clock: Clock) -> Condition:
    """BackupSucceeded: whether the last backup that finished succeeded."""
    failed = (
        bool(backup.last_failure_time) and backup.last_failure_time > backup.last_successful_time
    )
    if failed:
        reason = "BackupFailed"
        text = (
            f"backup Job {backup.last_job} failed at {backup.last_failure_time}: {backup.message}"
        )
    elif backup.last_successful_time:
        reason, text = "Succeeded", f"last good backup completed at {backup.last_successful_time}"
    else:
        reason, text = "NoBackupYet", "no backup has finished yet"
    return set_condition(
        rs.status.conditions,
        "BackupSucceeded",
        not failed and bool(backup.last_successful_time),
        reason,
        text,
        rs.metadata.generation,
        clock.now,
    )


def phase_of(rs: RagSystem, degraded: bool, ready: bool, started: bool) -> Phase:
    if rs.metadata.deletion_timestamp:
        return Phase.DELETING
    if degraded:
        return Phase.DEGRADED
    if ready:
        return Phase.READY
    return Phase.PROGRESSING if started else Phase.PENDING


def compute_status(
    rs: RagSystem,
    cfg: OperatorConfig,
    observed: Observed,
    problems: Sequence[Problem],
    applied: set[Key],
    now: str,
    config_hash: str,
    migration: MigrationPlan | None = None,
    restore: RestoreStatus | None = None,
    waiting: Sequence[str] = (),
) -> RagSystemStatus:
    """The status the system should show, from the observed children and known problems
    (`waiting`: what the whole system waits for before anything is applied)."""
    clock = Clock(now)
    held = f"waiting for {waiting[0]}" if waiting else ""
    if not held and migration is not None and migration.workloads_wait:
        held = f"waiting for the migration to {migration.status.version}"
    tally = component_views(rs, cfg, observed, applied, clock, held)
    release: list[Condition] = []
    if migration is not None:
        release.append(migration_condition(rs, migration, clock))
        if migration.failed:
            problem = Problem("MigrationFailed", migration_failure(migration), "migrate")
            problems = [problem, *problems]
    problems = [*problems, *tally.problems()]
    migrating = migration is not None and not migration.failed and not migration.succeeded
    not_ready = [*waiting, *(["migration"] if migrating else []), *tally.not_ready]
    ready, progressing, degraded, config = summary_conditions(rs, problems, not_ready, clock)
    started = bool(observed.children or applied)
    all_ready = not problems and not not_ready
    version, last_good = versions(rs, observed, tally, all_ready)
    backup = backup_status(rs, observed)
    if backup is not None:
        release.append(backup_condition(rs, backup, clock))
    return RagSystemStatus(
        observed_generation=rs.metadata.generation,
        phase=phase_of(rs, bool(problems), all_ready, started),
        conditions=[
            ready,
            progressing,
            degraded,
            *(view.condition for view in tally.views.values()),
            auth_condition(rs, clock),
            config,
            *release,
        ],
        components=Components(**{name: view.status for name, view in tally.views.items()}),
        ready_summary=tally.ready_summary(),
        stores=",".join(tally.stores),
        endpoint=api_endpoint(rs),
        version=version,
        desired_version=rs.spec.version,
        last_good_version=last_good,
        migration=migration.status if migration is not None else rs.status.migration,
        restore=restore if restore is not None else rs.status.restore,
        backup=backup,
        config_hash=config_hash,
    )


def rag_object(namespace: str, name: str) -> dict[str, Any]:
    """A RagSystem named by its namespace and name (the target of a status write)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
    }


def invalid_status(body: Mapping[str, Any], error: ValidationError) -> RagSystemStatus:
    """Degraded status for an object the API server admitted but the models reject."""
    first = error.errors()[0]
    where = "spec." + ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid')}"
    gen = int((body.get("metadata") or {}).get("generation") or 0)
    now = now_rfc3339()
    conditions = [
        Condition(
            type=type_,
            status=ConditionStatus.TRUE if value else ConditionStatus.FALSE,
            reason="InvalidSpec",
            message=message,
            observed_generation=gen,
            last_transition_time=now,
        )
        for type_, value in (("Ready", False), ("Progressing", False), ("Degraded", True))
    ]
    return RagSystemStatus(observed_generation=gen, phase=Phase.DEGRADED, conditions=conditions)


def migration_events(old: RagSystemStatus, new: RagSystemStatus) -> list[tuple[str, str, str]]:
    """An Event when a migration attempt starts, succeeds or fails."""
    m, before = new.migration, old.migration
    if m is None or (before is not None and (before.job, before.phase) == (m.job, m.phase)):
        return []
    if m.phase is MigrationPhase.RUNNING:
        return [("Normal", "MigrationStarted", f"migrating to {m.version}: Job {m.job}")]
    if m.phase is MigrationPhase.SUCCEEDED:
        return [("Normal", "MigrationSucceeded", f"schema migrated to {m.version} (Job {m.job})")]
    if m.phase is MigrationPhase.FAILED:
        text = f"migration to {m.version} failed (Job {m.job}): {m.message}"
        return [("Warning", "MigrationFailed", text[:1024])]
    return []


def backup_events(old: RagSystemStatus, new: RagSystemStatus) -> list[tuple[str, str, str]]:
    """An Event when a backup Job fails (scheduled or on demand)."""
    before, after = old.backup or BackupStatus(), new.backup
    if after is None or after.last_failure_time <= before.last_failure_time:
        return []
    if after.last_failure_time <= after.last_successful_time:
        return []
    text = f"backup Job {after.last_job} failed: {after.message}"
    return [("Warning", "BackupFailed", text[:1024])]


def was_degraded(old: RagSystemStatus) -> bool:
    """Whether the system was Degraded since it last stopped being Ready (it may have gone
    Degraded -> Progressing -> Ready, e.g. through a migration Job)."""
    conds = {c.type: c for c in old.conditions}
    ready, degraded = conds.get("Ready"), conds.get("Degraded")
    if ready is None or degraded is None or degraded.status is not ConditionStatus.FALSE:
        return False
    return parse_time(degraded.last_transition_time) > parse_time(ready.last_transition_time)


def events_for(
    old: RagSystemStatus, new: RagSystemStatus, created: bool
) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events a user should see for this change."""
    out: list[tuple[str, str, str]] = []
    if created:
        out.append(("Normal", "Created", "created the system's children"))
    anonymous = next((c for c in new.conditions if c.type == ANONYMOUS_CONDITION), None)
    was_anonymous = any(
        c.type == ANONYMOUS_CONDITION and c.status == ConditionStatus.TRUE for c in old.conditions
    )
    if anonymous is not None and anonymous.status == ConditionStatus.TRUE and not was_anonymous:
        out.append(("Warning", "AnonymousAccess", anonymous.message))
    degraded = next((c for c in new.conditions if c.type == "Degraded"), None)
    if new.phase == Phase.DEGRADED and old.phase != Phase.DEGRADED and degraded is not None:
        out.append(("Warning", degraded.reason, degraded.message))
    out.extend(migration_events(old, new))
    out.extend(backup_events(old, new))
    if new.phase == Phase.READY and old.phase != Phase.READY:
        if old.phase == Phase.DEGRADED or was_degraded(old):
            out.append(("Normal", "Recovered", "recovered: all components are ready"))
        else:
            out.append(("Normal", "Ready", "all components are ready"))
    return out
