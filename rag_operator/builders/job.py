"""One-off Jobs of the runtime image: the schema migration of a version.

A Job's pod template is immutable, so each attempt is a Job of its own name (chosen by
`rag_operator.release.migration`); the operator creates it once and then only reads it.
The container's last log lines become its termination message when it fails
(`FallbackToLogsOnError`), which is what the operator shows in the RagSystem's status.
"""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import (
    config_name,
    container_security_context,
    image_pull_secrets,
    labels,
    metadata,
    pod_security_context,
    runtime_image,
)
from rag_operator.builders.runtime import RuntimeConfig
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.naming import ANNOTATION_PREFIX

RUNTIME_UID = 10001
VERSION_ANNOTATION = f"{ANNOTATION_PREFIX}/version"
# A migration that cannot finish in this time (or in this many tries) has failed.
MIGRATION_DEADLINE_S = 900
MIGRATION_BACKOFF_LIMIT = 2
MIGRATE_WAIT_S = 120  # seconds a migration pod waits for Postgres to accept connections


def runtime_container(
    rs: RagSystem, runtime: RuntimeConfig, name: str, version: str, args: list[str]
) -> dict[str, Any]:
    """A container running `rag-runtime ARGS` of `version` with the system's settings."""
    return {
        "name": name,
        "image": runtime_image(rs, version),
        "imagePullPolicy": rs.spec.image.pull_policy.value,
        "command": ["rag-runtime"],
        "args": args,
        "envFrom": [{"configMapRef": {"name": config_name(rs)}}],
        "env": runtime.env(),
        "resources": rs.spec.api.resources.wire(),
        "securityContext": container_security_context(read_only_root=True),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def runtime_pod(
    rs: RagSystem,
    containers: list[dict[str, Any]],
    init: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The spec of a one-off pod: never restarted, no API token, restricted security."""
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(RUNTIME_UID),
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {}}, *(volumes or [])],
    }
    if init:
        pod["initContainers"] = init
    pull = image_pull_secrets(rs)
    if pull:
        pod["imagePullSecrets"] = pull
    return pod


def runtime_job(
    rs: RagSystem,
    runtime: RuntimeConfig,
    name: str,
    component: str,
    version: str,
    args: list[str],
    *,
    backoff_limit: int,
    deadline_s: int,
) -> dict[str, Any]:
    """A Job running `rag-runtime ARGS` of `version` with the system's runtime settings."""
    pod = runtime_pod(rs, [runtime_container(rs, runtime, component, version, args)])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(rs, name, component, {VERSION_ANNOTATION: version}),
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": deadline_s,
            "template": {"metadata": {"labels": labels(rs, component)}, "spec": pod},
        },
    }


def build_migration_job(
    rs: RagSystem, cfg: OperatorConfig, runtime: RuntimeConfig, name: str, version: str
) -> dict[str, Any]:
    """The Job that brings the schema to what `version` needs (`rag-runtime migrate`).

    Its pod waits up to MIGRATE_WAIT_S for Postgres to accept connections: the Job is made
    once the Postgres pod is ready, and its Service may route to it a moment later. An
    environment variable, not a flag, so that runtime versions without it still run."""
    job = runtime_job(
        rs,
        runtime,
        name,
        "migrate",
        version,
        ["migrate"],
        backoff_limit=MIGRATION_BACKOFF_LIMIT,
        deadline_s=MIGRATION_DEADLINE_S,
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [
        *container["env"],
        {"name": "RAG_MIGRATE_WAIT_SECONDS", "value": str(MIGRATE_WAIT_S)},
    ]
    return job
