"""Restore bootstrap: a new system restores `spec.bootstrap.backup` before anything runs on
its stores. Order: Postgres ready -> restore Job -> migration Job -> API and worker.

`plan_restore` is pure. The backup is a RagBackup by name (Completed; its status says where
it went) or a location. A restore that succeeded is never run again; one that failed stays
failed (the stores may hold part of it: recreate the system) and the system is Degraded.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag_operator.builders.common import child_name
from rag_operator.models import MigrationPhase, RagSystem, RestoreStatus
from rag_operator.models.backup import (
    BackupDestination,
    BackupLocation,
    S3Destination,
    VolumeDestination,
)
from rag_operator.models.ragbackup import BackupPhase, RagBackup
from rag_operator.observed import Observed
from rag_operator.release.migration import job_state


@dataclass(frozen=True)
class RestoreSource:
    url: str
    name: str
    destination: BackupDestination


@dataclass(frozen=True)
class RestorePlan:
    status: RestoreStatus | None
    job: RestoreSource | None = None  # the Job to keep (created when missing)
    problem: str = ""
    done: bool = True  # whether migrations and the workloads may go ahead

    @property
    def hold(self) -> str:
        """Why the migration must wait ("" = it need not)."""
        return "" if self.done else (self.problem or "waiting for the restore")


def restore_job_name(rs: RagSystem) -> str:
    return child_name(rs, "restore")


def from_location(loc: BackupLocation) -> RestoreSource:
    """A location as the restore Job reaches it."""
    if loc.url.startswith("s3://"):
        bucket = loc.url[len("s3://") :].split("/", 1)[0]
        assert loc.endpoint is not None
        assert loc.credentials_secret_ref is not None
        s3 = S3Destination(
            endpoint=loc.endpoint,
            bucket=bucket,
            region=loc.region,
            credentials_secret_ref=loc.credentials_secret_ref,
        )
        return RestoreSource(loc.url, loc.backup_name, BackupDestination(s3=s3))
    assert loc.claim_name is not None
    volume = VolumeDestination(claim_name=loc.claim_name)
    return RestoreSource(loc.url, loc.backup_name, BackupDestination(volume=volume))


def source_of(rs: RagSystem, rb: RagBackup | None) -> RestoreSource | str:
    """Where to restore from, or why that is not known (naming the field)."""
    assert rs.spec.bootstrap is not None
    spec = rs.spec.bootstrap.backup
    if spec.location is not None:
        return from_location(spec.location)
    if rb is None:
        return f"spec.bootstrap.backup.name: RagBackup {spec.name!r} not found in {rs.namespace}"
    st = rb.status
    if st.phase is not BackupPhase.COMPLETED or st.destination is None or not st.url:
        phase = st.phase.value
        return f"spec.bootstrap.backup.name: RagBackup {rb.name!r} is {phase}, not Completed"
    return RestoreSource(st.url, st.backup_name or rb.name, st.destination)


def plan_restore(
    rs: RagSystem, observed: Observed, rb: RagBackup | None, postgres_ready: bool, now: str
) -> RestorePlan:
    """The restore step of one pass."""
    prev = rs.status.restore
    if rs.spec.bootstrap is None:
        return RestorePlan(None)
    if prev is not None and prev.phase in (MigrationPhase.SUCCEEDED, MigrationPhase.FAILED):
        kept = None  # the Job stays while it exists: the record, and a failure's logs
        if ("Job", prev.job) in observed.children and prev.destination is not None:
            kept = RestoreSource(prev.url, prev.backup_name, prev.destination)
        if prev.phase is MigrationPhase.SUCCEEDED:
            return RestorePlan(prev, job=kept)
        return RestorePlan(prev, job=kept, problem=f"restore failed: {prev.message}", done=False)
    name = restore_job_name(rs)
    source = source_of(rs, rb)
    if isinstance(source, str):
        status = RestoreStatus(phase=MigrationPhase.PENDING, job=name, message=source)
        return RestorePlan(status, problem=source, done=False)
    where = f"{source.url} {source.name}"
    base = RestoreStatus(
        job=name,
        source=where,
        url=source.url,
        backup_name=source.name,
        destination=source.destination,
    )
    state = job_state(observed.children.get(("Job", name)), observed.pods)
    if state is None and not postgres_ready:
        return RestorePlan(base.model_copy(update={"message": "waiting for Postgres"}), done=False)
    if state is None or state.phase is MigrationPhase.RUNNING:
        update = {"phase": MigrationPhase.RUNNING, "message": f"restoring {where}"}
        return RestorePlan(base.model_copy(update=update), job=source, done=False)
    ended = {"completed_at": state.completed_at or now}
    if state.phase is MigrationPhase.FAILED:
        status = base.model_copy(
            update={"phase": MigrationPhase.FAILED, "message": state.message, **ended}
        )
        return RestorePlan(
            status, job=source, problem=f"restore failed: {state.message}", done=False
        )
    status = base.model_copy(
        update={"phase": MigrationPhase.SUCCEEDED, "message": f"restored {where}", **ended}
    )
    return RestorePlan(status, job=source)
