"""`make demo`: a working RAG system on this machine, end to end, every part real.

1. Brings up the local cluster: control plane, kwok and real-pod nodes (the node agent runs
   pods as processes), Traefik on a loopback port as the Gateway, Prometheus.
2. Installs the RagSystem CRD and runs the ragops operator as its own process.
3. Applies `examples/minimal.yaml`, exposed through the Gateway by an HTTPRoute, in the
   namespace `ragops-demo` (whose pods run for real), and waits until it is Ready, which it
   is only once its real Postgres, Redis, API and worker processes pass their probes.
4. Ingests the project's own docs through the Gateway (the worker embeds them).
5. Asks a question through the Gateway and prints the answer with its citations.
6. Shows the traffic in Prometheus (the runtime's and Traefik's request counters).
Prints how long each step took. The cluster and the system stay up afterwards
(`make cluster-down` stops everything); the operator is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from hack import cluster as local_cluster
from hack.dataplane.traefik import GATEWAY_NAME, GATEWAY_NAMESPACE
from hack.paths import REPO_ROOT, state_dir
from hack.services._process import ManagedProcess, free_port, log_tail

EXAMPLE = REPO_ROOT / "examples" / "minimal.yaml"
NAMESPACE = "ragops-demo"
HOST = "rag.demo.test"
COLLECTION = "ragops-docs"
DOCUMENTS = ("README.md", "docs/local-cluster.md")
QUESTION = "How does the local cluster run pods without containers?"
COMPONENTS = ("postgres", "redis", "api", "worker")


class DemoError(RuntimeError):
    """A step failed; the message says which and what was seen."""


class Steps:
    """Numbered steps with their durations, for the summary at the end."""

    def __init__(self) -> None:
        self.timings: list[tuple[str, float]] = []
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        print(f"\n==> {len(self.timings) + 1}. {title}", flush=True)
        t0 = time.monotonic()
        yield
        took = time.monotonic() - t0
        self.timings.append((title, took))
        print(f"    ({took:.1f} s)", flush=True)

    def summary(self) -> None:
        print("\n==> Time per step")
        for i, (title, took) in enumerate(self.timings, 1):
            print(f"  {i}. {took:6.1f} s  {title}")
        print(f"     {time.monotonic() - self.started:6.1f} s  in all")


@contextlib.contextmanager
def operator_process(
    kube: local_cluster.Cluster, workdir: Path, metrics_port: int | None = None
) -> Iterator[ManagedProcess]:
    """The operator as a separate process, the way it runs in its Deployment (its /metrics
    on `metrics_port`, or a free port)."""
    env = {**kube.env(), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    argv = [
        str(Path(sys.executable).parent / "ragops-operator"),
        "--metrics-port",
        str(metrics_port or free_port()),
        "--liveness-port",
        str(port),
    ]
    process = ManagedProcess("ragops-operator", argv, workdir / "operator.log", env=env)
    process.start()
    try:
        process.wait_ready(lambda: _ok(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        yield process
    finally:
        process.stop()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def manifest() -> dict[str, Any]:
    """examples/minimal.yaml, exposed through the local Gateway and scraped every 2 s."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = NAMESPACE
    spec = doc["spec"]
    spec.setdefault("api", {})["exposure"] = {
        "httpRoute": {
            "parentRefs": [{"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
            "hostnames": [HOST],
        }
    }
    spec["monitoring"] = {"enabled": True, "scrapeInterval": "2s"}
    return doc


def _json(kube: local_cluster.Cluster, *args: str) -> dict[str, Any]:
    out = kube.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def wait_ready(kube: local_cluster.Cluster, name: str, timeout: float) -> None:
    """Until the RagSystem is Ready, printing each real component as it becomes ready."""
    started = time.monotonic()
    seen: set[str] = set()
    while True:
        pods = _json(kube, "pods", "-n", NAMESPACE).get("items", [])
        for pod in pods:
            comp = pod["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
            conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            if comp in COMPONENTS and comp not in seen and conds.get("Ready") == "True":
                seen.add(comp)
                node, ip = pod["spec"].get("nodeName"), pod["status"].get("podIP")
                print(
                    f"    {time.monotonic() - started:5.1f} s  {comp:<8} ready "
                    f"(pod {pod['metadata']['name']} on {node}, {ip})",
                    flush=True,
                )
        rs = _json(kube, "ragsystem", name, "-n", NAMESPACE)
        ready = [c for c in rs.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        if ready and ready[0]["status"] == "True":
            print(f"    {time.monotonic() - started:5.1f} s  RagSystem {name} Ready", flush=True)
            return
        if time.monotonic() - started > timeout:
            detail = ready[0].get("message") if ready else "no Ready condition"
            raise DemoError(f"RagSystem {name} not Ready after {timeout:.0f} s: {detail}")
        time.sleep(0.5)


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def ingest(client: httpx.Client) -> list[str]:
    resp = client.post("/api/v1/collections", json={"name": COLLECTION})
    if resp.status_code not in (201, 409):
        raise DemoError(f"creating collection {COLLECTION}: {resp.status_code} {resp.text}")
    ids = []
    for rel in DOCUMENTS:
        path = REPO_ROOT / rel
        resp = client.post(
            f"/api/v1/collections/{COLLECTION}/documents/upload",
            files={"file": (path.name, path.read_bytes(), "text/markdown")},
            data={"title": rel},
        )
        if resp.status_code not in (200, 202):
            raise DemoError(f"uploading {rel}: {resp.status_code} {resp.text}")
        ids.append(resp.json()["id"])
        print(f"    {rel}: {resp.status_code} {resp.json()['status']}", flush=True)

    def done() -> bool:
        docs = [client.get(f"/api/v1/collections/{COLLECTION}/documents/{i}").json() for i in ids]
        failed = [d for d in docs if d["status"] == "failed"]
        if failed:
            raise DemoError(f"ingestion failed: {failed[0]['error']}")
        return all(d["status"] == "ready" for d in docs)

    wait(done, 300, "the worker to ingest the documents")
    collection = client.get(f"/api/v1/collections/{COLLECTION}").json()
    print(f"    ready: {collection['documents']} documents, {collection['chunks']} chunks")
    return ids


def ask(client: httpx.Client) -> None:
    print(f"    Q: {QUESTION}")
    resp = client.post("/api/v1/query", json={"collection": COLLECTION, "query": QUESTION})
    if resp.status_code != 200:
        raise DemoError(f"query: {resp.status_code} {resp.text}")
    body = resp.json()
    print(f"    A: {body['answer'][:600]}")
    if not body["citations"]:
        raise DemoError("the answer has no citations")
    for cite in body["citations"]:
        hit = body["results"][cite["index"] - 1]
        print(
            f"    [{cite['index']}] {hit['document_title']} (chunk {hit['ordinal']}, "
            f"score {hit['score']:.3f})"
        )


def prometheus(kube: local_cluster.Cluster, requests_made: int) -> None:
    assert kube.prometheus_url is not None
    runtime_q = (
        f"sum by (route, status) (rag_runtime_http_requests_total"
        f'{{namespace="{NAMESPACE}", route!~"/api/v1/(health|ready)|/metrics"}})'
    )
    traefik_q = (
        f'sum by (code) (traefik_service_requests_total{{service=~"httproute-{NAMESPACE}-.*"}})'
    )

    def query(q: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{kube.prometheus_url}/api/v1/query", params={"query": q}, timeout=10)
        result: list[dict[str, Any]] = resp.json()["data"]["result"]
        return result

    asked = f'rag_runtime_http_requests_total{{namespace="{NAMESPACE}", route="/api/v1/query"}}'

    def counted() -> bool:
        through_traefik = sum(float(r["value"][1]) for r in query(traefik_q))
        return through_traefik >= requests_made and bool(query(asked))

    wait(counted, 60, "Prometheus to scrape the requests")
    print(f"    {kube.prometheus_url}  {runtime_q}")
    for r in sorted(query(runtime_q), key=lambda r: str(r["metric"])):
        print(
            f"      {r['metric'].get('route', ''):<45} {r['metric'].get('status', '')}  "
            f"{float(r['value'][1]):.0f}"
        )
    print(f"    {traefik_q}")
    for r in query(traefik_q):
        print(f"      HTTP {r['metric'].get('code', '')}  {float(r['value'][1]):.0f} requests")


def run(timeout: float) -> int:
    steps = Steps()
    workdir = state_dir() / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    with steps.step("Local cluster: control plane, kwok + real-pod nodes, Traefik, Prometheus"):
        kube = local_cluster.up(real_namespaces=[NAMESPACE], data_plane=True)
        print(
            f"    API server {kube.server}; Gateway {kube.gateway_url}; "
            f"Prometheus {kube.prometheus_url}"
        )
        print(kube.kubectl("get", "nodes", "-L", "ragops.io/pods").stdout, end="")
    if kube.gateway_url is None:
        raise DemoError("a cluster without the data plane is running: make cluster-down first")
    with steps.step("RagSystem CRD and the ragops operator"):
        local_cluster.install_crds(kube)
        operator = contextlib.ExitStack()
        proc = operator.enter_context(operator_process(kube, workdir))
        print(f"    operator log: {proc.log_path}")
    with operator:
        name = manifest()["metadata"]["name"]
        with steps.step(f"RagSystem {name} (examples/minimal.yaml) behind the Gateway: Ready"):
            kube.kubectl("apply", "-f", "-", input=json.dumps(manifest()))
            try:
                wait_ready(kube, name, timeout)
            except DemoError:
                print(log_tail(proc.log_path, 30), file=sys.stderr)
                raise
            print(
                kube.kubectl(
                    "get", "ragsystem,pods,httproute", "-n", NAMESPACE, "-o", "wide"
                ).stdout,
                end="",
            )
        key = kube.admin_key(NAMESPACE, name)
        client = httpx.Client(
            base_url=kube.gateway_url,
            headers={"Host": HOST, "Authorization": f"Bearer {key}"},
            timeout=120,
        )
        with steps.step(f"Ingest {len(DOCUMENTS)} documents through the Gateway"):
            wait(lambda: client.get("/api/v1/ready").status_code == 200, 60, "the API")
            ingest(client)
        with steps.step("A question through the Gateway, answered with citations"):
            ask(client)
        with steps.step("The traffic in Prometheus"):
            prometheus(kube, requests_made=len(DOCUMENTS) + 3)
    steps.summary()
    print("\nThe cluster and the system are still running:")
    print(f"  {kube.export_line()}")
    print(f'  export PATH="{kube.bin_dir}:$PATH"')
    print(f"  kubectl get ragsystems,pods -n {NAMESPACE}")
    print(f"  curl -H 'Host: {HOST}' {kube.gateway_url}/api/v1/ready")
    print(
        f"  kubectl get secret {manifest()['metadata']['name']}-api-keys -n {NAMESPACE}"
        " -o jsonpath='{.data.admin-key}' | base64 -d   # the admin API key"
    )
    print("  make cluster-logs POD=<pod name>")
    print("Stop everything with: make cluster-down")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for Ready")
    args = parser.parse_args(argv)
    try:
        return run(args.timeout)
    except (DemoError, local_cluster.ClusterError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
