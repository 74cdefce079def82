"""The operator against the real local cluster (kwok makes the pods ready).

Aspects covered:
- create: every child appears, kwok readies the pods, status goes Ready with the right
  conditions, counts, endpoint and events; printer columns show it;
- an idle Ready system costs no API writes (no resourceVersion moves);
- scale and settings changes reach the children (settings roll the pods via the config hash);
- drift (scaled, edited, deleted by hand) is put back within 10 s;
- external stores instead of managed ones; a missing Secret is Degraded, then recovers;
- deletion with Retain keeps the volume claims and credentials, Delete removes them;
- an operator killed mid-reconcile resumes without duplicating or deleting anything;
- the API server restarted while the operator runs: the operator stays up, its watches come
  back (a change made after the restart and a new system are both reconciled), nothing is
  recreated;
- the operator's metrics and liveness endpoints.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import Cluster, restart_component
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import (
    REPO,
    Kube,
    Operator,
    condition,
    rag_manifest,
    wait_phase,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

MINIMAL_CHILDREN = [
    ("ConfigMap", "{n}-config"),
    ("ConfigMap", "{n}-postgres-init"),
    ("Secret", "{n}-credentials"),
    ("Secret", "{n}-api-keys"),
    ("Service", "{n}-api"),
    ("Service", "{n}-worker"),
    ("Service", "{n}-postgres"),
    ("Service", "{n}-redis"),
    ("Deployment", "{n}-api"),
    ("Deployment", "{n}-worker"),
    ("StatefulSet", "{n}-postgres"),
    ("StatefulSet", "{n}-redis"),
    ("PodDisruptionBudget", "{n}-api"),
    ("PodDisruptionBudget", "{n}-worker"),
    ("NetworkPolicy", "{n}-api"),
    ("NetworkPolicy", "{n}-worker"),
    ("NetworkPolicy", "{n}-stores"),
]


def apply(cluster: Cluster, ns: str, *objs: dict[str, Any]) -> None:
    text = "\n---\n".join(json.dumps(o) for o in objs)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)


def patch(cluster: Cluster, ns: str, name: str, spec: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch", "ragsystem", name, "-n", ns, "--type", "merge", "-p", json.dumps({"spec": spec})
    )


def children_uids(kube: Kube, ns: str, name: str) -> dict[str, str]:
    out = {}
    for kind, pattern in MINIMAL_CHILDREN:
        obj = kube.get(kind, ns, pattern.format(n=name))
        if obj is not None:
            out[f"{kind}/{pattern.format(n=name)}"] = obj["metadata"]["uid"]
    return out


def resource_versions(kube: Kube, ns: str, name: str) -> dict[str, str]:
    out = {"RagSystem": kube.rag(ns, name)["metadata"]["resourceVersion"]}
    for kind, pattern in MINIMAL_CHILDREN:
        obj = kube.get(kind, ns, pattern.format(n=name))
        assert obj is not None, f"{kind} {pattern.format(n=name)} missing"
        if kind not in ("Deployment", "StatefulSet"):  # status of workloads may still tick
            out[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    return out


def test_minimal_system_becomes_ready_with_all_children(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    started = time.monotonic()
    cluster.kubectl("apply", "-n", ns, "-f", str(REPO / "examples" / "minimal.yaml"))
    rag = wait_phase(kube, ns, "minimal", "Ready", timeout=60)
    took = time.monotonic() - started
    for kind, pattern in MINIMAL_CHILDREN:
        assert kube.get(kind, ns, pattern.format(n="minimal")) is not None, (kind, pattern)
    status = rag["status"]
    for type_ in (
        "Ready",
        "ApiReady",
        "WorkerReady",
        "PostgresReady",
        "RedisReady",
        "Neo4jReady",
        "ConfigReady",
    ):
        cond = condition(rag, type_)
        assert cond["status"] == "True", cond
        assert cond["observedGeneration"] == rag["metadata"]["generation"]
        assert cond["reason"]
    assert condition(rag, "Progressing")["status"] == "False"
    assert condition(rag, "Degraded")["status"] == "False"
    assert status["components"]["api"] == {"ready": 2, "desired": 2, "mode": ""}
    assert status["stores"] == "postgres=1/1,redis=1/1,neo4j=off"
    assert status["endpoint"] == f"http://minimal-api.{ns}.svc:8000"
    wait_for(
        lambda: {"Created", "Ready"} <= set(kube.events(ns, "minimal")),
        timeout=10,
        what="Created and Ready events",
    )
    wide = cluster.kubectl("get", "rag", "-n", ns, "-o", "wide").stdout
    assert "Ready" in wide
    assert "minimal-api" in wide
    assert "postgres=1/1" in wide
    assert took < 60


def test_idle_ready_system_makes_no_writes(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    apply(cluster, ns, rag_manifest("idle", {}))
    wait_phase(kube, ns, "idle", "Ready")
    time.sleep(1.0)
    before = resource_versions(kube, ns, "idle")
    cpu_before = _cpu_seconds(operator)
    time.sleep(3 * 2.0 + 1)
    assert resource_versions(kube, ns, "idle") == before
    # Idle systems cost a few passes, not a spinning loop (which takes whatever CPU it gets:
    # even a quarter of a core is 1.75 s of these 7).
    assert _cpu_seconds(operator) - cpu_before < 1.0


def _cpu_seconds(operator: Operator) -> float:
    assert operator.proc is not None
    fields = Path(f"/proc/{operator.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_scale_and_settings_changes_reach_children(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    apply(cluster, ns, rag_manifest("change", {}))
    wait_phase(kube, ns, "change", "Ready")
    dep = kube.get("Deployment", ns, "change-api")
    assert dep is not None
    old_hash = dep["spec"]["template"]["metadata"]["annotations"]["ragops.io/config-hash"]

    patch(cluster, ns, "change", {"api": {"replicas": 3}, "worker": {"replicas": 2}})
    rag = wait_phase(kube, ns, "change", "Ready")
    assert rag["status"]["components"]["api"]["ready"] == 3
    assert kube.get("Deployment", ns, "change-worker")["spec"]["replicas"] == 2  # type: ignore[index]

    patch(cluster, ns, "change", {"retrieval": {"topK": 4, "defaultStrategy": "vector"}})
    wait_phase(kube, ns, "change", "Ready")
    cm = kube.get("ConfigMap", ns, "change-config")
    assert cm is not None
    assert cm["data"]["RAG_TOP_K"] == "4"
    assert cm["data"]["RAG_RETRIEVAL_STRATEGY"] == "vector"
    dep = kube.get("Deployment", ns, "change-api")
    assert dep is not None
    assert dep["spec"]["template"]["metadata"]["annotations"]["ragops.io/config-hash"] != old_hash

    patch(
        cluster,
        ns,
        "change",
        {"api": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}}},
    )
    wait_for(
        lambda: kube.get("HorizontalPodAutoscaler", ns, "change-api") is not None,
        timeout=15,
        what="HPA created",
    )
    patch(cluster, ns, "change", {"api": {"autoscaling": {"enabled": False}}})
    wait_for(
        lambda: kube.get("HorizontalPodAutoscaler", ns, "change-api") is None,
        timeout=15,
        what="HPA removed",
    )


@pytest.mark.parametrize(
    ("action", "kind", "name", "check"),
    [
        (
            ["scale", "deployment", "drift-api", "--replicas=5"],
            "Deployment",
            "drift-api",
            lambda o: o is not None and o["spec"]["replicas"] == 2,
        ),
        (
            ["delete", "service", "drift-api", "--wait=false"],
            "Service",
            "drift-api",
            lambda o: o is not None and o["metadata"].get("deletionTimestamp") is None,
        ),
        (
            [
                "patch",
                "configmap",
                "drift-config",
                "--type",
                "merge",
                "-p",
                '{"data": {"RAG_TOP_K": "99"}}',
            ],
            "ConfigMap",
            "drift-config",
            lambda o: o is not None and o["data"]["RAG_TOP_K"] == "10",
        ),
        (
            ["delete", "statefulset", "drift-redis", "--wait=false"],
            "StatefulSet",
            "drift-redis",
            lambda o: o is not None and o["metadata"].get("deletionTimestamp") is None,
        ),
        (
            ["delete", "networkpolicy", "drift-stores"],
            "NetworkPolicy",
            "drift-stores",
            lambda o: o is not None,
        ),
    ],
    ids=["scaled", "service-deleted", "configmap-edited", "statefulset-deleted", "policy-deleted"],
)
def test_drift_is_put_back_within_ten_seconds(
    cluster: Cluster,
    operator: Operator,
    kube: Kube,
    ns: str,
    action: list[str],
    kind: str,
    name: str,
    check: Any,
) -> None:
    apply(cluster, ns, rag_manifest("drift", {}))
    wait_phase(kube, ns, "drift", "Ready")
    before = kube.get(kind, ns, name)
    assert before is not None
    cluster.kubectl(*action, "-n", ns)
    started = time.monotonic()
    wait_for(
        lambda: (
            check(kube.get(kind, ns, name))
            and (kube.get(kind, ns, name) or {}).get("metadata", {}).get("resourceVersion")
            != before["metadata"]["resourceVersion"]
        ),
        timeout=10,
        what=f"{kind} {name} put back",
    )
    assert time.monotonic() - started < 10
    wait_phase(kube, ns, "drift", "Ready", timeout=30)


def test_external_stores_instead_of_managed(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "stores"},
        "stringData": {
            "pg": "postgresql://u:p@db:5432/rag",
            "redis": "redis://cache:6379/0",
            "neo4j": "bolt://graph:7687",
            "neo4j-pw": "pw",
        },
    }
    spec = {
        "postgres": {"external": {"connectionSecretRef": {"name": "stores", "key": "pg"}}},
        "redis": {"external": {"connectionSecretRef": {"name": "stores", "key": "redis"}}},
        "neo4j": {
            "enabled": True,
            "external": {
                "connectionSecretRef": {"name": "stores", "key": "neo4j"},
                "passwordSecretRef": {"name": "stores", "key": "neo4j-pw"},
            },
        },
    }
    apply(cluster, ns, rag_manifest("ext", spec))
    rag = wait_phase(kube, ns, "ext", "Degraded", timeout=30)
    degraded = condition(rag, "Degraded")
    assert degraded["reason"] == "SecretNotFound"
    assert "spec.postgres.external.connectionSecretRef" in degraded["message"]

    apply(cluster, ns, secret)
    rag = wait_phase(kube, ns, "ext", "Ready", timeout=40)
    assert rag["status"]["stores"] == "postgres=ext,redis=ext,neo4j=ext"
    assert condition(rag, "PostgresReady")["reason"] == "External"
    for store in ("postgres", "redis", "neo4j"):
        assert kube.get("StatefulSet", ns, f"ext-{store}") is None
    assert kube.get("Secret", ns, "ext-credentials") is None
    dep = kube.get("Deployment", ns, "ext-api")
    assert dep is not None
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "stores", "key": "pg"}
    wait_for(lambda: "Recovered" in kube.events(ns, "ext"), timeout=10, what="Recovered event")


@pytest.mark.parametrize(("policy", "kept"), [("Retain", True), ("Delete", False)])
def test_deletion_policy_decides_what_happens_to_claims(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str, policy: str, kept: bool
) -> None:
    apply(cluster, ns, rag_manifest("gone", {"deletionPolicy": policy}))
    wait_phase(kube, ns, "gone", "Ready")
    wait_for(lambda: len(kube.pvcs(ns)) == 2, timeout=20, what="2 volume claims")
    claims = kube.pvcs(ns)
    assert claims == ["data-gone-postgres-0", "data-gone-redis-0"]
    cluster.kubectl("delete", "ragsystem", "gone", "-n", ns, "--timeout=60s")
    assert kube.get("RagSystem", ns, "gone") is None
    if kept:
        time.sleep(2)
        assert kube.pvcs(ns) == claims
        assert kube.get("Secret", ns, "gone-credentials") is not None
    else:
        wait_for(lambda: kube.pvcs(ns) == [], timeout=30, what="claims removed")
        assert kube.get("Secret", ns, "gone-credentials") is None


def test_operator_restart_mid_reconcile_duplicates_and_deletes_nothing(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    apply(cluster, ns, rag_manifest("restart", {}))
    wait_for(
        lambda: kube.get("ConfigMap", ns, "restart-config") is not None,
        timeout=20,
        what="first child",
    )
    operator.kill()
    partial = children_uids(kube, ns, "restart")
    secret = kube.get("Secret", ns, "restart-credentials")
    operator.start()
    wait_phase(kube, ns, "restart", "Ready", timeout=60)
    after = children_uids(kube, ns, "restart")
    for key, uid in partial.items():
        assert after[key] == uid, f"{key} was recreated"
    assert len(after) == len(MINIMAL_CHILDREN)
    if secret is not None:
        again = kube.get("Secret", ns, "restart-credentials")
        assert again is not None
        assert again["data"] == secret["data"], "generated passwords changed"
    # A second restart of a Ready system changes nothing at all.
    before = resource_versions(kube, ns, "restart")
    operator.kill()
    operator.start()
    time.sleep(2 * 2.0 + 1)
    assert resource_versions(kube, ns, "restart") == before


def test_api_server_restart_while_the_operator_runs_loses_no_watch(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    apply(cluster, ns, rag_manifest("steady", {}))
    wait_phase(kube, ns, "steady", "Ready")
    before = children_uids(kube, ns, "steady")
    restart_component(cluster, "kube-apiserver", down_s=3)
    assert operator.alive()
    apply(cluster, ns, rag_manifest("steady", {"api": {"replicas": 3}}))
    apply(cluster, ns, rag_manifest("newcomer", {}))

    def scaled() -> bool:
        deployment = kube.get("Deployment", ns, "steady-api") or {}
        return (deployment.get("spec") or {}).get("replicas") == 3

    wait_for(scaled, timeout=90, what="the change made after the restart reconciled")
    wait_phase(kube, ns, "steady", "Ready", timeout=90)
    wait_phase(kube, ns, "newcomer", "Ready", timeout=90)
    assert children_uids(kube, ns, "steady") == before, "children were recreated"
    assert operator.alive()


def test_operator_serves_metrics_and_liveness(operator: Operator) -> None:
    assert operator.alive()
    text = operator.metrics()
    assert "ragops_operator_reconciles_total" in text
    assert "ragops_operator_reconcile_duration_seconds" in text
