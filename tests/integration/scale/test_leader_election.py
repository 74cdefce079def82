"""Two operator processes with leader election against the real API server.

Aspects covered:
- one process holds the Lease and reconciles; the standby reconciles nothing and writes
  nothing while it waits;
- the standby takes over within 15 s of the leader being killed with SIGKILL, resumes every
  system, and puts back a child deleted meanwhile;
- across the failover no child is written twice: the API server counts exactly one apply
  (the child put back) and every other child's apply time (managedFields) is unchanged.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import Kube, Operator, rag_manifest, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

SYSTEMS = ("s0", "s1", "s2")
CHILD_RESOURCES = {
    "configmaps",
    "services",
    "deployments",
    "statefulsets",
    "poddisruptionbudgets",
    "networkpolicies",
    "horizontalpodautoscalers",
    "ingresses",
    "secrets",
}
FAILOVER_S = 15.0


def metric(op: Operator, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in op.metrics().splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def applies(cluster: Cluster) -> float:
    """Server-side applies of child kinds the API server has served (not subresources)."""
    total = 0.0
    for line in cluster.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if not line.startswith("apiserver_request_total{") or 'verb="APPLY"' not in line:
            continue
        head, value = line.rsplit(" ", 1)
        fields = dict(
            part.split("=", 1) for part in head[head.index("{") + 1 : -1].split(",") if "=" in part
        )
        if (
            fields.get("resource", "").strip('"') in CHILD_RESOURCES
            and fields.get("subresource", '""') == '""'
        ):
            total += float(value)
    return total


def apply_times(cluster: Cluster, ns: str) -> dict[str, str]:
    """kind/name -> time of the operator's last apply (managedFields), for every child."""
    kinds = ",".join(sorted(CHILD_RESOURCES))
    text = cluster.kubectl("get", kinds, "-n", ns, "--show-managed-fields", "-o", "json").stdout
    items = json.loads(text)["items"]
    out: dict[str, str] = {}
    for item in items:
        for entry in item["metadata"].get("managedFields") or []:
            if entry.get("manager") == "ragops-operator" and entry.get("operation") == "Apply":
                out[f"{item['kind']}/{item['metadata']['name']}"] = entry.get("time", "")
    return out


def _operator(cluster: Cluster, tmp_path: Path, name: str, args: list[str]) -> Operator:
    log_dir = tmp_path / name
    log_dir.mkdir()
    op = Operator(cluster, log_dir)
    op.extra_args = args
    return op


def _steady(cluster: Cluster, kube: Kube, ns: str, op: Operator) -> dict[str, str]:
    """Every system Ready and two more resync passes each without writes."""
    for name in SYSTEMS:
        wait_phase(kube, ns, name, "Ready", timeout=120)
    passes = metric(op, "ragops_operator_reconciles_total", trigger="resync")
    wait_for(
        lambda: (
            metric(op, "ragops_operator_reconciles_total", trigger="resync")
            >= passes + 2 * len(SYSTEMS)
        ),
        timeout=120,
        what="two resync passes per system",
    )
    return apply_times(cluster, ns)


def test_standby_takes_over_within_15_s_and_writes_no_child_twice(
    cluster: Cluster, crd: Path, kube: Kube, ns: str, tmp_path: Path
) -> None:
    lease = f"ragops-{uuid.uuid4().hex[:6]}"
    args = ["--leader-election", "--leader-election-namespace", ns]
    args += ["--leader-election-id", lease, "--lease-duration", "8"]
    leader = _operator(cluster, tmp_path, "a", args)
    standby = _operator(cluster, tmp_path, "b", args)
    leader.start()
    wait_for(lambda: metric(leader, "ragops_operator_leader") == 1, timeout=60, what="leader")
    standby.start()
    try:
        for name in SYSTEMS:
            body: dict[str, Any] = rag_manifest(name, {})
            kube.custom.create_namespaced_custom_object(
                "ragops.io", "v1alpha1", ns, "ragsystems", body
            )
        before = _steady(cluster, kube, ns, leader)
        assert metric(standby, "ragops_operator_leader") == 0
        assert metric(standby, "ragops_operator_reconciles_total") == 0
        assert metric(standby, "ragops_operator_applies_total") == 0
        applied_before = applies(cluster)

        leader.kill(signal.SIGKILL)
        killed = time.monotonic()
        cluster.kubectl("delete", "service", "s0-api", "-n", ns)
        wait_for(
            lambda: metric(standby, "ragops_operator_leader") == 1,
            timeout=60,
            what="standby holding the Lease",
        )
        failover = time.monotonic() - killed
        wait_for(
            lambda: kube.get("Service", ns, "s0-api") is not None,
            timeout=60,
            what="deleted Service put back by the new leader",
        )
        after = _steady(cluster, kube, ns, standby)
        applied = applies(cluster) - applied_before
    finally:
        standby.kill(signal.SIGTERM)
        leader.kill(signal.SIGTERM)

    print(f"failover {failover:.1f}s, applies across it: {applied}")
    assert failover <= FAILOVER_S
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed <= {"Service/s0-api"}
    assert applied == 1


def test_a_leader_whose_lease_is_taken_stops(
    cluster: Cluster, crd: Path, kube: Kube, ns: str, tmp_path: Path
) -> None:
    lease = f"ragops-{uuid.uuid4().hex[:6]}"
    args = ["--leader-election", "--leader-election-namespace", ns]
    args += ["--leader-election-id", lease, "--lease-duration", "4"]
    op = _operator(cluster, tmp_path, "a", args)
    op.start()
    try:
        wait_for(lambda: metric(op, "ragops_operator_leader") == 1, timeout=60, what="leader")
        stolen = {"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 600}}
        cluster.kubectl(
            "patch", "lease", lease, "-n", ns, "--type", "merge", "-p", json.dumps(stolen)
        )
        assert op.proc is not None
        proc = op.proc
        wait_for(lambda: proc.poll() is not None, timeout=60, what="the deposed leader exiting")
        assert proc.returncode == 1
    finally:
        op.kill(signal.SIGTERM)
