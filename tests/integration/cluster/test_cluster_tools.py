"""kubectl and Helm work against the local control plane and see its real version.

Aspects covered:
- the API server reports the pinned Kubernetes release (not ``v0.0.0-master``) to kubectl;
- ``kubectl get`` lists the two kwok nodes as Ready and the ``kwok-volume`` StorageClass;
- ``helm template --validate`` renders a chart with a ``kubeVersion`` constraint using the
  cluster's capabilities, and ``helm install``/``uninstall`` manage a release.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hack.cluster import NODE_NAMES, Cluster, versions
from tests.fixtures.cluster import get_json

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    root = tmp_path / "probe"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text(
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: '>=1.34.0-0'\n"
    )
    (root / "values.yaml").write_text("greeting: hello\n")
    (root / "templates" / "configmap.yaml").write_text(
        """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-probe
data:
  greeting: {{ .Values.greeting | quote }}
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
  hasApps: {{ .Capabilities.APIVersions.Has "apps/v1/Deployment" | quote }}
"""
    )
    return root


def test_kubectl_version_reports_the_pinned_release(cluster: Cluster) -> None:
    out = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"].startswith("v1.")
    assert out["serverVersion"]["gitVersion"] != "v0.0.0-master"
    if cluster.state_dir is not None:  # the local cluster, not an external one
        assert out["serverVersion"]["gitVersion"] == versions()["KUBE_VERSION"]
        assert out["clientVersion"]["gitVersion"] == versions()["KUBE_VERSION"]


def test_kubectl_get_lists_ready_kwok_nodes_and_the_storage_class(cluster: Cluster) -> None:
    nodes = get_json(cluster, "nodes")["items"]
    ready = {
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    }
    assert set(NODE_NAMES) <= ready
    table = cluster.kubectl("get", "nodes").stdout
    assert all(name in table for name in NODE_NAMES)
    assert "kwok-volume" in cluster.kubectl("get", "storageclass", "-o", "name").stdout


def test_helm_template_renders_with_the_clusters_capabilities(
    cluster: Cluster, chart: Path, namespace: str
) -> None:
    out = cluster.helm("template", "demo", str(chart), "--validate", "-n", namespace).stdout
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert "name: demo-probe" in out
    assert f'kubeVersion: "{server["gitVersion"]}"' in out
    assert 'hasApps: "true"' in out


def test_helm_installs_and_uninstalls_a_release(
    cluster: Cluster, chart: Path, namespace: str
) -> None:
    cluster.helm("install", "rel", str(chart), "-n", namespace, "--wait", "--timeout=60s")
    cm = get_json(cluster, "-n", namespace, "configmap/rel-probe")
    assert cm["data"]["greeting"] == "hello"
    assert "rel" in cluster.helm("list", "-n", namespace, "-q").stdout.split()
    cluster.helm("uninstall", "rel", "-n", namespace, "--wait")
    assert cluster.kubectl("get", "-n", namespace, "configmap/rel-probe", check=False).returncode
