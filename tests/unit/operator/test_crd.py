"""The generated CRD: golden file, structural schema, descriptions, CEL rules, printer columns.

Aspects covered:
- crds/ matches what the models generate (run `make crds` after changing a model);
- the schema is structural: no $ref, no title, no additionalProperties: false, no type in anyOf;
- every property carries a description (what `kubectl explain` prints);
- the cross-field rules the API relies on are present as CEL;
- defaults: the API server can fill every nested default from `spec: {version: x}`;
- the models refuse what the runtime cannot serve, as the CEL rules do (an embedding model or
  dimension other than the bundled MiniLM's without a modelPath), and default the worker
  concurrency to the runtime's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rag_operator import crd
from rag_operator.models.spec import EmbeddingSpec

REPO = Path(__file__).resolve().parents[3]


def _schema() -> dict[str, Any]:
    version = crd.build_crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out.extend(_walk(value, f"{path}.{key}"))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                out.extend(_walk(node[key], f"{path}[{key}]"))
    return out


def test_crds_directory_is_up_to_date() -> None:
    path = REPO / "crds" / crd.FILENAME
    assert path.exists(), "run `make crds`"
    assert path.read_text() == crd.render(), "crds/ is stale: run `make crds` and commit the diff"


def test_check_flag_reports_stale_directory(tmp_path: Path) -> None:
    assert crd.main(["--check", str(tmp_path)]) == 1
    crd.main(["--write", str(tmp_path)])
    assert crd.main(["--check", str(tmp_path)]) == 0


def test_names_scope_and_subresource() -> None:
    spec = crd.build_crd()["spec"]
    assert spec["group"] == "ragops.io"
    assert spec["names"]["kind"] == "RagSystem"
    assert spec["names"]["plural"] == "ragsystems"
    assert spec["names"]["shortNames"] == ["rag"]
    assert spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("forbidden", ["$ref", "title", "$defs", "allOf", "oneOf", "discriminator"])
def test_schema_has_no_non_structural_keys(forbidden: str) -> None:
    for path, node in _walk(_schema()):
        assert forbidden not in node, f"{forbidden} at {path or '<root>'}"


def test_exclusive_bounds_are_openapi_v3_booleans() -> None:
    """OpenAPI v3.0 (the CRD's dialect) has boolean exclusiveMinimum/Maximum; a number (JSON
    Schema 2020, what pydantic's gt/lt give) makes the API server refuse the CRD."""
    for path, node in _walk(_schema()):
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            if key in node:
                assert isinstance(node[key], bool), (path, key, node[key])


def test_schema_has_no_closed_objects_or_typed_anyof() -> None:
    for path, node in _walk(_schema()):
        assert node.get("additionalProperties") is not False, path
        for option in node.get("anyOf", []):
            assert "type" not in option, f"type inside anyOf at {path}"


def test_every_node_has_a_type() -> None:
    for path, node in _walk(_schema()):
        if path.endswith(".metadata"):
            continue
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path


def test_every_spec_and_status_property_has_a_description() -> None:
    missing = [
        path
        for path, node in _walk(_schema())
        if (path.startswith(".spec") or path.startswith(".status"))
        and not path.endswith("[additionalProperties]")
        and not node.get("description")
    ]
    assert not missing, f"properties without description: {missing}"


def test_optional_fields_are_nullable_not_anyof() -> None:
    spec = _schema()["properties"]["spec"]
    managed = spec["properties"]["postgres"]["properties"]["managed"]
    assert managed["nullable"] is True
    assert managed["type"] == "object"


def _rules() -> list[str]:
    rules: list[str] = []
    for _path, node in _walk(_schema()):
        rules += [r["rule"] for r in node.get("x-kubernetes-validations", [])]
    rules += [r["rule"] for r in _schema().get("x-kubernetes-validations", [])]
    return rules


@pytest.mark.parametrize(
    "fragment",
    [
        "self.minReplicas <= self.maxReplicas",
        "has(self.managed) != has(self.external)",
        "quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",
        "!(has(self.ingress) && has(self.httpRoute))",
        "self.provider == 'none' || has(self.apiKeySecretRef)",
        "self.retrieval.defaultStrategy != 'graph' || self.neo4j.enabled",
        "self.worker.replicas == 0 || self.redis.enabled",
        "size(self.metadata.name) <= 40",
        "has(self.modelPath) || self.model == 'all-MiniLM-L6-v2'",
        "has(self.modelPath) || self.dimensions == 384",
        "!has(self.modelPath) || self.provider == 'sentence-transformers'",
        "!has(self.chunkTokens) || self.chunkOverlapTokens * 2 < self.chunkTokens",
    ],
)
def test_cross_field_rule_is_in_the_schema(fragment: str) -> None:
    assert any(fragment in rule for rule in _rules()), fragment


def test_rules_with_field_path_name_the_field_in_their_message() -> None:
    for _path, node in _walk(_schema()):
        for rule in node.get("x-kubernetes-validations", []):
            if "fieldPath" in rule:
                leaf = rule["fieldPath"].split(".")[-1]
                assert leaf in rule["message"], rule


def test_top_level_sections_default_so_nested_defaults_apply() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    for section in (
        "image",
        "api",
        "worker",
        "retrieval",
        "embedding",
        "generation",
        "postgres",
        "redis",
        "neo4j",
        "monitoring",
        "networkPolicy",
        "ingestion",
        "logging",
    ):
        assert "default" in spec[section], section
    assert spec["postgres"]["default"]["managed"] is not None
    assert spec["neo4j"]["default"] == {"enabled": False}
    assert spec["deletionPolicy"]["default"] == "Retain"


def test_status_has_no_defaults_and_conditions_are_a_map_list() -> None:
    status = _schema()["properties"]["status"]
    for path, node in _walk(status):
        assert "default" not in node, path
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_printer_columns_include_wide_endpoint_and_stores() -> None:
    columns = {c["name"]: c for c in crd.PRINTER_COLUMNS}
    assert {"Phase", "Ready", "Version", "Age"} <= set(columns)
    assert columns["Endpoint"]["priority"] == 1
    assert columns["Stores"]["priority"] == 1
    assert "priority" not in columns["Phase"]


def test_yaml_has_no_anchors() -> None:
    text = crd.render()
    assert "&id" not in text
    assert "*id" not in text
    assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


def test_chart_crd_template_is_up_to_date() -> None:
    path = REPO / "charts" / "ragops" / "templates" / "crds" / crd.FILENAME
    assert path.read_text() == crd.render_chart_template(), "run `make crds` and commit"


def test_chart_crd_is_kept_on_uninstall_and_optional() -> None:
    text = crd.render_chart_template()
    assert text.startswith("{{- if .Values.crds.create }}")
    assert "helm.sh/resource-policy: keep" in text


@pytest.mark.parametrize(
    ("embedding", "field"),
    [
        ({"model": "bge-small-en-v1.5"}, "embedding.model"),
        ({"dimensions": 768}, "embedding.dimensions"),
        (
            {
                "provider": "openai",
                "model": "text-embedding-3-small",
                "apiKeySecretRef": {"name": "k", "key": "k"},
                "modelPath": "/models/x",
            },
            "embedding.modelPath",
        ),
        ({"model": "bge", "modelPath": "models/bge"}, "modelPath"),
    ],
)
def test_models_refuse_embeddings_the_runtime_cannot_serve(
    embedding: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        EmbeddingSpec.model_validate(embedding)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "embedding",
    [
        {},
        {"model": "bge-small-en-v1.5", "dimensions": 768, "modelPath": "/models/bge"},
        {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "dimensions": 1536,
            "apiKeySecretRef": {"name": "k", "key": "k"},
        },
    ],
)
def test_models_accept_servable_embeddings(embedding: dict[str, Any]) -> None:
    EmbeddingSpec.model_validate(embedding)


def test_worker_concurrency_default_is_stored_by_the_api_server() -> None:
    worker = _schema()["properties"]["spec"]["properties"]["worker"]
    assert worker["properties"]["concurrency"]["default"] == 32
    assert worker["default"]["concurrency"] == 32


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("ingestion", {"chunkTokens": 64, "chunkOverlapTokens": 32}, "chunkOverlapTokens"),
        ("ingestion", {"chunkTokens": 8}, "chunkTokens"),
        ("ingestion", {"maxDocumentBytes": 0}, "maxDocumentBytes"),
        ("retrieval", {"fusion": "max"}, "fusion"),
        ("retrieval", {"vectorWeight": 1.5}, "vectorWeight"),
        ("retrieval", {"cacheTtlSeconds": -1}, "cacheTtlSeconds"),
        ("logging", {"level": "trace"}, "level"),
        ("logging", {"format": "xml"}, "format"),
        ("api", {"rateLimit": {"requestsPerMinute": -1}}, "requestsPerMinute"),
    ],
)
def test_models_refuse_bad_runtime_settings_naming_the_field(
    section: str, value: dict[str, Any], field: str
) -> None:
    from rag_operator.models import RagSystemSpec

    with pytest.raises(ValidationError) as err:
        RagSystemSpec.model_validate({"version": "1", section: value})
    assert field in str(err.value)


def test_runtime_setting_defaults_are_stored_by_the_api_server() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    assert spec["logging"]["default"] == {"level": "info", "format": "text"}
    assert spec["ingestion"]["default"]["chunkOverlapTokens"] == 32
    assert spec["retrieval"]["default"]["fusion"] == "weighted"
