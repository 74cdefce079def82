"""ConfigMap of runtime settings.

Aspects covered:
- only env names the runtime's settings model declares (rag_runtime.settings.env_names());
- the values parse with the runtime's own Settings model;
- spec settings (retrieval, embedding, generation, worker, rate limits, fusion, logging, cache
  TTL, document size, chunking) reach the ConfigMap and mean there what they mean in the spec
  (the runtime's Settings read the same values back);
- standard labels and owner reference.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.builders import runtime_config
from rag_operator.builders.configmap import build_configmap
from rag_operator.models import API_PORT, RagSystem
from rag_runtime.settings import Settings, env_names
from tests.unit.operator.helpers import (
    VARIANTS,
    api_deployment,
    make_rs,
    variant,
    worker_deployment,
)


def _configmap(rs: RagSystem) -> dict[str, Any]:
    return build_configmap(rs, runtime_config(rs))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_configmap_uses_only_declared_env_names(name: str) -> None:
    data = _configmap(variant(name))["data"]
    assert set(data) <= env_names(), set(data) - env_names()


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("builder", [api_deployment, worker_deployment])
def test_container_env_uses_only_declared_env_names(name: str, builder: object) -> None:
    deployment = builder(variant(name))  # type: ignore[operator]
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env <= env_names(), env - env_names()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_runtime_settings_model_accepts_the_values(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _configmap(variant(name))["data"].items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.port == API_PORT
    assert settings.host == "0.0.0.0"
    assert settings.migrate_on_start is False  # the migration Job migrates, not the pods
    # Idle connections outlive the proxies' idle timeouts (Traefik's 90 s), so the proxy
    # closes them; the drain ends within the pod's termination grace period (30 s).
    assert settings.keep_alive_seconds > 90
    assert settings.shutdown_delay_seconds < settings.shutdown_max_delay_seconds < 30


@pytest.mark.parametrize(
    ("spec", "env", "value"),
    [
        ({"retrieval": {"topK": 25}}, "RAG_TOP_K", "25"),
        ({"retrieval": {"defaultStrategy": "vector"}}, "RAG_RETRIEVAL_STRATEGY", "vector"),
        ({"retrieval": {"similarityThreshold": 0.35}}, "RAG_SIMILARITY_THRESHOLD", "0.35"),
        ({"worker": {"concurrency": 7}}, "RAG_WORKER_CONCURRENCY", "7"),
        (
            {"embedding": {"dimensions": 768, "modelPath": "/models/bge"}},
            "RAG_EMBEDDING_DIMENSIONS",
            "768",
        ),
        (
            {"embedding": {"model": "bge-small", "modelPath": "/models/bge"}},
            "RAG_EMBEDDING_MODEL",
            "bge-small",
        ),
        (
            {"embedding": {"model": "bge-small", "modelPath": "/models/bge"}},
            "RAG_EMBEDDING_MODEL_PATH",
            "/models/bge",
        ),
        ({"neo4j": {"enabled": True, "managed": {}}}, "RAG_NEO4J_URI", "bolt://demo-neo4j:7687"),
        ({"api": {"rateLimit": {"requestsPerMinute": 90}}}, "RAG_RATE_LIMIT_PER_MINUTE", "90"),
        ({"retrieval": {"fusion": "rrf"}}, "RAG_FUSION", "rrf"),
        ({"retrieval": {"rrfK": 20}}, "RAG_RRF_K", "20"),
        ({"retrieval": {"vectorWeight": 0.8}}, "RAG_HYBRID_VECTOR_WEIGHT", "0.8"),
        ({"retrieval": {"cacheTtlSeconds": 0}}, "RAG_CACHE_TTL_SECONDS", "0"),
        ({"ingestion": {"maxDocumentBytes": 4096}}, "RAG_MAX_DOCUMENT_BYTES", "4096"),
        ({"ingestion": {"chunkTokens": 128}}, "RAG_CHUNK_TOKENS", "128"),
        ({"ingestion": {"chunkOverlapTokens": 0}}, "RAG_CHUNK_OVERLAP_TOKENS", "0"),
        ({"logging": {"level": "warning"}}, "RAG_LOG_LEVEL", "warning"),
        ({"logging": {"format": "json"}}, "RAG_LOG_FORMAT", "json"),
    ],
)
def test_spec_setting_reaches_configmap(spec: dict[str, object], env: str, value: str) -> None:
    assert _configmap(make_rs(spec))["data"][env] == value


def test_defaults_match_the_runtime_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec that says nothing configures the runtime as its own defaults do."""
    data = _configmap(make_rs())["data"]
    assert "RAG_CHUNK_TOKENS" not in data  # unset = the model's own limit
    defaults = Settings()
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    configured = Settings()
    for name in (
        "fusion",
        "rrf_k",
        "hybrid_vector_weight",
        "cache_ttl_seconds",
        "rate_limit_per_minute",
        "max_document_bytes",
        "chunk_tokens",
        "chunk_overlap_tokens",
        "log_level",
        "log_format",
    ):
        assert getattr(configured, name) == getattr(defaults, name), name


def test_tuned_settings_read_back_by_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _configmap(variant("tuned"))["data"].items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert (s.fusion.value, s.rrf_k, s.hybrid_vector_weight) == ("rrf", 30, 0.7)
    assert (s.cache_ttl_seconds, s.rate_limit_per_minute) == (0, 120)
    assert (s.max_document_bytes, s.chunk_tokens, s.chunk_overlap_tokens) == (2097152, 200, 40)
    assert (s.log_level, s.log_format.value) == ("debug", "json")


def test_configmap_has_standard_labels_and_owner() -> None:
    cm = _configmap(make_rs())
    labels = cm["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "ragops-operator"
    assert labels["app.kubernetes.io/part-of"] == "ragops"
    assert labels["app.kubernetes.io/instance"] == "demo"
    assert cm["metadata"]["ownerReferences"][0]["controller"] is True
    assert cm["metadata"]["namespace"] == "team-a"
