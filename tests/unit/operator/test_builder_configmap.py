"""ConfigMap of runtime settings.

Aspects covered:
- only env names the runtime's settings model declares (rag_runtime.settings.env_names());
- the values parse with the runtime's own Settings model;
- spec settings (retrieval, embedding, generation, worker) reach the ConfigMap;
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
    ],
)
def test_spec_setting_reaches_configmap(spec: dict[str, object], env: str, value: str) -> None:
    assert _configmap(make_rs(spec))["data"][env] == value


def test_configmap_has_standard_labels_and_owner() -> None:
    cm = _configmap(make_rs())
    labels = cm["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "ragops-operator"
    assert labels["app.kubernetes.io/part-of"] == "ragops"
    assert labels["app.kubernetes.io/instance"] == "demo"
    assert cm["metadata"]["ownerReferences"][0]["controller"] is True
    assert cm["metadata"]["namespace"] == "team-a"
