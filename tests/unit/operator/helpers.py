"""Helpers shared by the operator unit tests: RagSystem objects built from plain dicts."""

from __future__ import annotations

import copy
from typing import Any

from rag_operator.builders import Release, desired_children, runtime_config
from rag_operator.children import ALL_OPTIONAL, Capabilities
from rag_operator.models import OperatorConfig, RagSystem

CFG = OperatorConfig()
# Clusters without and with the optional CRDs (Gateway API, ServiceMonitor).
NO_CRDS = Capabilities()
ALL_CRDS = ALL_OPTIONAL


def children(
    rs: RagSystem, caps: Capabilities = NO_CRDS, release: Release | None = None
) -> list[dict[str, Any]]:
    """desired_children with the default configuration."""
    return desired_children(rs, CFG, caps, release=release)


# A pass that runs the migration Job of spec.version while the Deployments run it too.
MIGRATING = Release(
    stable_version="0.1.0", migration_job="demo-migrate-0", migration_version="0.1.0"
)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def make_rs(
    spec: dict[str, Any] | None = None,
    *,
    name: str = "demo",
    namespace: str = "team-a",
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> RagSystem:
    body: dict[str, Any] = {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "0000-uid",
            "generation": generation,
        },
        "spec": deep_merge({"version": "0.1.0"}, spec or {}),
    }
    if status is not None:
        body["status"] = status
    return RagSystem.from_body(body)


EXTERNAL_STORES: dict[str, Any] = {
    "postgres": {"external": {"connectionSecretRef": {"name": "pg", "key": "uri"}}},
    "redis": {"external": {"connectionSecretRef": {"name": "rd", "key": "uri"}}},
    "neo4j": {
        "enabled": True,
        "external": {
            "connectionSecretRef": {"name": "nj", "key": "uri"},
            "passwordSecretRef": {"name": "nj", "key": "password"},
        },
    },
}
ALL_MANAGED: dict[str, Any] = {"neo4j": {"enabled": True, "managed": {}}}

# Spec variants most builder tests run against.
VARIANTS: dict[str, dict[str, Any]] = {
    "minimal": {},
    "all-managed": ALL_MANAGED,
    "external": EXTERNAL_STORES,
    "no-redis": {"redis": {"enabled": False}, "worker": {"replicas": 0}},
    "autoscaling": {"api": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 8}}},
    "ingress": {
        "api": {
            "exposure": {
                "ingress": {
                    "host": "rag.example.com",
                    "className": "nginx",
                    "tlsSecretName": "rag-tls",
                }
            }
        }
    },
    "httproute": {"api": {"exposure": {"httpRoute": {"parentRefs": [{"name": "gw"}]}}}},
    "tuned": {
        "api": {"rateLimit": {"requestsPerMinute": 120}},
        "retrieval": {"fusion": "rrf", "rrfK": 30, "vectorWeight": 0.7, "cacheTtlSeconds": 0},
        "ingestion": {"maxDocumentBytes": 2097152, "chunkTokens": 200, "chunkOverlapTokens": 40},
        "logging": {"level": "debug", "format": "json"},
    },
    "openai": {
        "generation": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "apiKeySecretRef": {"name": "llm", "key": "key"},
        },
        "embedding": {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "dimensions": 1536,
            "apiKeySecretRef": {"name": "llm", "key": "key"},
        },
    },
    "anthropic": {
        "generation": {
            "provider": "anthropic",
            "model": "claude-3-5-haiku",
            "apiKeySecretRef": {"name": "llm", "key": "key"},
            "baseUrl": "https://proxy.example.com",
        },
        "api": {"apiKeysSecretRef": {"name": "api-keys", "key": "keys"}},
        "image": {"pullSecrets": [{"name": "regcred"}]},
    },
}


def variant(name: str) -> RagSystem:
    return make_rs(VARIANTS[name])


def api_deployment(rs: RagSystem) -> dict[str, Any]:
    from rag_operator.builders.deployment import build_api_deployment

    return build_api_deployment(rs, CFG, runtime_config(rs))


def worker_deployment(rs: RagSystem) -> dict[str, Any]:
    from rag_operator.builders.deployment import build_worker_deployment

    return build_worker_deployment(rs, CFG, runtime_config(rs))
