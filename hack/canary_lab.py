"""A canary release on real pods behind Traefik, judged by the real Prometheus: the pieces the
end-to-end tests and `benchmarks/canary.py` share.

- `faulty_images()`: image tags ending in ``-faulty``, ``-latent``, ``-slow`` or ``-worse``
  run the runtime through `hack/faults/bin/rag-runtime`: answers that fail with 503 (health,
  readiness and search are fine; -latent only in the stable Deployment's pods), answers
  from a slow generation provider, or keyword-only retrieval;
- `rag_system()`: a RagSystem with the Canary strategy behind the local Gateway, no Redis
  (inline ingestion) and the local Prometheus as the analysis' source;
- `Traffic`: client queries through the Gateway on a thread, each marked with a sequence
  number in its path so that Traefik's access log says which pod answered it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hack import cluster as local_cluster
from hack.dataplane.traefik import GATEWAY_NAME, GATEWAY_NAMESPACE, INGRESS_CLASS
from hack.node_agent.images import runtime_profile
from hack.paths import REPO_ROOT
from rag_operator.models.naming import TRACK_LABEL

NAME = "canary"
FAULT_BIN = REPO_ROOT / "hack" / "faults" / "bin"
COLLECTION = "docs"
DOCUMENT = {
    "title": "Pgvector",
    "text": "pgvector adds vector similarity search to PostgreSQL; it offers HNSW and "
    "IVFFlat indexes for approximate nearest neighbours.",
}
QUESTION = "Which indexes does pgvector offer?"


# tag suffix -> RAGOPS_FAULT
FAULTS = {"faulty": "errors", "latent": "latent", "slow": "slow", "worse": "worse"}


def faulty_images(delay_seconds: float = 1.5) -> list[dict[str, Any]]:
    """The image mappings of the faulty releases (for `hack.cluster.set_images`): tags ending
    in -faulty fail their answers (-latent once promoted), -slow answer `delay_seconds` late,
    -worse retrieve worse."""
    base = runtime_profile()
    path = f"{FAULT_BIN}:{base.env['PATH']}"
    real = str(Path(base.env["PATH"].split(":")[0]) / "rag-runtime")
    return [
        {
            "image": f"ghcr.io/ragops/rag-runtime:*-{suffix}",
            "base": "rag-runtime",
            "env": {
                "PATH": path,
                "RAGOPS_RUNTIME_BIN": real,
                "RAGOPS_FAULT": fault,
                "RAGOPS_FAULT_DELAY": str(delay_seconds),
                "RAGOPS_REPO": str(REPO_ROOT),
            },
        }
        for suffix, fault in FAULTS.items()
    ]


def canary_spec(
    prometheus_url: str,
    steps: list[dict[str, Any]],
    *,
    interval: str = "10s",
    bake: str = "10s",
    failure_limit: int = 1,
) -> dict[str, Any]:
    return {
        "strategy": "Canary",
        "canary": {
            "steps": steps,
            "bakeTime": bake,
            "analysis": {
                "interval": interval,
                "window": "20s",
                "failureLimit": failure_limit,
                "inconclusiveLimit": 12,
                "minRequests": 5,
                "prometheus": {"address": prometheus_url},
                "errorRate": {"max": 0.05},
            },
            "probes": {"ratePerSecond": 2, "collection": COLLECTION, "query": QUESTION},
        },
    }


def gateway_exposure(ns: str) -> dict[str, Any]:
    """The API served through the local Gateway (an HTTPRoute) on `host(ns)`."""
    return {
        "httpRoute": {
            "parentRefs": [{"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
            "hostnames": [host(ns)],
        }
    }


def ingress_exposure(ns: str) -> dict[str, Any]:
    """The API served through an Ingress of Traefik's nginx class on `host(ns)`."""
    return {"ingress": {"className": INGRESS_CLASS, "host": host(ns)}}


def rag_system(
    ns: str, version: str, rollout: dict[str, Any], exposure: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The lab's system; exposed through the Gateway unless `exposure` says otherwise."""
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": NAME, "namespace": ns},
        "spec": {
            "version": version,
            "api": {
                "replicas": 1,
                "exposure": gateway_exposure(ns) if exposure is None else exposure,
            },
            "redis": {"enabled": False},
            "worker": {"replicas": 0},
            "networkPolicy": {"enabled": False},
            "monitoring": {"enabled": True, "scrapeInterval": "2s"},
            "rollout": rollout,
            "deletionPolicy": "Delete",
        },
    }


def host(ns: str) -> str:
    return f"{ns}.canary.test"


def get(c: local_cluster.Cluster, ns: str, *what: str) -> dict[str, Any]:
    out = c.kubectl("get", *what, "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def rollout(c: local_cluster.Cluster, ns: str) -> dict[str, Any]:
    status = get(c, ns, "ragsystem", NAME).get("status") or {}
    return dict(status.get("rollout") or {})


def ready(c: local_cluster.Cluster, ns: str) -> bool:
    obj = get(c, ns, "ragsystem", NAME)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return bool(cond["status"] == "True")
    return False


def set_version(
    c: local_cluster.Cluster, ns: str, version: str, analysis: dict[str, Any] | None = None
) -> None:
    """A new version (a new rollout), with `analysis` merged into the canary's analysis."""
    spec: dict[str, Any] = {"version": version}
    if analysis:
        spec["rollout"] = {"canary": {"analysis": analysis}}
    patch = json.dumps({"spec": spec})
    c.kubectl("patch", "ragsystem", NAME, "-n", ns, "--type=merge", "-p", patch)


def probe_answers(c: local_cluster.Cluster, ns: str) -> dict[str, float]:
    """Status -> how many of the operator's probe queries the pods of `ns` answered so, as
    Prometheus scraped the runtime's counters."""
    assert c.prometheus_url is not None
    query = f'sum by (status) (rag_runtime_http_requests_total{{namespace="{ns}",source="probe"}})'
    resp = httpx.get(f"{c.prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
    resp.raise_for_status()
    return {r["metric"]["status"]: float(r["value"][1]) for r in resp.json()["data"]["result"]}


GOLDEN = "canary-golden"
# Worded unlike DOCUMENT (no shared stem): vector search finds it, keyword search cannot.
GOLDEN_QUERIES = ("Which Postgres plugin finds close embeddings?",)


def golden_set(ns: str) -> dict[str, Any]:
    """The quality gate's golden set: a ConfigMap whose queries all mean DOCUMENT."""
    queries = [{"query": q, "relevant": [DOCUMENT["title"]]} for q in GOLDEN_QUERIES]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": GOLDEN, "namespace": ns},
        "data": {"golden.json": json.dumps({"collection": COLLECTION, "queries": queries})},
    }


def canary_ips(c: local_cluster.Cluster, ns: str) -> set[str]:
    pods = get(c, ns, "pods", "-l", f"{TRACK_LABEL}=canary").get("items") or []
    return {str(p["status"]["podIP"]) for p in pods if (p.get("status") or {}).get("podIP")}


def client(c: local_cluster.Cluster, ns: str) -> httpx.Client:
    """A client of the system through the Gateway, with the admin key the operator made."""
    assert c.gateway_url is not None
    headers = {"Host": host(ns), "Authorization": f"Bearer {c.admin_key(ns, NAME)}"}
    return httpx.Client(base_url=c.gateway_url, headers=headers, timeout=30)


def wait(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - start


def seed(c: local_cluster.Cluster, ns: str) -> None:
    """One collection with one document, ingested in the API process (no Redis)."""
    with client(c, ns) as http:
        wait(lambda: _ok(http, "/api/v1/ready"), 120, "the API through the Gateway")
        resp = http.post("/api/v1/collections", json={"name": COLLECTION})
        if resp.status_code not in (201, 409):
            raise RuntimeError(f"collection: {resp.status_code} {resp.text}")
        doc = http.post(f"/api/v1/collections/{COLLECTION}/documents", json=DOCUMENT).json()

        def ingested() -> bool:
            got = http.get(f"/api/v1/collections/{COLLECTION}/documents/{doc['id']}").json()
            if got["status"] == "failed":
                raise RuntimeError(f"ingestion failed: {got}")
            return bool(got["status"] == "ready")

        wait(ingested, 180, "the document ingested")


def _ok(http: httpx.Client, path: str) -> bool:
    try:
        return http.get(path).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Sent:
    seq: int
    sent_at: float  # time.time() when the request went out
    at: float  # time.time() when the answer came
    status: int
    step: int  # the rollout step the client last saw (0 = none)


@dataclass
class Traffic:
    """Client queries through the Gateway, about `rate` per second, on a thread."""

    c: local_cluster.Cluster
    ns: str
    rate: float = 10.0
    sent: list[Sent] = field(default_factory=list)
    step: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        seq = 0
        with client(self.c, self.ns) as http:
            while not self._stop.wait(1.0 / self.rate):
                seq += 1
                body = {"collection": COLLECTION, "query": QUESTION}
                sent_at = time.time()
                try:
                    status = http.post(f"/api/v1/query?seq={seq}", json=body).status_code
                except httpx.HTTPError:
                    status = 0
                self.sent.append(Sent(seq, sent_at, time.time(), status, self.step))

    def since(self, t: float) -> list[Sent]:
        return [s for s in self.sent if s.at >= t]


def access_log(c: local_cluster.Cluster) -> Path:
    assert c.state_dir is not None
    return c.state_dir / "logs" / "traefik-access.log"


def answered_by(c: local_cluster.Cluster, ns: str) -> dict[int, str]:
    """seq -> the pod address (ip:port) Traefik sent the request to, from its access log."""
    out: dict[int, str] = {}
    marker = "/api/v1/query?seq="
    with access_log(c).open() as fh:
        for line in fh:
            if marker not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("RequestHost", host(ns)).split(":")[0] != host(ns):
                continue
            path = str(entry.get("RequestPath", ""))
            if path.startswith(marker):
                out[int(path[len(marker) :])] = str(entry.get("ServiceAddr", ""))
    return out


def poll(every: float, until: Callable[[], bool]) -> Iterator[float]:
    """time.monotonic() at each poll until `until()` holds."""
    while not until():
        yield time.monotonic()
        time.sleep(every)
