"""kubectl-ragops against the real API server (the installed console script).

Aspects covered: promote, abort and retry set their annotation with a fresh value each time
and never touch the spec (metadata.generation stays, so GitOps tools see no drift); status
prints the system's release; a system that does not exist is an error naming it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hack.cluster import Cluster
from tests.integration.operator.conftest import REPO, Kube, rag_manifest

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PLUGIN = REPO / ".venv" / "bin" / "kubectl-ragops"


def plugin(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLUGIN), "--kubeconfig", str(Path(cluster.kubeconfig)), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_requests_are_annotations_and_the_spec_is_untouched(
    cluster: Cluster, kube: Kube, ns: str
) -> None:
    body = rag_manifest("plug", {"rollout": {"strategy": "Canary"}})
    kube.custom.create_namespaced_custom_object("ragops.io", "v1alpha1", ns, "ragsystems", body)
    before = kube.rag(ns, "plug")
    seen: dict[str, str] = {}
    for command, annotation in (
        ("promote", "ragops.io/rollout-promote"),
        ("abort", "ragops.io/rollout-abort"),
        ("retry", "ragops.io/rollout-retry"),
        ("promote", "ragops.io/rollout-promote"),
    ):
        out = plugin(cluster, "-n", ns, command, "plug")
        assert out.returncode == 0, out.stderr
        value = kube.rag(ns, "plug")["metadata"]["annotations"][annotation]
        assert value != seen.get(annotation), "each request has a fresh value"
        seen[annotation] = value
    after = kube.rag(ns, "plug")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]
    full = plugin(cluster, "-n", ns, "promote", "plug", "--full")
    assert full.returncode == 0, full.stderr
    assert kube.rag(ns, "plug")["metadata"]["annotations"]["ragops.io/rollout-promote"].startswith(
        "full:"
    )
    status = plugin(cluster, "-n", ns, "status", "plug")
    assert status.returncode == 0, status.stderr
    assert f"{ns}/plug" in status.stdout
    assert "Strategy:   Canary" in status.stdout


def test_unknown_system_is_an_error(cluster: Cluster, ns: str, crd: Path) -> None:
    out = plugin(cluster, "-n", ns, "abort", "nothing-here")
    assert out.returncode == 1
    assert f"{ns}/nothing-here" in out.stderr
