"""A RagSystem on real pods and the same programs started directly: time to ready and answer;
and a system backed up, deleted and restored under its name: time from the restore's apply
to Ready, against the same system's first create.

Used by ``benchmarks/cluster_start.py`` and ``benchmarks/backup_restore.py``. Both paths
ingest the same three documents and ask the same question; an answer counts only with a
citation of the right document.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from hack import cluster as local_cluster
from hack.dataplane.traefik import GATEWAY_NAME, GATEWAY_NAMESPACE
from hack.paths import cache_dir
from hack.volume_backup import BACKUP_CLAIM, VOLUME_BACKUP

COMPONENTS = ("postgres", "redis", "api", "worker")
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
QUESTION = "Which indexes does pgvector offer?"


def wait(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _ok(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def ingest_and_ask(client: httpx.Client) -> float:
    """Three documents in, one question out; raises unless the answer cites pgvector's.
    Returns when (monotonic) the documents were all ingested."""
    resp = client.post("/api/v1/collections", json={"name": "bench"})
    if resp.status_code not in (201, 409):
        raise RuntimeError(f"collection: {resp.status_code} {resp.text}")
    ids = [
        client.post("/api/v1/collections/bench/documents", json=d).json()["id"] for d in DOCUMENTS
    ]

    def ingested() -> bool:
        states = [
            client.get(f"/api/v1/collections/bench/documents/{i}").json()["status"] for i in ids
        ]
        if "failed" in states:
            raise RuntimeError("ingestion failed")
        return all(s == "ready" for s in states)

    wait(ingested, 300, "ingestion", every=0.05)
    ingested_at = time.monotonic()
    answer = client.post("/api/v1/query", json={"collection": "bench", "query": QUESTION}).json()
    if ids[0] not in {c["document_id"] for c in answer.get("citations") or []}:
        raise RuntimeError(f"the answer does not cite the pgvector document: {answer}")
    return ingested_at


def _rag_system(ns: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": "bench", "namespace": ns},
        "spec": {
            "version": "0.1.0",
            "api": {
                "replicas": 1,
                "exposure": {
                    "httpRoute": {
                        "parentRefs": [{"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
                        "hostnames": [f"{ns}.bench.test"],
                    }
                },
            },
            "worker": {"replicas": 1},
            "deletionPolicy": "Delete",
        },
    }
    manifest["spec"].update(extra or {})
    return manifest


def _json(c: local_cluster.Cluster, *args: str) -> dict[str, Any]:
    out = c.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def system_run(c: local_cluster.Cluster, ns: str) -> dict[str, float]:
    """Apply a RagSystem in (real) namespace ``ns``; seconds from the apply to each part."""
    local_cluster.real_namespace(c, ns)
    wait(
        lambda: c.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0,
        60,
        "the namespace's ServiceAccount",
    )
    parts: dict[str, float] = {}
    t0 = time.monotonic()
    c.kubectl("apply", "-f", "-", input=json.dumps(_rag_system(ns)))
    while "ragsystem_ready_s" not in parts:
        if time.monotonic() - t0 > 600:
            raise TimeoutError(f"RagSystem {ns}/bench not Ready after 600 s: {parts}")
        now = time.monotonic() - t0
        pods = _json(c, "pods", "-n", ns).get("items", [])
        comps = {
            p["metadata"].get("labels", {}).get("app.kubernetes.io/component"): p for p in pods
        }
        if (
            "scheduled_s" not in parts
            and set(COMPONENTS) <= set(comps)
            and all(p["spec"].get("nodeName") for p in pods)
        ):
            parts["scheduled_s"] = now
        for comp in COMPONENTS:
            conds = {
                x["type"]: x["status"]
                for x in (comps.get(comp) or {}).get("status", {}).get("conditions", [])
            }
            if f"{comp}_ready_s" not in parts and conds.get("Ready") == "True":
                parts[f"{comp}_ready_s"] = now
        rs = _json(c, "ragsystem", "bench", "-n", ns)
        ready = [x for x in rs.get("status", {}).get("conditions", []) if x["type"] == "Ready"]
        if ready and ready[0]["status"] == "True":
            parts["ragsystem_ready_s"] = now
        time.sleep(0.2)
    assert c.gateway_url is not None
    headers = {"Host": f"{ns}.bench.test", "Authorization": f"Bearer {c.admin_key(ns, 'bench')}"}
    client = httpx.Client(base_url=c.gateway_url, headers=headers, timeout=60)
    wait(lambda: _ok(client, "/api/v1/ready"), 120, "the API through the Gateway", every=0.05)
    parts["routed_s"] = time.monotonic() - t0
    parts["ingested_s"] = ingest_and_ask(client) - t0
    parts["answered_s"] = time.monotonic() - t0
    c.kubectl(
        "delete", "ragsystem", "bench", "-n", ns, "--wait=true", "--timeout=300s", timeout=320
    )
    c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return parts


@contextlib.contextmanager
def platform() -> Iterator[tuple[local_cluster.Cluster, float]]:
    """The local cluster with its data plane, ragops' CRDs and the operator; and how long
    the cluster took to be usable. Stopped, every process of it, on the way out."""
    from hack.demo import operator_process

    state_dir = Path(tempfile.mkdtemp(prefix="ragops-bench-platform-"))
    t0 = time.monotonic()
    c = local_cluster.up(state_dir, data_plane=True)
    start_s = time.monotonic() - t0
    print(f"cluster with the data plane usable in {start_s:.2f}s", file=sys.stderr)
    try:
        local_cluster.install_crds(c)
        with operator_process(c, state_dir):
            yield c, start_s
    finally:
        local_cluster.down(state_dir)


SAMPLED = (QUESTION, "traffic weights of a route", "the query cache")


def _real_namespace(c: local_cluster.Cluster, ns: str) -> None:
    local_cluster.real_namespace(c, ns)
    wait(
        lambda: c.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0,
        60,
        "the namespace's ServiceAccount",
    )


def _until_ready(c: local_cluster.Cluster, ns: str, timeout: float = 600) -> float:
    """Seconds until RagSystem ns/bench is Ready for its generation; a failed restore raises."""
    t0 = time.monotonic()

    def ready() -> bool:
        rs = _json(c, "ragsystem", "bench", "-n", ns)
        status = rs.get("status") or {}
        if (status.get("restore") or {}).get("phase") == "Failed":
            raise RuntimeError(f"restore failed: {status['restore'].get('message')}")
        generation = (rs.get("metadata") or {}).get("generation")
        return any(
            x["type"] == "Ready"
            and x["status"] == "True"
            and x.get("observedGeneration") == generation
            for x in status.get("conditions") or []
        )

    wait(ready, timeout, f"RagSystem {ns}/bench Ready", every=0.2)
    return time.monotonic() - t0


def _gateway(c: local_cluster.Cluster, ns: str) -> httpx.Client:
    assert c.gateway_url is not None
    headers = {"Host": f"{ns}.bench.test", "Authorization": f"Bearer {c.admin_key(ns, 'bench')}"}
    client = httpx.Client(base_url=c.gateway_url, headers=headers, timeout=60)
    wait(lambda: _ok(client, "/api/v1/ready"), 120, "the API through the Gateway", every=0.05)
    return client


def _answers(client: httpx.Client) -> dict[str, Any]:
    """Document and chunk counts and the top-10 chunk ids of the sampled questions."""
    collection = client.get("/api/v1/collections/bench").json()
    out: dict[str, Any] = {"documents": collection["documents"], "chunks": collection["chunks"]}
    for question in SAMPLED:
        body = {"collection": "bench", "query": question, "strategy": "vector", "top_k": 10}
        resp = client.post("/api/v1/search", json=body)
        resp.raise_for_status()
        out[question] = [hit["chunk_id"] for hit in resp.json()["results"]]
    return out


def restore_cycle(c: local_cluster.Cluster, ns: str) -> dict[str, Any]:
    """Create (the baseline), ingest, back up, delete, restore under the same name (timed)."""
    _real_namespace(c, ns)
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(BACKUP_CLAIM))
    c.kubectl("apply", "-f", "-", input=json.dumps(_rag_system(ns, {"backup": VOLUME_BACKUP})))
    create_s = _until_ready(c, ns)
    client = _gateway(c, ns)
    ingest_and_ask(client)
    before = _answers(client)
    backup = {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagBackup",
        "metadata": {"name": "bench", "namespace": ns},
        "spec": {"systemRef": {"name": "bench"}},
    }
    t0 = time.monotonic()
    c.kubectl("apply", "-f", "-", input=json.dumps(backup))
    wait(
        lambda: (
            (_json(c, "ragbackup", "bench", "-n", ns).get("status") or {}).get("phase")
            == "Completed"
        ),
        300,
        "RagBackup Completed",
        every=0.2,
    )
    backup_s = time.monotonic() - t0
    c.kubectl(
        "delete", "ragsystem", "bench", "-n", ns, "--wait=true", "--timeout=300s", timeout=320
    )
    restored = {"backup": VOLUME_BACKUP, "bootstrap": {"backup": {"name": "bench"}}}
    c.kubectl("apply", "-f", "-", input=json.dumps(_rag_system(ns, restored)))
    restore_s = _until_ready(c, ns)
    after = _answers(_gateway(c, ns))
    c.kubectl(
        "delete", "ragsystem", "bench", "-n", ns, "--wait=true", "--timeout=300s", timeout=320
    )
    c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return {
        "create_to_ready_s": create_s,
        "backup_s": backup_s,
        "restore_to_ready_s": restore_s,
        "equal": after == before,
    }


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def direct_run() -> dict[str, float]:
    """The same programs as plain processes on loopback, without the cluster."""
    from benchmarks._runtime import free_port
    from hack.services import start_postgres, start_redis

    bindir = Path(sys.executable).parent
    parts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rag-bench-direct-") as tmp:
        t0 = time.monotonic()
        pg = start_postgres(Path(tmp) / "pg", cache_dir())
        redis = start_redis(Path(tmp) / "redis")
        try:
            port, metrics = free_port(), free_port()
            env = {
                **os.environ,
                "RAG_DATABASE_URL": pg.create_database("rag"),
                "RAG_REDIS_URL": redis.url,
                "RAG_HOST": "127.0.0.1",
                "RAG_PORT": str(port),
                "RAG_LOG_LEVEL": "warning",
                "RAG_ALLOW_ANONYMOUS": "true",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
            }
            with (
                _process([str(bindir / "rag-runtime"), "serve"], env, Path(tmp) / "api.log"),
                _process(
                    [str(bindir / "rag-runtime"), "worker"],
                    {**env, "RAG_METRICS_PORT": str(metrics)},
                    Path(tmp) / "worker.log",
                ),
            ):
                client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
                wait(lambda: _ok(client, "/api/v1/ready"), 300, "the API", every=0.05)
                parts["api_ready_s"] = time.monotonic() - t0
                parts["ingested_s"] = ingest_and_ask(client) - t0
                parts["answered_s"] = time.monotonic() - t0
        finally:
            redis.stop()
            pg.stop()
    return parts
