"""API and worker Deployments.

Aspects covered: replicas (and none when autoscaling owns them), restricted pod security,
probes on /api/v1/health and /api/v1/ready, resource requests, config hash that changes with
settings and not otherwise, image and pull secrets, secret env from generated or user Secrets.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.models.naming import CONFIG_HASH_ANNOTATION
from tests.unit.operator.helpers import (
    VARIANTS,
    api_deployment,
    make_rs,
    variant,
    worker_deployment,
)

BUILDERS = [api_deployment, worker_deployment]


def _container(dep: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = dep["spec"]["template"]["spec"]["containers"][0]
    return container


def _hash(dep: dict[str, Any]) -> str:
    return str(dep["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("builder", BUILDERS)
def test_pods_run_with_restricted_security(name: str, builder: Any) -> None:
    pod = builder(variant(name))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("builder", BUILDERS)
def test_containers_request_resources(builder: Any) -> None:
    resources = _container(builder(make_rs()))["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}


def test_api_probes_hit_health_and_ready_endpoints() -> None:
    container = _container(api_deployment(make_rs()))
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/api/v1/health"


@pytest.mark.parametrize(
    ("spec", "replicas"),
    [({}, 2), ({"api": {"replicas": 5}}, 5), ({"api": {"replicas": 0}}, 0)],
)
def test_api_replicas_follow_spec(spec: dict[str, Any], replicas: int) -> None:
    assert api_deployment(make_rs(spec))["spec"]["replicas"] == replicas


def test_api_replicas_left_to_hpa_when_autoscaling() -> None:
    dep = api_deployment(variant("autoscaling"))
    assert "replicas" not in dep["spec"]


@pytest.mark.parametrize(
    "change",
    [
        {"retrieval": {"topK": 3}},
        {"embedding": {"model": "other", "modelPath": "/models/other"}},
        {"worker": {"concurrency": 9}},
        {
            "generation": {
                "provider": "openai",
                "model": "m",
                "apiKeySecretRef": {"name": "s", "key": "k"},
            }
        },
        {"postgres": {"external": {"connectionSecretRef": {"name": "pg", "key": "uri"}}}},
    ],
)
@pytest.mark.parametrize("builder", BUILDERS)
def test_settings_change_rolls_pods(change: dict[str, Any], builder: Any) -> None:
    assert _hash(builder(make_rs())) != _hash(builder(make_rs(change)))


@pytest.mark.parametrize(
    "change", [{"api": {"replicas": 7}}, {"worker": {"replicas": 3}}, {"deletionPolicy": "Delete"}]
)
def test_scaling_does_not_roll_pods(change: dict[str, Any]) -> None:
    assert _hash(api_deployment(make_rs())) == _hash(api_deployment(make_rs(change)))


def test_image_tag_is_the_version_and_pull_secrets_pass_through() -> None:
    dep = api_deployment(variant("anthropic"))
    assert _container(dep)["image"] == "ghcr.io/ragops/rag-runtime:0.1.0"
    assert dep["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_managed_stores_use_generated_credentials() -> None:
    env = {e["name"]: e for e in _container(api_deployment(make_rs()))["env"]}
    ref = env["RAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "demo-credentials", "key": "database-url"}
    assert env["RAG_REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "redis-url"


def test_external_stores_use_user_secrets() -> None:
    env = {e["name"]: e for e in _container(api_deployment(variant("external")))["env"]}
    assert env["RAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "uri"}
    assert env["RAG_NEO4J_URI"]["valueFrom"]["secretKeyRef"] == {"name": "nj", "key": "uri"}
    assert env["RAG_NEO4J_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"


def test_disabled_redis_sets_no_redis_url() -> None:
    env = {e["name"] for e in _container(api_deployment(variant("no-redis")))["env"]}
    assert "RAG_REDIS_URL" not in env


def test_worker_exposes_metrics_port() -> None:
    dep = worker_deployment(make_rs({"monitoring": {"metricsPort": 9300}}))
    container = _container(dep)
    assert container["ports"][0]["containerPort"] == 9300
    assert {"name": "RAG_METRICS_PORT", "value": "9300"} in container["env"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_selector_is_a_subset_of_pod_labels(builder: Any) -> None:
    dep = builder(make_rs())
    selector = dep["spec"]["selector"]["matchLabels"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert "app.kubernetes.io/managed-by" not in selector


def test_worker_probes_use_its_http_health_endpoint() -> None:
    container = _container(worker_deployment(make_rs({"monitoring": {"metricsPort": 9300}})))
    for probe, path in (
        ("startupProbe", "/health"),
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
        assert "tcpSocket" not in container[probe]
    # Model load may take minutes: the startup probe allows them before liveness counts.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
