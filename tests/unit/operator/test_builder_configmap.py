"""ConfigMap of runtime settings.

Aspects covered:
- only env names the runtime's settings model declares (rag_runtime.settings.env_names());
- the values parse with the runtime's own Settings model;
- spec settings (retrieval, embedding, generation, worker) reach the ConfigMap;
- standard labels and owner reference.
"""

from __future__ import annotations

import pytest

from rag_operator.builders.configmap import build_configmap
from rag_operator.builders.deployment import build_api_deployment, build_worker_deployment
from rag_runtime.settings import Settings, env_names
from tests.unit.operator.helpers import CFG, VARIANTS, make_rs, variant


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_configmap_uses_only_declared_env_names(name: str) -> None:
    data = build_configmap(variant(name), CFG)["data"]
    assert set(data) <= env_names(), set(data) - env_names()


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("builder", [build_api_deployment, build_worker_deployment])
def test_container_env_uses_only_declared_env_names(name: str, builder: object) -> None:
    deployment = builder(variant(name), CFG)  # type: ignore[operator]
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env <= env_names(), env - env_names()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_runtime_settings_model_accepts_the_values(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in build_configmap(variant(name), CFG)["data"].items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.port == CFG.api_port
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("spec", "env", "value"),
    [
        ({"retrieval": {"topK": 25}}, "RAG_TOP_K", "25"),
        ({"retrieval": {"defaultStrategy": "vector"}}, "RAG_RETRIEVAL_STRATEGY", "vector"),
        ({"retrieval": {"similarityThreshold": 0.35}}, "RAG_SIMILARITY_THRESHOLD", "0.35"),
        ({"worker": {"concurrency": 7}}, "RAG_WORKER_CONCURRENCY", "7"),
        ({"embedding": {"dimensions": 768}}, "RAG_EMBEDDING_DIMENSIONS", "768"),
        ({"embedding": {"model": "bge-small"}}, "RAG_EMBEDDING_MODEL", "bge-small"),
        ({"neo4j": {"enabled": True, "managed": {}}}, "RAG_NEO4J_URI", "bolt://demo-neo4j:7687"),
    ],
)
def test_spec_setting_reaches_configmap(spec: dict[str, object], env: str, value: str) -> None:
    assert build_configmap(make_rs(spec), CFG)["data"][env] == value


def test_configmap_has_standard_labels_and_owner() -> None:
    cm = build_configmap(make_rs(), CFG)
    labels = cm["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "ragops-operator"
    assert labels["app.kubernetes.io/part-of"] == "ragops"
    assert labels["app.kubernetes.io/instance"] == "demo"
    assert cm["metadata"]["ownerReferences"][0]["controller"] is True
    assert cm["metadata"]["namespace"] == "team-a"
