"""Invalid RagSystems: the API server rejects them with a message naming the field, or the
operator admits them and reports Degraded with such a message.

Aspects covered: a table of objects rejected on create (OpenAPI and CEL rules), changes
rejected on update (transition rules with oldSelf), and objects the schema cannot judge
(missing Secrets, an unknown StorageClass) that end up Degraded. An httpRoute without the
Gateway API CRDs (GatewayAPINotInstalled) is covered in test_operator_optional_kinds.py,
which controls whether those CRDs are installed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from hack.cluster import Cluster
from tests.integration.operator.conftest import Kube, Operator, condition, rag_manifest, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

LLM = {"name": "llm", "key": "key"}
PG_EXT = {"connectionSecretRef": {"name": "pg", "key": "uri"}}

# (id, spec, a fragment of the API server's message that names the field)
REJECTED_ON_CREATE: list[tuple[str, dict[str, Any], str]] = [
    (
        "autoscaling-min-above-max",
        {"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
        "minReplicas",
    ),
    (
        "postgres-managed-and-external",
        {"postgres": {"managed": {}, "external": PG_EXT}},
        "managed and external",
    ),
    ("postgres-neither", {"postgres": {}}, "managed and external"),
    ("redis-enabled-without-mode", {"redis": {"enabled": True}}, "managed and external"),
    (
        "storage-size-not-a-quantity",
        {"postgres": {"managed": {"storage": {"size": "ten gigs"}}}},
        "storage.size",
    ),
    ("storage-size-zero", {"postgres": {"managed": {"storage": {"size": "0"}}}}, "storage.size"),
    (
        "ingress-and-httproute",
        {
            "api": {
                "exposure": {
                    "ingress": {"host": "a.example.com"},
                    "httpRoute": {"parentRefs": [{"name": "gw"}]},
                }
            }
        },
        "httpRoute",
    ),
    (
        "openai-generation-without-key",
        {"generation": {"provider": "openai", "model": "gpt-4o"}},
        "apiKeySecretRef",
    ),
    (
        "generation-without-model",
        {"generation": {"provider": "anthropic", "apiKeySecretRef": LLM}},
        "generation.model",
    ),
    (
        "openai-embedding-without-key",
        {"embedding": {"provider": "openai", "model": "text-embedding-3-small"}},
        "apiKeySecretRef",
    ),
    (
        "graph-strategy-without-neo4j",
        {"retrieval": {"defaultStrategy": "graph"}},
        "defaultStrategy",
    ),
    ("unknown-strategy", {"retrieval": {"defaultStrategy": "semantic"}}, "defaultStrategy"),
    ("top-k-zero", {"retrieval": {"topK": 0}}, "topK"),
    (
        "chunk-overlap-half-the-chunk",
        {"ingestion": {"chunkTokens": 64, "chunkOverlapTokens": 32}},
        "ingestion.chunkOverlapTokens",
    ),
    ("unknown-log-format", {"logging": {"format": "xml"}}, "format"),
    ("unknown-fusion", {"retrieval": {"fusion": "max"}}, "fusion"),
    (
        "alert-duration-in-words",
        {"monitoring": {"alerts": {"apiDownFor": "2 minutes"}}},
        "apiDownFor",
    ),
    (
        "scale-down-policy-kind",
        {
            "api": {
                "autoscaling": {
                    "behavior": {
                        "scaleDown": {
                            "policies": [{"type": "Nodes", "value": 1, "periodSeconds": 60}]
                        }
                    }
                }
            }
        },
        "type",
    ),
    ("threshold-above-one", {"retrieval": {"similarityThreshold": 1.5}}, "similarityThreshold"),
    ("negative-replicas", {"api": {"replicas": -1}}, "replicas"),
    (
        "worker-without-redis",
        {"redis": {"enabled": False}, "worker": {"replicas": 1}},
        "worker.replicas",
    ),
    ("metrics-port-clash", {"monitoring": {"metricsPort": 8000}}, "metricsPort"),
    ("bad-version", {"version": "1.0/../x"}, "version"),
    ("unknown-pull-policy", {"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ("cpu-not-a-quantity", {"api": {"resources": {"requests": {"cpu": "lots"}}}}, "requests"),
    (
        "requests-above-limits",
        {"api": {"resources": {"requests": {"memory": "4Gi"}, "limits": {"memory": "1Gi"}}}},
        "resources.requests",
    ),
    ("bad-ingress-host", {"api": {"exposure": {"ingress": {"host": "Not_A_Host"}}}}, "host"),
    ("ingress-without-host", {"api": {"exposure": {"ingress": {"className": "nginx"}}}}, "host"),
    (
        "route-without-parents",
        {"api": {"exposure": {"httpRoute": {"parentRefs": []}}}},
        "parentRefs",
    ),
    ("unknown-deletion-policy", {"deletionPolicy": "Keep"}, "deletionPolicy"),
    ("embedding-dimensions-zero", {"embedding": {"dimensions": 0}}, "dimensions"),
    ("unknown-provider", {"generation": {"provider": "cohere"}}, "provider"),
    (
        "embedding-model-the-runtime-cannot-serve",
        {"embedding": {"model": "bge-small-en-v1.5"}},
        "embedding.model",
    ),
    (
        "embedding-dimensions-the-model-does-not-have",
        {"embedding": {"dimensions": 768}},
        "embedding.dimensions",
    ),
    (
        "embedding-model-path-not-absolute",
        {"embedding": {"model": "bge-small-en-v1.5", "modelPath": "models/bge"}},
        "modelPath",
    ),
    (
        "embedding-model-path-with-openai",
        {
            "embedding": {
                "provider": "openai",
                "model": "text-embedding-3-small",
                "dimensions": 1536,
                "apiKeySecretRef": LLM,
                "modelPath": "/models/bge",
            }
        },
        "embedding.modelPath",
    ),
    (
        "neo4j-external-without-secret",
        {"neo4j": {"enabled": True, "external": {}}},
        "connectionSecretRef",
    ),
]

# (id, valid spec on create, change, fragment)
REJECTED_ON_UPDATE: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "storage-shrinks",
        {"postgres": {"managed": {"storage": {"size": "10Gi"}}}},
        {"postgres": {"managed": {"storage": {"size": "5Gi"}}}},
        "storage.size may not shrink",
    ),
    (
        "storage-class-changes",
        {"redis": {"managed": {"storage": {"storageClassName": "kwok-volume"}}}},
        {"redis": {"managed": {"storage": {"storageClassName": "other"}}}},
        "storageClassName",
    ),
    ("embedding-dimensions-change", {}, {"embedding": {"dimensions": 768}}, "dimensions"),
]


def _create(kube: Kube, ns: str, body: dict[str, Any], dry_run: bool = True) -> None:
    kube.custom.create_namespaced_custom_object(
        "ragops.io", "v1alpha1", ns, "ragsystems", body, dry_run="All" if dry_run else None
    )


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body)


@pytest.mark.parametrize(
    ("spec", "field"),
    [(s, f) for _i, s, f in REJECTED_ON_CREATE],
    ids=[i for i, _s, _f in REJECTED_ON_CREATE],
)
def test_api_server_rejects_invalid_object(
    kube: Kube, ns: str, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as info:
        _create(kube, ns, rag_manifest("bad", spec))
    assert info.value.status == 422, _message(info.value)
    assert field in _message(info.value)


def test_api_server_rejects_overlong_name(kube: Kube, ns: str) -> None:
    with pytest.raises(ApiException) as info:
        _create(kube, ns, rag_manifest("a" * 45, {}))
    assert "metadata.name" in _message(info.value)


@pytest.mark.parametrize(
    ("spec", "change", "field"),
    [(s, c, f) for _i, s, c, f in REJECTED_ON_UPDATE],
    ids=[i for i, _s, _c, _f in REJECTED_ON_UPDATE],
)
def test_api_server_rejects_invalid_change(
    kube: Kube, ns: str, spec: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    _create(kube, ns, rag_manifest("upd", spec), dry_run=False)
    with pytest.raises(ApiException) as info:
        kube.custom.patch_namespaced_custom_object(
            "ragops.io", "v1alpha1", ns, "ragsystems", "upd", {"spec": change}
        )
    assert info.value.status == 422, _message(info.value)
    assert field in _message(info.value)


def test_storage_may_grow(kube: Kube, ns: str) -> None:
    _create(
        kube,
        ns,
        rag_manifest("grow", {"postgres": {"managed": {"storage": {"size": "1Gi"}}}}),
        dry_run=False,
    )
    kube.custom.patch_namespaced_custom_object(
        "ragops.io",
        "v1alpha1",
        ns,
        "ragsystems",
        "grow",
        {"spec": {"postgres": {"managed": {"storage": {"size": "2Gi"}}}}},
    )


def test_embedding_model_with_a_model_path_is_admitted(kube: Kube, ns: str) -> None:
    spec = {
        "embedding": {
            "model": "bge-small-en-v1.5",
            "dimensions": 384,
            "modelPath": "/models/bge-small-en-v1.5",
        }
    }
    _create(kube, ns, rag_manifest("model", spec), dry_run=False)
    stored = kube.rag(ns, "model")["spec"]["embedding"]
    assert stored["modelPath"] == "/models/bge-small-en-v1.5"


def test_defaults_are_stored_by_the_api_server(kube: Kube, ns: str) -> None:
    _create(kube, ns, rag_manifest("defaults", {}), dry_run=False)
    spec = kube.rag(ns, "defaults")["spec"]
    assert spec["api"]["replicas"] == 2
    assert spec["worker"]["concurrency"] == 32, "the runtime's measured default"
    assert spec["postgres"]["managed"]["storage"]["size"] == "1Gi"
    assert spec["redis"]["enabled"] is True
    assert spec["neo4j"] == {"enabled": False}
    assert spec["deletionPolicy"] == "Retain"
    assert spec["retrieval"]["defaultStrategy"] == "hybrid"


# (id, spec, condition reason, fragment naming the field or component)
ADMITTED_BUT_DEGRADED: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "missing-llm-secret",
        {"generation": {"provider": "openai", "model": "gpt-4o-mini", "apiKeySecretRef": LLM}},
        "SecretNotFound",
        "spec.generation.apiKeySecretRef",
    ),
    (
        "missing-api-keys-secret",
        {"api": {"apiKeysSecretRef": {"name": "keys", "key": "k"}}},
        "SecretNotFound",
        "spec.api.apiKeysSecretRef",
    ),
    (
        "missing-pull-secret",
        {"image": {"pullSecrets": [{"name": "regcred"}]}},
        "SecretNotFound",
        "spec.image.pullSecrets[0]",
    ),
    (
        "unknown-storage-class",
        {"postgres": {"managed": {"storage": {"storageClassName": "no-such-class"}}}},
        "Unschedulable",
        "postgres",
    ),
]


def test_admitted_but_invalid_objects_are_degraded_with_the_field(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    for i, (_id, spec, _reason, _field) in enumerate(ADMITTED_BUT_DEGRADED):
        _create(kube, ns, rag_manifest(f"deg-{i}", spec), dry_run=False)
    for i, (case, _spec, reason, field) in enumerate(ADMITTED_BUT_DEGRADED):
        rag = wait_phase(kube, ns, f"deg-{i}", "Degraded", timeout=90)
        degraded = condition(rag, "Degraded")
        assert degraded["status"] == "True", case
        assert reason in degraded["reason"] + degraded["message"], (case, degraded)
        assert field in degraded["message"], (case, degraded)
        assert condition(rag, "Ready")["status"] == "False"
