"""Backups: where they go (URL and credentials env) and the CronJob of `spec.backup`.

Each scheduled run is one pod: an init container runs `rag-runtime backup create`, then the
main container `rag-runtime backup prune` with the retention; both print one JSON line
(their termination message). The location is per system:
`s3://BUCKET/PREFIX/NAMESPACE/NAME` or `file:///backups/PATH/NAMESPACE/NAME` on the claim.
"""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, labels, metadata
from rag_operator.builders.job import VERSION_ANNOTATION, runtime_container, runtime_pod
from rag_operator.builders.runtime import RuntimeConfig
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.backup import BackupDestination, BackupSpec

BACKUP_MOUNT = "/backups"
BACKUP_DEADLINE_S = 6 * 3600
ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"


def backup_location(rs: RagSystem, dest: BackupDestination) -> str:
    """The URL under which this system's backups go."""
    if dest.s3 is not None:
        parts = [dest.s3.prefix.strip("/"), rs.namespace, rs.name]
        return f"s3://{dest.s3.bucket}/" + "/".join(p for p in parts if p)
    assert dest.volume is not None
    parts = [BACKUP_MOUNT, dest.volume.path.strip("/"), rs.namespace, rs.name]
    return "file://" + "/".join(p for p in parts if p)


def destination_env(dest: BackupDestination) -> list[dict[str, Any]]:
    """Endpoint and credentials of an S3 destination, as the backup CLI reads them."""
    if dest.s3 is None:
        return []
    secret = dest.s3.credentials_secret_ref.name
    env: list[dict[str, Any]] = [{"name": "RAG_BACKUP_S3_ENDPOINT", "value": dest.s3.endpoint}]
    for key in (ACCESS_KEY, SECRET_KEY):
        env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    if dest.s3.region:
        env.append({"name": "AWS_REGION", "value": dest.s3.region})
    return env


def destination_volumes(dest: BackupDestination) -> list[dict[str, Any]]:
    if dest.volume is None:
        return []
    return [{"name": "backups", "persistentVolumeClaim": {"claimName": dest.volume.claim_name}}]


def backup_container(
    rs: RagSystem,
    runtime: RuntimeConfig,
    dest: BackupDestination,
    name: str,
    version: str,
    args: list[str],
) -> dict[str, Any]:
    """A runtime container that reaches the destination (env, and the volume mounted)."""
    container = runtime_container(rs, runtime, name, version, args)
    container["env"] = [*container["env"], *destination_env(dest)]
    if dest.volume is not None:
        container["volumeMounts"].append({"name": "backups", "mountPath": BACKUP_MOUNT})
    return container


def prune_args(backup: BackupSpec, url: str) -> list[str]:
    args = ["backup", "prune", "--to", url]
    if backup.retention.keep_last is not None:
        args += ["--keep-last", str(backup.retention.keep_last)]
    if backup.retention.max_age_days is not None:
        args += ["--max-age-days", str(backup.retention.max_age_days)]
    return args


def build_backup_cronjob(
    rs: RagSystem, cfg: OperatorConfig, runtime: RuntimeConfig, version: str
) -> dict[str, Any]:
    """The CronJob of spec.backup: create a backup, then apply the retention."""
    backup = rs.spec.backup
    assert backup is not None
    dest = backup.destination
    url = backup_location(rs, dest)
    create = backup_container(
        rs, runtime, dest, "create", version, ["backup", "create", "--to", url]
    )
    prune = backup_container(rs, runtime, dest, "prune", version, prune_args(backup, url))
    pod = runtime_pod(rs, [prune], init=[create], volumes=destination_volumes(dest))
    spec: dict[str, Any] = {
        "schedule": backup.schedule,
        "suspend": backup.suspend,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": labels(rs, "backup")},
            "spec": {
                "backoffLimit": 1,
                "activeDeadlineSeconds": BACKUP_DEADLINE_S,
                "template": {"metadata": {"labels": labels(rs, "backup")}, "spec": pod},
            },
        },
    }
    if backup.time_zone:
        spec["timeZone"] = backup.time_zone
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(rs, child_name(rs, "backup"), "backup"),
        "spec": spec,
    }


def build_backup_job(
    rs: RagSystem,
    runtime: RuntimeConfig,
    owner: dict[str, Any],
    name: str,
    backup_name: str,
    version: str,
    dest: BackupDestination,
) -> dict[str, Any]:
    """The Job of one on-demand backup (`backup create --name`), owned by its RagBackup."""
    url = backup_location(rs, dest)
    args = ["backup", "create", "--to", url, "--name", backup_name]
    create = backup_container(rs, runtime, dest, "backup", version, args)
    pod = runtime_pod(rs, [create], volumes=destination_volumes(dest))
    meta = metadata(rs, name, "backup", {VERSION_ANNOTATION: version})
    meta["ownerReferences"] = [owner]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": BACKUP_DEADLINE_S,
            "template": {"metadata": {"labels": labels(rs, "backup")}, "spec": pod},
        },
    }


def build_restore_job(
    rs: RagSystem,
    runtime: RuntimeConfig,
    name: str,
    version: str,
    url: str,
    backup_name: str,
    dest: BackupDestination,
) -> dict[str, Any]:
    """The Job that restores `backup_name` from `url` into the system's (empty) stores."""
    args = ["restore", "--from", url, "--name", backup_name]
    container = backup_container(rs, runtime, dest, "restore", version, args)
    pod = runtime_pod(rs, [container], volumes=destination_volumes(dest))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(rs, name, "restore", {VERSION_ANNOTATION: version}),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": BACKUP_DEADLINE_S,
            "template": {"metadata": {"labels": labels(rs, "restore")}, "spec": pod},
        },
    }
