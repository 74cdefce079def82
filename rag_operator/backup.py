"""On-demand backups: a RagBackup runs one Job (`rag-runtime backup create`) and records its
result; the RagSystem shows the age of its last good backup.

`plan_backup` is pure: from the RagBackup, its RagSystem and the observed Job (and pods)
it decides the Job to create and the status. A finished backup (Completed or Failed) is
never run again: a RagBackup is one backup. The result is the one JSON line the CLI prints
(read from the pod's termination message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag_operator.builders import runtime_config
from rag_operator.builders.backup import backup_location, build_backup_job
from rag_operator.builders.common import stable_hash
from rag_operator.conditions import set_condition
from rag_operator.models import MigrationPhase, RagSystem
from rag_operator.models.ragbackup import (
    BACKUP_API_VERSION,
    BACKUP_KIND,
    BackupPhase,
    RagBackup,
    RagBackupStatus,
)
from rag_operator.observed import PodInfo
from rag_operator.release.migration import job_state, termination_message


@dataclass(frozen=True)
class BackupPlan:
    status: RagBackupStatus
    job: dict[str, Any] | None  # the Job to create (None = nothing to create)
    events: tuple[tuple[str, str, str], ...] = ()


def backup_job_name(rs_name: str, uid: str) -> str:
    return f"{rs_name}-backup-{stable_hash(uid)[:10]}"


def owner_of(rb: RagBackup) -> dict[str, Any]:
    return {
        "apiVersion": BACKUP_API_VERSION,
        "kind": BACKUP_KIND,
        "name": rb.name,
        "uid": rb.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def parse_result(text: str) -> dict[str, Any]:
    """The last JSON object line of a CLI's output; {} when there is none."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def _size_of(result: Mapping[str, Any]) -> int:
    for key in ("size_bytes", "sizeBytes", "bytes", "size"):
        value = result.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def _with_conditions(
    rb: RagBackup,
    status: RagBackupStatus,
    now: str,
    complete: bool,
    available: bool,
    reason: str,
    text: str,
    where: str,
) -> RagBackupStatus:
    gen = rb.metadata.generation
    old = rb.status.conditions
    finished = status.phase in (BackupPhase.COMPLETED, BackupPhase.FAILED)
    conditions = [
        set_condition(old, "Complete", complete, reason, text, gen, now),
        set_condition(
            old,
            "Available",
            available,
            "Stored" if available else ("NotStored" if finished else "NotYet"),
            where if available else text,
            gen,
            now,
        ),
    ]
    return status.model_copy(update={"conditions": conditions, "observed_generation": gen})


def _refused(rb: RagBackup, rs: RagSystem | None, now: str) -> BackupPlan | None:
    """A backup that cannot start: its system is missing (Pending) or it has nowhere to go."""
    prev = rb.status
    if rs is None:
        text = f"spec.systemRef: RagSystem {rb.spec.system_ref.name!r} not found"
        status = prev.model_copy(update={"phase": BackupPhase.PENDING, "message": text})
        pending = _with_conditions(rb, status, now, False, False, "SystemNotFound", text, "")
        return BackupPlan(pending, None)
    if rb.spec.destination is None and rs.spec.backup is None:
        text = f"spec.destination: unset, and RagSystem {rs.name} has no spec.backup.destination"
        status = prev.model_copy(
            update={"phase": BackupPhase.FAILED, "message": text, "completed_at": now}
        )
        failed = _with_conditions(rb, status, now, False, False, "NoDestination", text, "")
        return BackupPlan(failed, None, (("Warning", "BackupFailed", text),))
    return None


def _completed(
    rb: RagBackup, base: RagBackupStatus, pods: Sequence[PodInfo], at: str, now: str
) -> BackupPlan:
    """Completed, with what the CLI's JSON result says."""
    result = parse_result(termination_message(pods, base.job))
    size = _size_of(result)
    counts = [f"{result[k]} {k}" for k in ("documents", "chunks") if isinstance(result.get(k), int)]
    text = ", ".join(counts) or "backup complete"
    where = str(result.get("location") or result.get("url") or base.location)
    status = base.model_copy(
        update={
            "phase": BackupPhase.COMPLETED,
            "message": text,
            "completed_at": at or now,
            "size_bytes": size,
            "size": human_size(size) if size else "",
            "location": where,
        }
    )
    done = _with_conditions(rb, status, now, True, True, "Completed", text, where)
    return BackupPlan(done, None, (("Normal", "BackupCompleted", f"{text}: {where}"),))


def plan_backup(
    rb: RagBackup,
    rs: RagSystem | None,
    job: Mapping[str, Any] | None,
    pods: Sequence[PodInfo],
    now: str,
) -> BackupPlan:
    """The Job to create (if any) and the status of one RagBackup."""
    prev = rb.status
    if prev.phase in (BackupPhase.COMPLETED, BackupPhase.FAILED):
        return BackupPlan(prev, None)
    refused = _refused(rb, rs, now)
    if refused is not None or rs is None:
        return refused or BackupPlan(prev, None)
    dest = rb.spec.destination or (rs.spec.backup.destination if rs.spec.backup else None)
    assert dest is not None
    version = rs.status.version or rs.spec.version
    name = backup_job_name(rs.name, rb.metadata.uid)
    location = backup_location(rs, dest)
    base = prev.model_copy(
        update={
            "job": name,
            "backup_name": rb.name,
            "location": f"{location}/{rb.name}",
            "url": location,
            "destination": dest,
            "started_at": prev.started_at or now,
            "runtime_version": prev.runtime_version or version,
        }
    )
    state = job_state(job, pods)
    if state is None or state.phase is MigrationPhase.RUNNING:
        manifest = None
        if state is None:
            owner = owner_of(rb)
            manifest = build_backup_job(rs, runtime_config(rs), owner, name, rb.name, version, dest)
        status = base.model_copy(update={"phase": BackupPhase.RUNNING, "message": f"Job {name}"})
        running = _with_conditions(rb, status, now, False, False, "Running", "backup running", "")
        event = ("Normal", "BackupStarted", f"backing up {rs.name} to {location}: Job {name}")
        return BackupPlan(running, manifest, (event,) if not prev.job else ())
    if state.phase is MigrationPhase.FAILED:
        update = {
            "phase": BackupPhase.FAILED,
            "message": state.message,
            "completed_at": state.completed_at or now,
        }
        status = base.model_copy(update=update)
        failed = _with_conditions(rb, status, now, False, False, "BackupFailed", state.message, "")
        return BackupPlan(failed, None, (("Warning", "BackupFailed", state.message[:1024]),))
    return _completed(rb, base, pods, state.completed_at, now)


def job_key(rb: RagBackup, rs: RagSystem) -> tuple[str, str]:
    """The observed-children key of the RagBackup's Job."""
    return ("Job", backup_job_name(rs.name, rb.metadata.uid))
