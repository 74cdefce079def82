"""Upgrades on real pods: the migration Job gates the workloads (operator, node agent,
Traefik, real Postgres).

Aspects covered:
- first install: the API pods start beside the migration Job, which really runs
  `rag-runtime migrate`, and turn ready only after it succeeded; the system becomes Ready and
  answers through the Gateway;
- an upgrade to a version whose migration fails (an image whose `migrate` exits 1) leaves
  the old version Ready and serving through the Gateway, with MigrationSucceeded=False,
  Degraded carrying the failed pod's last log lines, and a MigrationFailed Event;
- fixing the spec (a good version) completes the upgrade: status.version moves to it;
- queries sent through the Gateway all along never fail: the old API pod drains on SIGTERM
  until the Gateway has stopped sending to it (on failure, the message carries Traefik's
  access-log entries of the 5xx answers).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hack import canary_lab as lab
from hack import cluster as local_cluster
from hack.cluster import Cluster, install_crds
from hack.dataplane.traefik import GATEWAY_NAME, GATEWAY_NAMESPACE
from hack.demo import operator_process
from hack.node_agent.images import runtime_profile
from tests.fixtures.cluster import get_json, namespace_for, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

NAME = "upg"
TIMEOUT_S = 420
BAD = "0.2.0-badmigration"
BAD_BIN = Path(__file__).resolve().parent / "images" / "bad-migration"
SEEN: dict[str, Any] = {}  # what the upgrade test measured, for the test after it


def _system(ns: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": NAME, "namespace": ns},
        "spec": {
            "version": version,
            "api": {
                "replicas": 1,
                "exposure": {
                    "httpRoute": {
                        "parentRefs": [{"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}],
                        "hostnames": [f"{ns}.upg.test"],
                    }
                },
            },
            "worker": {"replicas": 0},
            "redis": {"enabled": False},
            "monitoring": {"enabled": False},
            "deletionPolicy": "Delete",
        },
    }


@pytest.fixture(scope="module")
def system(platform: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    install_crds(platform)
    real_bin = runtime_profile().env["PATH"].split(":")[0] + "/rag-runtime"
    local_cluster.set_images(
        platform,
        [
            {
                "image": f"ghcr.io/ragops/rag-runtime:{BAD}",
                "base": "rag-runtime",
                "env": {
                    "PATH": f"{BAD_BIN}:{runtime_profile().env['PATH']}",
                    "REAL_RAG_RUNTIME": real_bin,
                },
            }
        ],
    )
    ns_iter = namespace_for(platform, "upg", real=True)
    ns = next(ns_iter)
    try:
        with operator_process(platform, tmp_path_factory.mktemp("operator")):
            yield ns
            platform.kubectl(
                "delete",
                "ragsystem",
                NAME,
                "-n",
                ns,
                "--wait=true",
                "--timeout=180s",
                timeout=200,
                check=False,
            )
    finally:
        local_cluster.set_images(platform, [])
        next(ns_iter, None)


def _rag(c: Cluster, ns: str) -> dict[str, Any]:
    out = c.kubectl("get", "ragsystem", NAME, "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    gen = (obj.get("metadata") or {}).get("generation")
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_ and cond.get("observedGeneration") == gen:
            return dict(cond)
    return {}


def _api_pods(c: Cluster, ns: str) -> list[dict[str, Any]]:
    pods = get_json(c, "-n", ns, "pods", "-l", "app.kubernetes.io/component=api")["items"]
    return list(pods)


def _ready_images(c: Cluster, ns: str) -> set[str]:
    out = set()
    for pod in _api_pods(c, ns):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("ready"):
                out.add(pod["spec"]["containers"][0]["image"].rsplit(":", 1)[1])
    return out


class Queries(threading.Thread):
    """Questions through the Gateway until stopped; every failure is kept."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                resp = self.client.post(
                    "/api/v1/query", json={"collection": "docs", "query": "what is ragops?"}
                )
                if resp.status_code == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{time.time():.3f} {resp.status_code} {resp.text[:200]}")
            except httpx.HTTPError as exc:
                self.failures.append(f"{time.time():.3f} {exc!r}")


def _gateway_errors(c: Cluster, ns: str) -> list[dict[str, Any]]:
    """Traefik's access-log entries for this system's host that were not answered 2xx-4xx."""
    log = lab.access_log(c)
    out = []
    for line in log.read_text().splitlines() if log.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            str(entry.get("RequestHost", "")).startswith(f"{ns}.upg.test")
            and int(entry.get("DownstreamStatus", 0)) >= 500
        ):
            out.append(entry)
    return out


@pytest.mark.timeout(1500)  # three versions on real pods, each waited for with its own deadline
def test_failed_migration_keeps_the_old_version_serving_and_a_fix_completes(
    platform: Cluster, system: str
) -> None:
    ns = system
    platform.kubectl("apply", "-f", "-", input=json.dumps(_system(ns, "0.1.0")))
    wait_for(
        lambda: _cond(_rag(platform, ns), "Ready").get("status") == "True",
        timeout=TIMEOUT_S,
        what="first install Ready",
    )
    jobs = get_json(platform, "-n", ns, "jobs", "-l", "app.kubernetes.io/component=migrate")
    (job,) = jobs["items"]
    assert job["status"]["succeeded"] == 1
    # A first install: the API pod started beside the migration (not after it) and turned
    # ready only once the Job had made the schema (it does not migrate itself).
    (pod,) = _api_pods(platform, ns)
    done = job["status"]["completionTime"]
    assert pod["metadata"]["creationTimestamp"] <= done
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert ready["lastTransitionTime"] >= done
    rag = _rag(platform, ns)
    assert rag["status"]["version"] == "0.1.0"
    assert rag["status"]["lastGoodVersion"] == "0.1.0"

    assert platform.gateway_url is not None
    key = platform.admin_key(ns, NAME)
    client = httpx.Client(
        base_url=platform.gateway_url,
        headers={"Host": f"{ns}.upg.test", "Authorization": f"Bearer {key}"},
        timeout=30,
    )
    wait_for(
        lambda: client.get("/api/v1/ready").status_code == 200,
        timeout=60,
        what="API through the Gateway",
    )
    assert client.post("/api/v1/collections", json={"name": "docs"}).status_code == 201
    resp = client.post(
        "/api/v1/collections/docs/documents",
        json={"title": "ragops", "text": "ragops runs RAG systems on Kubernetes."},
    )
    assert resp.status_code in (200, 201, 202), resp.text
    queries = Queries(client)
    queries.start()
    try:
        # An upgrade whose migration fails: nothing changes for users.
        platform.kubectl("apply", "-f", "-", input=json.dumps(_system(ns, BAD)))
        wait_for(
            lambda: (
                _cond(_rag(platform, ns), "MigrationSucceeded").get("reason") == "MigrationFailed"
            ),
            timeout=TIMEOUT_S,
            what="MigrationSucceeded=False",
        )
        rag = _rag(platform, ns)
        degraded = _cond(rag, "Degraded")
        assert degraded["status"] == "True"
        assert degraded["reason"] == "MigrationFailed"
        assert 'column "embedding_v2" already exists' in degraded["message"]
        assert rag["status"]["version"] == "0.1.0"
        assert rag["status"]["desiredVersion"] == BAD
        assert _ready_images(platform, ns) == {"0.1.0"}
        assert _cond(rag, "ApiReady")["status"] == "True"
        events = get_json(
            platform, "-n", ns, "events", "--field-selector", f"involvedObject.name={NAME}"
        )["items"]
        assert "MigrationFailed" in {e["reason"] for e in events}
        assert client.get("/api/v1/ready").status_code == 200

        # The fix: a good version migrates and rolls out.
        platform.kubectl("apply", "-f", "-", input=json.dumps(_system(ns, "0.2.0")))
        wait_for(
            lambda: (
                (_rag(platform, ns).get("status") or {}).get("version") == "0.2.0"
                and _cond(_rag(platform, ns), "Ready").get("status") == "True"
            ),
            timeout=TIMEOUT_S,
            what="upgraded to 0.2.0 and Ready",
        )
        # The replaced 0.1.0 pod keeps serving while it drains after SIGTERM, then goes.
        wait_for(
            lambda: _ready_images(platform, ns) == {"0.2.0"},
            timeout=120,
            what="only 0.2.0 pods ready",
        )
        rag = _rag(platform, ns)
        assert rag["status"]["lastGoodVersion"] == "0.2.0"
        assert _cond(rag, "MigrationSucceeded")["status"] == "True"
    finally:
        queries.stop.set()
        queries.join(timeout=60)
        SEEN["queries"] = queries
        SEEN["gateway_errors"] = _gateway_errors(platform, ns)
    assert queries.ok > 0


def test_queries_through_the_gateway_never_fail_during_the_upgrade() -> None:
    queries = SEEN.get("queries")
    assert isinstance(queries, Queries), "runs after the upgrade test"
    errors = "\n".join(json.dumps(e, sort_keys=True) for e in SEEN.get("gateway_errors") or [])
    assert queries.failures == [], f"{queries.failures}\nTraefik's 5xx entries:\n{errors}"
