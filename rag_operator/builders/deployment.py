"""The API and worker Deployments of the runtime."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import (
    DATA_DIR,
    child_name,
    config_name,
    container_security_context,
    image_pull_secrets,
    labels,
    metadata,
    pod_security_context,
    runtime_image,
    selector_labels,
)
from rag_operator.builders.runtime import RuntimeConfig
from rag_operator.models import API_PORT, OperatorConfig, RagSystem, ResourceRequirements
from rag_operator.models.naming import CONFIG_HASH_ANNOTATION

RUNTIME_UID = 10001
HEALTH_PATH = "/api/v1/health"
READY_PATH = "/api/v1/ready"
WORKER_HEALTH_PATH = "/health"
WORKER_READY_PATH = "/ready"


def _pod_template(
    rs: RagSystem,
    runtime: RuntimeConfig,
    component: str,
    container: dict[str, Any],
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(RUNTIME_UID),
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "data", "emptyDir": {}},
        ],
    }
    pull = image_pull_secrets(rs)
    if pull:
        spec["imagePullSecrets"] = pull
    return {
        "metadata": {
            "labels": labels(rs, component),
            "annotations": {CONFIG_HASH_ANNOTATION: runtime.config_hash},
        },
        "spec": spec,
    }


def _container(
    rs: RagSystem,
    runtime: RuntimeConfig,
    name: str,
    args: list[str],
    resources: ResourceRequirements,
    version: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "image": runtime_image(rs, version),
        "imagePullPolicy": rs.spec.image.pull_policy.value,
        # The image's ENTRYPOINT is `rag-runtime`: name it as the command so that args are
        # the subcommand only (args alone would run `rag-runtime rag-runtime serve`).
        "command": args[:1],
        "args": args[1:],
        "envFrom": [{"configMapRef": {"name": config_name(rs)}}],
        "env": runtime.env(),
        "resources": resources.wire(),
        "securityContext": container_security_context(read_only_root=True),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }


def _probe(path: str, port: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def build_api_deployment(
    rs: RagSystem, cfg: OperatorConfig, runtime: RuntimeConfig, version: str | None = None
) -> dict[str, Any]:
    """The API pods, running `version` (default spec.version)."""
    api = rs.spec.api
    container = _container(rs, runtime, "api", ["rag-runtime", "serve"], api.resources, version)
    container["ports"] = [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}]
    container["startupProbe"] = _probe(HEALTH_PATH, "http", 5, 60)
    container["livenessProbe"] = _probe(HEALTH_PATH, "http", 10, 3)
    container["readinessProbe"] = _probe(READY_PATH, "http", 5, 3)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(rs, "api")},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": _pod_template(rs, runtime, "api", container),
    }
    if not api.autoscaling.enabled:
        # With autoscaling on, the HPA owns spec.replicas; leaving it out of the apply
        # gives the field up.
        spec["replicas"] = api.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(rs, child_name(rs, "api"), "api"),
        "spec": spec,
    }


def build_worker_deployment(
    rs: RagSystem, cfg: OperatorConfig, runtime: RuntimeConfig, version: str | None = None
) -> dict[str, Any]:
    """The worker pods, running `version` (default spec.version)."""
    worker = rs.spec.worker
    args = ["rag-runtime", "worker"]
    container = _container(rs, runtime, "worker", args, worker.resources, version)
    port = rs.spec.monitoring.metrics_port
    container["ports"] = [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    container["env"] = [{"name": "RAG_METRICS_PORT", "value": str(port)}, *container["env"]]
    # The worker's own HTTP server on the metrics port (rag_runtime.worker_http): /health is
    # its event loop alive, /ready its queue and database reachable and the schema one it
    # serves (on a first install it starts beside the migration). The port opens once the
    # model is loaded; until then the startup probe keeps liveness from counting.
    container["startupProbe"] = _probe(WORKER_HEALTH_PATH, "metrics", 5, 60)
    container["livenessProbe"] = _probe(WORKER_HEALTH_PATH, "metrics", 10, 6)
    container["readinessProbe"] = _probe(WORKER_READY_PATH, "metrics", 5, 3)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(rs, child_name(rs, "worker"), "worker"),
        "spec": {
            "replicas": worker.replicas,
            "selector": {"matchLabels": selector_labels(rs, "worker")},
            "template": _pod_template(rs, runtime, "worker", container),
        },
    }
