"""Argo CD's diff (gitops-engine, hack/tools/argocd-diff) of a RagSystem the operator handled.

Aspects covered, without a cluster (tests/e2e/test_monitoring_real.py does it on a live object
the real operator reconciled): a live object carrying what the API server and the operator add
(defaults, kopf's annotation and finalizer, status, managed fields) besides the manifest of Git
and kubectl's last-applied-configuration is in sync, strictly and with status ignored; a spec
that differs from Git, or a spec field the operator would have changed, is OutOfSync.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.devtools import go_tool
from hack.paths import REPO_ROOT
from rag_operator.models import RagSystem

pytestmark = pytest.mark.integration


def desired() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO_ROOT / "examples" / "minimal.yaml").read_text())
    doc["metadata"]["namespace"] = "rag-minimal"
    doc["metadata"].setdefault("annotations", {})["argocd.argoproj.io/tracking-id"] = (
        "rag-minimal:ragops.io/RagSystem:rag-minimal/" + doc["metadata"]["name"]
    )
    return doc


def live_after_operator(doc: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server holds it after kubectl apply and a reconcile."""
    live = copy.deepcopy(doc)
    body = {**doc, "metadata": {**doc["metadata"], "uid": "u-1"}}
    live["spec"] = RagSystem.model_validate(body).spec.wire()  # every default filled in
    meta = live["metadata"]
    meta.update(
        {
            "uid": "u-1",
            "generation": 1,
            "resourceVersion": "4242",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["ragops.io/finalizer"],
        }
    )
    meta["annotations"] = {
        **meta.get("annotations", {}),
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(doc),
        "ragops.io/last-handled-configuration": json.dumps({"spec": live["spec"]}),
    }
    meta["managedFields"] = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "ragops.io/v1alpha1",
        },
        {"manager": "kopf", "operation": "Update", "apiVersion": "ragops.io/v1alpha1"},
        {"manager": "ragops-operator", "operation": "Apply", "subresource": "status"},
    ]
    live["status"] = {"phase": "Ready", "observedGeneration": 1, "conditions": []}
    return live


def argocd_diff(tmp: Path, config: dict[str, Any], live: dict[str, Any], *flags: str) -> Any:
    (tmp / "config.json").write_text(json.dumps(config))
    (tmp / "live.json").write_text(json.dumps(live))
    proc = subprocess.run(
        [str(go_tool("argocd-diff")), *flags, str(tmp / "config.json"), str(tmp / "live.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    assert out["modified"] is (proc.returncode == 1)
    return out


@pytest.mark.parametrize("flags", [(), ("-ignore-status",)], ids=["strict", "ignore-status"])
def test_what_the_operator_adds_is_in_sync(tmp_path: Path, flags: tuple[str, ...]) -> None:
    doc = desired()
    result = argocd_diff(tmp_path, doc, live_after_operator(doc), *flags)
    assert result["mode"] == "three-way"
    assert result["modified"] is False, json.dumps(result, indent=1)[:3000]


def test_a_spec_that_differs_from_git_is_out_of_sync(tmp_path: Path) -> None:
    doc = desired()
    changed = copy.deepcopy(doc)
    changed["spec"].setdefault("api", {})["replicas"] = 5
    assert argocd_diff(tmp_path, changed, live_after_operator(doc))["modified"] is True


def test_an_operator_write_to_the_spec_would_be_out_of_sync(tmp_path: Path) -> None:
    doc = desired()
    doc["spec"]["retrieval"] = {"topK": 10}
    live = live_after_operator(doc)
    live["spec"]["retrieval"]["topK"] = 11  # what the operator must never do
    assert argocd_diff(tmp_path, doc, live)["modified"] is True
