"""The migration gate: the API and worker run a version only after its migration Job succeeded.

One attempt is one Job, named from (image, spec generation, retry token). The attempt of the
desired image is kept while it runs or succeeded; a failed attempt stays failed (the old
version keeps serving) until the spec changes again or the `ragops.io/retry-migration`
annotation gets a new value. A Job is created only once Postgres is ready; a Job that
finished is kept as a record and never re-created.

`plan_migration` decides the whole step; `stable_version` is the version the stable API and
worker Deployments run: the desired one once its migration succeeded, else the one they
already run. A first install has nothing serving to protect, so its Deployments are made at
once with the desired version, beside Postgres and the first migration: their pods start
(the model loads) while the schema is made, and turn ready once it serves them (operator
pods never migrate themselves). Only a restore under way holds them back: pods must not
serve a database that is still being loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag_operator.builders.common import child_name, runtime_image, stable_hash
from rag_operator.models import MigrationPhase, MigrationStatus, RagSystem
from rag_operator.models.naming import ANNOTATION_PREFIX, RETRY_MIGRATION_ANNOTATION
from rag_operator.observed import Observed, PodInfo

MESSAGE_LIMIT = 2048
VERSION_ANNOTATION = (
    f"{ANNOTATION_PREFIX}/version"  # the tail of the failed pod's log kept in status and Events
)


@dataclass(frozen=True)
class JobState:
    """What a migration Job says: its phase, and why it failed."""

    phase: MigrationPhase
    message: str = ""
    completed_at: str = ""


@dataclass(frozen=True)
class MigrationPlan:
    """The outcome of the migration step of one pass."""

    status: MigrationStatus
    stable_version: str | None  # what the API and worker Deployments run; None = not yet
    job: bool  # whether the attempt's Job should exist (created when missing)
    backup: tuple[str, str] | None = None  # (Job, version) of the pre-upgrade backup to run

    @property
    def failed(self) -> bool:
        return self.status.phase is MigrationPhase.FAILED

    @property
    def succeeded(self) -> bool:
        return self.status.phase is MigrationPhase.SUCCEEDED

    @property
    def workloads_wait(self) -> bool:
        """Whether the API and worker wait for this migration: held back, or running the
        version it migrates to (a first install) while it has not finished."""
        if self.stable_version is None:
            return True
        finished = self.failed or self.succeeded
        return not finished and self.stable_version == self.status.version


def job_name(rs: RagSystem, image: str, generation: int, token: str) -> str:
    """The Job of one attempt (at most 40 + 19 characters: a valid label value)."""
    return child_name(rs, f"migrate-{stable_hash([image, generation, token])[:10]}")


def retry_token(rs: RagSystem) -> str:
    return rs.metadata.annotations.get(RETRY_MIGRATION_ANNOTATION, "")


def current_attempt(rs: RagSystem) -> MigrationStatus:
    """The attempt for the desired image: the previous one, or a new one (phase Pending)."""
    prev = rs.status.migration
    image, token, gen = runtime_image(rs), retry_token(rs), rs.metadata.generation
    if prev is not None and prev.job and prev.image == image and prev.retry_token == token:
        failed = prev.phase is MigrationPhase.FAILED
        if not failed or prev.attempt_generation == gen:
            return prev
    return MigrationStatus(
        version=rs.spec.version,
        image=image,
        job=job_name(rs, image, gen, token),
        phase=MigrationPhase.PENDING,
        attempt_generation=gen,
        retry_token=token,
    )


def termination_message(pods: Sequence[PodInfo], job: str) -> str:
    """The last words of the Job's most recently finished pod (its log tail on failure)."""
    finished = sorted(
        (p for p in pods if p.job == job and p.terminated_message),
        key=lambda p: p.finished_at,
    )
    if not finished:
        return ""
    text = finished[-1].terminated_message.strip()
    return text[-MESSAGE_LIMIT:]


def job_state(job: Mapping[str, Any] | None, pods: Sequence[PodInfo]) -> JobState | None:
    """Running, Succeeded or Failed from a Job's status; None when the Job does not exist."""
    if job is None:
        return None
    status = job.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    name = (job.get("metadata") or {}).get("name", "")
    if "Complete" in conditions or int(status.get("succeeded") or 0) > 0:
        return JobState(MigrationPhase.SUCCEEDED, "", str(status.get("completionTime") or ""))
    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    if failed is not None:
        why = f"{failed.get('reason') or 'Failed'}: {failed.get('message') or 'the Job failed'}"
        logs = termination_message(pods, name)
        text = f"{why}; last log lines: {logs}" if logs else why
        return JobState(MigrationPhase.FAILED, text, str(failed.get("lastTransitionTime") or ""))
    return JobState(MigrationPhase.RUNNING, f"Job {name} is running")


def deployed_version(rs: RagSystem, observed: Observed) -> str | None:
    """The version the API (else the worker) Deployment is set to run; None if neither exists."""
    for component in ("api", "worker"):
        dep = observed.children.get(("Deployment", child_name(rs, component)))
        containers = (((dep or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in containers.get("containers") or []:
            image = str(container.get("image") or "")
            if ":" in image.rsplit("/", 1)[-1]:
                return image.rsplit(":", 1)[1]
    return None


def stable_version(rs: RagSystem, observed: Observed, migration: MigrationStatus) -> str | None:
    """The version the stable API and worker Deployments should run.

    The desired version once its migration succeeded; otherwise the version they run now
    (None on a first install: see `first_install`).
    """
    if migration.phase is MigrationPhase.SUCCEEDED and migration.image == runtime_image(rs):
        return migration.version
    return deployed_version(rs, observed)


def backup_first(rs: RagSystem, observed: Observed) -> str | None:
    """The serving version to back up before migrating away from it, if backups are
    configured with beforeUpgrade (an upgrade, not a first install)."""
    backup = rs.spec.backup
    deployed = deployed_version(rs, observed)
    if backup is None or not backup.before_upgrade or deployed in (None, rs.spec.version):
        return None
    return deployed


def _pending(
    rs: RagSystem, observed: Observed, attempt: MigrationStatus, message: str
) -> MigrationPlan:
    status = attempt.model_copy(update={"phase": MigrationPhase.PENDING, "message": message})
    return MigrationPlan(status, stable_version(rs, observed, status), job=False)


def _before_migration(
    rs: RagSystem, observed: Observed, attempt: MigrationStatus, postgres_ready: bool, hold: str
) -> MigrationPlan | None:
    """Wait for Postgres, a restore and the pre-upgrade backup; None when the Job may start."""
    if not postgres_ready:
        return _pending(rs, observed, attempt, "waiting for Postgres")
    if hold:
        return _pending(rs, observed, attempt, hold)
    old = backup_first(rs, observed)
    if old is None:
        return None
    name = f"{attempt.job}-bk"
    attempt = attempt.model_copy(update={"backup_job": name})
    state = job_state(observed.children.get(("Job", name)), observed.pods)
    if state is None or state.phase is MigrationPhase.RUNNING:
        plan = _pending(rs, observed, attempt, f"backing up {old} first (Job {name})")
        return MigrationPlan(plan.status, plan.stable_version, job=False, backup=(name, old))
    if state.phase is MigrationPhase.FAILED:
        text = f"the backup before the upgrade failed (Job {name}), nothing migrated: "
        status = attempt.model_copy(
            update={"phase": MigrationPhase.FAILED, "message": text + state.message}
        )
        return MigrationPlan(status, stable_version(rs, observed, status), job=False)
    return None


def plan_migration(
    rs: RagSystem, observed: Observed, postgres_ready: bool, now: str, hold: str = ""
) -> MigrationPlan:
    """The migration step of one pass: the attempt, its phase and the stable version.

    `hold` says why the migration must wait besides Postgres (a restore under way); it also
    holds back a first install's Deployments."""
    return first_install(rs, _plan(rs, observed, postgres_ready, now, hold), hold)


def first_install(rs: RagSystem, plan: MigrationPlan, hold: str) -> MigrationPlan:
    """With no Deployment yet and no restore under way, the Deployments start with the
    desired version beside the migration instead of after it."""
    if plan.stable_version is not None or hold:
        return plan
    return replace(plan, stable_version=rs.spec.version)


def _plan(
    rs: RagSystem, observed: Observed, postgres_ready: bool, now: str, hold: str
) -> MigrationPlan:
    attempt = current_attempt(rs)
    state = job_state(observed.children.get(("Job", attempt.job)), observed.pods)
    if state is None:
        if attempt.phase in (MigrationPhase.SUCCEEDED, MigrationPhase.FAILED):
            # Finished and then deleted: the record stays, the Job is not made again.
            return MigrationPlan(attempt, stable_version(rs, observed, attempt), job=False)
        waiting = _before_migration(rs, observed, attempt, postgres_ready, hold)
        if waiting is not None:
            return waiting
        if backup_first(rs, observed) is not None:
            attempt = attempt.model_copy(update={"backup_job": f"{attempt.job}-bk"})
        status = attempt.model_copy(
            update={
                "phase": MigrationPhase.RUNNING,
                "message": f"Job {attempt.job} created",
                "started_at": attempt.started_at or now,
            }
        )
        plan = MigrationPlan(status, stable_version(rs, observed, status), job=True)
        return _keep_backup(plan, observed)
    update: dict[str, Any] = {"phase": state.phase, "message": state.message}
    update["started_at"] = attempt.started_at or now
    if state.phase is not MigrationPhase.RUNNING:
        update["completed_at"] = attempt.completed_at or state.completed_at or now
    if state.phase is MigrationPhase.SUCCEEDED and not state.message:
        update["message"] = f"schema migrated for {attempt.version}"
    status = attempt.model_copy(update=update)
    plan = MigrationPlan(status, stable_version(rs, observed, status), job=True)
    return _keep_backup(plan, observed)


def _keep_backup(plan: MigrationPlan, observed: Observed) -> MigrationPlan:
    """Keep the attempt's pre-upgrade backup Job while it exists (a record, not pruned)."""
    name = plan.status.backup_job
    job = observed.children.get(("Job", name)) if name else None
    if job is None:
        return plan
    version = ((job.get("metadata") or {}).get("annotations") or {}).get(VERSION_ANNOTATION, "")
    return MigrationPlan(plan.status, plan.stable_version, plan.job, (name, str(version)))
