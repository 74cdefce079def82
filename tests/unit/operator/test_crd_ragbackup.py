"""The generated RagBackup CRD.

Aspects covered: the golden files in crds/ and the chart; names, scope, status subresource;
`kubectl get ragbackups` columns (system, phase, size, started, completed); the schema is
structural (the same rules as the RagSystem CRD) with a description on every property; the
spec is immutable; the status carries what the Argo CD health check reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag_operator import crd
from tests.unit.operator.test_crd import _walk

REPO = Path(__file__).resolve().parents[3]


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd.build_backup_crd()["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    return schema


def test_golden_files_are_up_to_date() -> None:
    text = crd.render(crd.build_backup_crd())
    assert (REPO / "crds" / crd.BACKUP_FILENAME).read_text() == text, "run `make crds`"
    chart = REPO / "charts" / "ragops" / "templates" / "crds" / crd.BACKUP_FILENAME
    assert chart.read_text() == crd.render_chart_template(crd.build_backup_crd())


def test_names_and_columns() -> None:
    spec = crd.build_backup_crd()["spec"]
    assert (spec["names"]["kind"], spec["names"]["plural"]) == ("RagBackup", "ragbackups")
    assert spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Size"] == ".status.size"
    assert columns["Started"] == ".status.startedAt"
    assert columns["Completed"] == ".status.completedAt"


@pytest.mark.parametrize("forbidden", ["$ref", "title", "$defs", "allOf", "oneOf"])
def test_schema_is_structural(forbidden: str) -> None:
    for path, node in _walk(_schema()):
        assert forbidden not in node, f"{forbidden} at {path}"
        assert node.get("additionalProperties") is not False, path
        for option in node.get("anyOf", []):
            assert "type" not in option, path


def test_every_property_has_a_description() -> None:
    missing = [
        path
        for path, node in _walk(_schema())
        if path.startswith((".spec", ".status")) and not node.get("description")
    ]
    assert not missing, missing


def test_spec_is_immutable_and_status_has_what_argocd_reads() -> None:
    schema = _schema()
    assert any(r["rule"] == "self.spec == oldSelf.spec" for r in schema["x-kubernetes-validations"])
    status = schema["properties"]["status"]["properties"]
    assert {"phase", "message", "startedAt", "completedAt", "size", "conditions"} <= set(status)
