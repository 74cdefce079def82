"""A RagSystem end to end with everything real: operator, pods as processes, Traefik, Prometheus.

Aspects covered:
- applied with an HTTPRoute on the local Gateway, the system becomes Ready, and at that
  moment its Postgres, Redis, API and worker containers really are ready (real probes);
- documents ingested through the Gateway reach the worker and become ready; a question
  asked through the Gateway is answered with citations of those documents;
- the operator's NetworkPolicies hold (enforced by the node agent): a pod of another
  namespace reaches the API and none of the stores, by pod address or by Service;
- Prometheus scrapes the API pods found through the operator's ServiceMonitor, and sees the
  requests made;
- an on-demand RagBackup (a real backup Job on a user's volume claim) completes before the
  system is deleted;
- deleted with ``deletionPolicy: Delete``, the system leaves no pod, claim, process, network
  namespace, cgroup or directory behind (the user's backup claim and the RagBackup stay);
- a new system of the same name bootstrapped from that RagBackup is Ready with the same
  collection, document and chunk counts and the same top-10 results (chunk ids) as before
  the delete; the time from apply to Ready (restore, migration, pods) is printed.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hack.cluster import Cluster, install_crds
from hack.dataplane.traefik import GATEWAY_NAME, GATEWAY_NAMESPACE
from hack.node_agent import network
from hack.node_agent.agent import cgroup2_mount
from hack.volume_backup import BACKUP_CLAIM, VOLUME_BACKUP
from tests.fixtures.cluster import (
    get_json,
    logs,
    namespace_for,
    net_plan,
    panels_on,
    processes_of_pods,
    scraped_operator,
    wait_for,
    wait_for_panel_data,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

NAME = "e2e"
READY_TIMEOUT_S = 420
DOCUMENTS = [
    {
        "title": "Pgvector",
        "text": "pgvector adds vector similarity search to PostgreSQL; it "
        "offers HNSW and IVFFlat indexes for approximate nearest neighbours.",
    },
    {
        "title": "Traefik",
        "text": "Traefik is a reverse proxy. Its Kubernetes Gateway provider "
        "splits traffic between backends by the weights of an HTTPRoute.",
    },
    {"title": "Redis", "text": "Redis keeps the ingestion queue and the query cache in memory."},
]
QUESTIONS = ["Which indexes does pgvector offer?", "traffic weights", "query cache"]
ON_DEMAND = "before-delete"


def rag_system(ns: str, bootstrap: dict[str, Any] | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": NAME, "namespace": ns},
        "spec": {
            "version": "0.1.0",
            "api": {
                "replicas": 1,
                "exposure": {
                    "httpRoute": {
                        "parentRefs": [{"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
                        "hostnames": [f"{ns}.rag.test"],
                    }
                },
            },
            "worker": {"replicas": 1},
            "monitoring": {"enabled": True, "scrapeInterval": "1s"},
            "backup": VOLUME_BACKUP,
            "deletionPolicy": "Delete",
        },
    }
    if bootstrap is not None:
        manifest["spec"]["bootstrap"] = bootstrap
    return manifest


@pytest.fixture(scope="module")
def system(platform: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The RagSystem CRD, the operator running, and a real namespace to apply a system in."""
    install_crds(platform)
    ns_iter = namespace_for(platform, "rag", real=True)
    ns = next(ns_iter)
    with scraped_operator(platform, tmp_path_factory.mktemp("operator")):
        yield ns
    next(ns_iter, None)


def _ready_condition(c: Cluster, ns: str) -> dict[str, Any]:
    out = c.kubectl("get", "ragsystem", NAME, "-n", ns, "-o", "json", check=False)
    if out.returncode != 0:
        return {}
    obj = json.loads(out.stdout)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready" and cond.get("observedGeneration") == obj["metadata"].get(
            "generation"
        ):
            return dict(cond)
    return {}


def _prom(c: Cluster, query: str) -> list[dict[str, Any]]:
    assert c.prometheus_url is not None
    resp = httpx.get(f"{c.prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
    result: list[dict[str, Any]] = resp.json()["data"]["result"]
    return result


def _client(c: Cluster, ns: str) -> httpx.Client:
    assert c.gateway_url is not None
    key = c.admin_key(ns, NAME)  # authentication by default: the operator generated it
    return httpx.Client(
        base_url=c.gateway_url,
        headers={"Host": f"{ns}.rag.test", "Authorization": f"Bearer {key}"},
        timeout=60,
    )


def _snapshot(client: httpx.Client) -> dict[str, Any]:
    """What a restore must give back: the counts and each question's top-10 chunk ids."""
    collection = client.get("/api/v1/collections/docs").json()
    top10 = {}
    for question in QUESTIONS:
        resp = client.post(
            "/api/v1/search",
            json={"collection": "docs", "query": question, "strategy": "vector", "top_k": 10},
        )
        assert resp.status_code == 200, resp.text
        top10[question] = [hit["chunk_id"] for hit in resp.json()["results"]]
    return {"documents": collection["documents"], "chunks": collection["chunks"], **top10}


# From a pod of another namespace: the API's port (open to any namespace by default) and
# the stores' (only the system's own pods), each by pod address and by Service name.
PROBE = """
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3) as conn:
            conn.settimeout(3)
            # Postgres answers an SSLRequest with one byte; HTTP and Redis answer this line.
            ssl_request = b"\\x00\\x00\\x00\\x08\\x04\\xd2\\x16/"
            conn.sendall(ssl_request if port == "5432" else b"PING\\r\\n\\r\\n")
            out[target] = "answered" if conn.recv(1) else "closed"
    except OSError as exc:
        out[target] = type(exc).__name__
print(json.dumps(out))
"""


def _stores_closed_to_other_namespaces(
    c: Cluster, ns: str, components: dict[str, dict[str, Any]]
) -> None:
    """The operator's NetworkPolicies, enforced by the node agent: another namespace's pod
    reaches the API and none of the stores."""
    ip = {k: p["status"]["podIP"] for k, p in components.items()}
    api = [f"{ip['api']}:8000", f"{NAME}-api.{ns}:8000"]
    stores = [f"{ip['postgres']}:5432", f"{NAME}-postgres.{ns}:5432", f"{ip['redis']}:6379"]
    stores.append(f"{NAME}-redis.{ns}:6379")
    outside = namespace_for(c, "outside", real=True)
    other = next(outside)
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe", "namespace": other},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "python:3.11",
                        "command": ["python", "-c", PROBE, *api, *stores],
                    }
                ],
            },
        }
        c.kubectl("apply", "-f", "-", input=json.dumps(pod))
        wait_phase(c, other, "probe", "Succeeded", "Failed", timeout=120)
        text = logs(c, other, "probe")
        out = json.loads(next(ln for ln in text.splitlines() if ln.startswith("{")))
        assert all(out[t] == "answered" for t in api), out
        assert not any(out[t] == "answered" for t in stores), out
    finally:
        next(outside, None)


def _back_up(c: Cluster, ns: str) -> None:
    backup = {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagBackup",
        "metadata": {"name": ON_DEMAND, "namespace": ns},
        "spec": {"systemRef": {"name": NAME}},
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(backup))

    def phase() -> str:
        rb = get_json(c, "ragbackup", ON_DEMAND, "-n", ns)
        assert (rb.get("status") or {}).get("phase") != "Failed", rb.get("status")
        return str((rb.get("status") or {}).get("phase"))

    wait_for(lambda: phase() == "Completed", timeout=READY_TIMEOUT_S, what="RagBackup Completed")


def test_ragsystem_serves_through_the_gateway_and_leaves_nothing_when_deleted(
    platform: Cluster, system: str
) -> None:
    ns = system
    platform.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(BACKUP_CLAIM))
    platform.kubectl("apply", "-f", "-", input=json.dumps(rag_system(ns)))
    wait_for(
        lambda: _ready_condition(platform, ns).get("status") == "True",
        timeout=READY_TIMEOUT_S,
        what=f"RagSystem {ns}/{NAME} Ready",
    )

    # Ready means the real processes are ready.
    pods = get_json(platform, "-n", ns, "pods")["items"]
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in pods}
    assert {"api", "worker", "postgres", "redis"} <= set(components)
    for component in ("api", "postgres", "redis"):
        statuses = components[component]["status"]["containerStatuses"]
        assert all(cs["ready"] and "running" in cs["state"] for cs in statuses), component
    plan = net_plan(platform)
    pod_ips = [p["status"]["podIP"] for p in pods]
    assert all(plan.in_pod_network(ip) for ip in pod_ips)
    pod_uids = [p["metadata"]["uid"] for p in pods]
    _stores_closed_to_other_namespaces(platform, ns, components)
    claims = get_json(platform, "-n", ns, "pvc", "-l", f"app.kubernetes.io/instance={NAME}")
    claim_uids = [c["metadata"]["uid"] for c in claims["items"]]
    assert len(claim_uids) == 2  # postgres and redis

    # Ingest and ask through Traefik.
    assert platform.gateway_url is not None
    anonymous = httpx.post(
        f"{platform.gateway_url}/api/v1/collections",
        headers={"Host": f"{ns}.rag.test"},
        json={"name": "nope"},
        timeout=60,
    )
    assert anonymous.status_code == 401
    client = _client(platform, ns)
    wait_for(
        lambda: client.get("/api/v1/ready").status_code == 200,
        timeout=60,
        what="the API through the Gateway",
    )
    assert client.post("/api/v1/collections", json={"name": "docs"}).status_code == 201
    ids = []
    for doc in DOCUMENTS:
        resp = client.post("/api/v1/collections/docs/documents", json=doc)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])

    def ingested() -> bool:
        states = [
            client.get(f"/api/v1/collections/docs/documents/{i}").json()["status"] for i in ids
        ]
        assert "failed" not in states, states
        return states == ["ready"] * len(ids)

    wait_for(ingested, timeout=180, what="documents ingested by the worker")
    answer = client.post(
        "/api/v1/query", json={"collection": "docs", "query": "Which indexes does pgvector offer?"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["citations"], body
    cited = {c["document_id"] for c in body["citations"]}
    assert ids[0] in cited
    assert "HNSW" in body["answer"] or "HNSW" in body["results"][0]["text"]

    # Prometheus found the API pod through the ServiceMonitor and counts the requests.
    query = f'sum(rag_runtime_http_requests_total{{namespace="{ns}", service="{NAME}-api"}})'
    wait_for(
        lambda: (
            bool(_prom(platform, query))
            and float(_prom(platform, query)[0]["value"][1]) >= len(DOCUMENTS) + 2
        ),
        timeout=60,
        what="the API's requests in Prometheus",
    )

    # An on-demand backup, then delete: nothing of the system may be left.
    before = _snapshot(client)
    _back_up(platform, ns)
    # The dashboard's backup panel shows its age, from the operator's scraped metrics.
    (age,) = wait_for_panel_data(
        platform, ns, NAME, panels_on("ragops_operator_backup_"), timeout=120
    )
    assert 0 <= age.series[0].points[-1][1] < 600, age.series
    platform.kubectl(
        "delete", "ragsystem", NAME, "-n", ns, "--wait=true", "--timeout=180s", timeout=200
    )

    def all_gone() -> bool:
        # What stays is the user's: the backup claim, and the RagBackup's finished Job pod.
        left = get_json(platform, "-n", ns, "pods,pvc")["items"]
        return not [
            o
            for o in left
            if o["metadata"]["name"] != "backups"
            and o["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "backup"
        ]

    wait_for(all_gone, timeout=180, what="pods and claims deleted")
    assert platform.state_dir is not None
    agent = platform.state_dir / "agent"
    wait_for(
        lambda: not any(list((agent / "claims").glob(f"{u}*")) for u in claim_uids),
        timeout=60,
        what="claim directories removed",
    )
    still_there = {p["metadata"]["uid"] for p in get_json(platform, "-n", ns, "pods")["items"]}
    left = [p for p in (agent / "pods").glob(f"{ns}_*") if p.name.split("_")[-1] not in still_there]
    assert not left  # only the RagBackup's finished Job pod keeps its directory
    own_netns = network.own_netns(plan)
    for ip in pod_ips:
        assert plan.netns(plan.pod_index(ipaddress.IPv4Address(ip))) not in own_netns
    cg = cgroup2_mount()
    if cg is not None:
        for uid in pod_uids:
            assert not (cg / "ragops" / plan.prefix / f"pod{uid}").exists()
    assert processes_of_pods(plan, pod_uids) == []

    # Restore into a new system of the same name: the same data answers the same way.
    started = time.monotonic()
    bootstrap = {"backup": {"name": ON_DEMAND}}
    platform.kubectl("apply", "-f", "-", input=json.dumps(rag_system(ns, bootstrap)))

    def restored_and_ready() -> bool:
        status = get_json(platform, "ragsystem", NAME, "-n", ns).get("status") or {}
        restore = status.get("restore") or {}
        assert restore.get("phase") != "Failed", restore.get("message")  # say why, stop
        return _ready_condition(platform, ns).get("status") == "True"

    wait_for(
        restored_and_ready,
        timeout=READY_TIMEOUT_S,
        what=f"RagSystem {ns}/{NAME} restored and Ready",
    )
    restore_to_ready_s = time.monotonic() - started
    restored = get_json(platform, "ragsystem", NAME, "-n", ns)
    assert restored["status"]["restore"]["phase"] == "Succeeded", restored["status"]
    again = _client(platform, ns)
    wait_for(
        lambda: again.get("/api/v1/ready").status_code == 200,
        timeout=60,
        what="the restored API through the Gateway",
    )
    assert _snapshot(again) == before
    print(f"restore_to_ready_s={restore_to_ready_s:.1f}")
