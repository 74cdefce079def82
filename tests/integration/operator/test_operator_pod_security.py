"""Pod Security: every pod the operator creates is admitted under the `restricted` profile.

The real API server's PodSecurity admission enforces the namespace label
`pod-security.kubernetes.io/enforce: restricted`. Aspects covered: the namespace really
refuses a pod that breaks the profile (so the check below can fail); a RagSystem with every
store managed gets the pods of all its Deployments, StatefulSets and Jobs created there, with
no FailedCreate event, and becomes Ready.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import Kube, Operator, rag_manifest, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def _items(cluster: Cluster, ns: str, kind: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", kind, "-n", ns, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _failed_creates(cluster: Cluster, ns: str) -> list[str]:
    events = _items(cluster, ns, "events")
    return [
        f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: {e.get('message', '')}"
        for e in events
        if e.get("reason") == "FailedCreate"
    ]


def _restricted(cluster: Cluster, ns: str) -> None:
    labels = [f"{k}={v}" for k, v in RESTRICTED.items()]
    cluster.kubectl("label", "namespace", ns, "--overwrite", *labels)


def test_the_namespace_refuses_pods_outside_the_profile(cluster: Cluster, ns: str) -> None:
    _restricted(cluster, ns)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "loose", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
    }
    proc = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
    assert proc.returncode != 0
    assert "violates PodSecurity" in proc.stderr


def test_every_pod_of_a_system_is_admitted_under_restricted(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    _restricted(cluster, ns)
    spec = {"neo4j": {"enabled": True, "managed": {}}, "worker": {"replicas": 1}}
    text = json.dumps(rag_manifest("strict", spec))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)
    wait_phase(kube, ns, "strict", "Ready", timeout=120)

    workloads = [
        *(("Deployment", d) for d in _items(cluster, ns, "deployments")),
        *(("StatefulSet", s) for s in _items(cluster, ns, "statefulsets")),
        *(("Job", j) for j in _items(cluster, ns, "jobs")),
    ]
    names = {f"{kind}/{obj['metadata']['name']}" for kind, obj in workloads}
    assert {
        "Deployment/strict-api",
        "Deployment/strict-worker",
        "StatefulSet/strict-postgres",
        "StatefulSet/strict-redis",
        "StatefulSet/strict-neo4j",
    } <= names

    def all_pods_created() -> bool:
        pods = _items(cluster, ns, "pods")
        components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
        wanted = {obj["metadata"]["labels"]["app.kubernetes.io/component"] for _, obj in workloads}
        return wanted <= components

    wait_for(all_pods_created, timeout=60, what="a pod of every workload")
    assert _failed_creates(cluster, ns) == []
    for pod in _items(cluster, ns, "pods"):
        spec_ = pod["spec"]
        assert spec_["securityContext"]["runAsNonRoot"] is True
        assert spec_["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
