"""The Argo CD examples: health checks, the argocd-cm snippet and the Applications.

Aspects covered:
- argocd-cm.yaml is exactly what hack.argocd_cm renders from the health.lua files, and each
  health key holds its script byte for byte (the snippet cannot drift from the tested code);
- every health check sits in Argo CD's resource_customizations layout with a health_test.yaml
  whose inputs all exist;
- the diff rules name the field manager and annotation kopf really uses, and resource tracking
  is by annotation because every child carries app.kubernetes.io/instance;
- the Applications point at files of this repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hack import argocd_cm
from hack.paths import REPO_ROOT
from rag_operator.builders.common import labels
from tests.unit.operator.helpers import make_rs

ARGOCD = REPO_ROOT / "examples" / "argocd"
KINDS = ["RagSystem", "RagBackup"]


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def configmap_data() -> dict[str, str]:
    data = load(argocd_cm.OUTPUT)["data"]
    assert isinstance(data, dict)
    return data


def test_argocd_cm_is_rendered_from_the_health_checks() -> None:
    assert argocd_cm.OUTPUT.read_text() == argocd_cm.render(), "run make examples"


@pytest.mark.parametrize("kind", KINDS)
def test_argocd_cm_holds_each_health_script_verbatim(kind: str) -> None:
    script = (argocd_cm.CUSTOMIZATIONS / "ragops.io" / kind / "health.lua").read_text()
    assert configmap_data()[f"resource.customizations.health.ragops.io_{kind}"] == script


@pytest.mark.parametrize("kind", KINDS)
def test_each_health_check_has_argocd_style_tests(kind: str) -> None:
    check = argocd_cm.CUSTOMIZATIONS / "ragops.io" / kind
    tests = load(check / "health_test.yaml")["tests"]
    assert tests
    inputs = {t["inputPath"] for t in tests}
    for path in inputs:
        assert (check / path).is_file(), path
    assert {f"testdata/{p.name}" for p in (check / "testdata").glob("*.yaml")} == inputs


def test_health_scripts_need_no_open_libraries() -> None:
    keys = configmap_data()
    assert not any(key.startswith("resource.customizations.useOpenLibs") for key in keys)


def test_diff_rules_name_kopfs_field_manager_and_annotation() -> None:
    key = "resource.customizations.ignoreDifferences.ragops.io_RagSystem"
    rules = yaml.safe_load(configmap_data()[key])
    assert "kopf" in rules["managedFieldsManagers"]
    # The annotation kopf really writes, as the operator configures it.
    import kopf

    from rag_operator.handlers import _tune

    settings = kopf.OperatorSettings()
    _tune(settings)
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(diffbase, kopf.AnnotationsDiffBaseStorage)
    annotation = f"{diffbase.prefix}/{diffbase.key}"
    pointer = "/metadata/annotations/" + annotation.replace("~", "~0").replace("/", "~1")
    assert pointer in rules["jsonPointers"]


def test_tracking_by_annotation_because_children_carry_the_instance_label() -> None:
    assert "app.kubernetes.io/instance" in labels(make_rs(), "api")
    assert configmap_data()["application.resourceTrackingMethod"] == "annotation"


def test_application_syncs_a_ragsystem_of_this_repository() -> None:
    app = load(ARGOCD / "application.yaml")
    source = app["spec"]["source"]
    target = REPO_ROOT / source["path"] / source["directory"]["include"]
    assert load(target)["kind"] == "RagSystem"
    assert app["spec"]["destination"]["namespace"]


def test_operator_application_installs_the_chart() -> None:
    app = load(ARGOCD / "operator-application.yaml")
    assert (REPO_ROOT / app["spec"]["source"]["path"] / "Chart.yaml").is_file()
    assert "finalizers" not in app["metadata"], "deleting the Application must keep the CRD"
