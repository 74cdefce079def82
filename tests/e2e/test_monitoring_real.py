"""Monitoring and GitOps of a RagSystem on real pods, scraped by the real Prometheus.

Aspects covered:
- the worker's /health and /ready drive its probes (the pod is ready through them) and its
  metrics are scraped through its ServiceMonitor with `ragsystem` and `component` labels;
- after some traffic (ingestion, searches of every strategy, repeated searches for the
  cache, an empty search, a failing one, questions) and with the operator scraped too, every
  panel of the Grafana dashboard returns data from Prometheus, except the release and backup
  panels, whose series exist only once a release or a backup has run (test_canary_real.py
  and test_ragsystem_real.py see those panels return data); the panels are drawn from that
  data and screenshot by headless Chromium (RAGOPS_DASHBOARD_PNG, default
  /tmp/dashboard.png);
- nothing the operator writes makes an Argo CD Application OutOfSync: the manifest applied
  the way Argo CD applies it (client-side apply with its tracking annotation) compared with the
  live object after the operator reconciled, by gitops-engine's diff (hack/tools/argocd-diff),
  is in sync, strict and with status ignored; a real spec change is reported (the check can
  fail);
- an alert fires for real: with `apiDownFor: 5s`, a hung API pod (its processes frozen)
  fires RagApiDown for this system in Prometheus, and the alert resolves once it answers.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hack import dashboard_png
from hack.cluster import Cluster, install_crds
from hack.dataplane.traefik import GATEWAY_NAME, GATEWAY_NAMESPACE
from hack.devtools import go_tool
from tests.fixtures.cluster import (
    frozen_pod,
    get_json,
    namespace_for,
    net_plan,
    panels_on,
    scraped_operator,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

NAME = "mon"
READY_TIMEOUT_S = 480
# Panels of series that exist only once a release or a backup has run: this system runs
# neither (the canary and ragsystem e2e tests do, and check these panels), so they are the
# only panels without data here.
PENDING = panels_on("ragops_operator_rollout_") | panels_on("ragops_operator_backup_")
DOCUMENTS = [
    {"title": "Pgvector", "text": "pgvector adds HNSW and IVFFlat indexes to PostgreSQL."},
    {"title": "Traefik", "text": "Traefik splits traffic by the weights of an HTTPRoute."},
    {"title": "Redis", "text": "Redis keeps the ingestion queue and the query cache."},
]
TRACKING = "argocd.argoproj.io/tracking-id"


def rag_system(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {
            "name": NAME,
            "namespace": ns,
            # What Argo CD adds to each manifest it applies (annotation tracking).
            "annotations": {TRACKING: f"rag-{NAME}:ragops.io/RagSystem:{ns}/{NAME}"},
        },
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
            "monitoring": {
                "enabled": True,
                "scrapeInterval": "1s",
                "alerts": {"apiDownFor": "5s"},
            },
            "deletionPolicy": "Delete",
        },
    }


def broken_system(ns: str) -> dict[str, Any]:
    """A system whose Ingress the API server refuses: the operator counts reconcile errors."""
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": "broken", "namespace": ns},
        "spec": {
            "version": "0.1.0",
            "api": {
                "replicas": 0,
                "exposure": {"ingress": {"host": "broken.example.com", "className": "Bad_Class"}},
            },
            "worker": {"replicas": 0},
            "redis": {"enabled": False},
            "monitoring": {"enabled": False},
            "networkPolicy": {"enabled": False},
        },
    }


@pytest.fixture(scope="module")
def system(platform: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The operator (scraped by Prometheus as a host process) and a Ready system."""
    install_crds(platform)
    real = namespace_for(platform, "mon", real=True)
    fake = namespace_for(platform, "monbad", real=False)
    ns, bad_ns = next(real), next(fake)
    try:
        with scraped_operator(platform, tmp_path_factory.mktemp("operator")):
            # Client-side apply, as Argo CD syncs: it records last-applied-configuration.
            platform.kubectl("apply", "-f", "-", input=json.dumps(rag_system(ns)))
            platform.kubectl("apply", "-f", "-", input=json.dumps(broken_system(bad_ns)))
            wait_for(
                lambda: _ready(platform, ns),
                timeout=READY_TIMEOUT_S,
                what=f"RagSystem {ns}/{NAME} Ready",
            )
            yield ns
            platform.kubectl("delete", "ragsystem", "--all", "-n", bad_ns, "--wait=false")
            platform.kubectl(
                "delete", "ragsystem", NAME, "-n", ns, "--wait=true", "--timeout=240s", timeout=260
            )
    finally:
        next(real, None)
        next(fake, None)


def _rag(c: Cluster, ns: str) -> dict[str, Any]:
    out = c.kubectl("get", "ragsystem", NAME, "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def _ready(c: Cluster, ns: str) -> bool:
    obj = _rag(c, ns)
    return any(
        cond["type"] == "Ready"
        and cond["status"] == "True"
        and cond.get("observedGeneration") == obj["metadata"]["generation"]
        for cond in (obj.get("status") or {}).get("conditions") or []
    )


def _prom(c: Cluster, path: str, **params: str) -> Any:
    assert c.prometheus_url is not None
    resp = httpx.get(f"{c.prometheus_url}{path}", params=params, timeout=15)
    return resp.json()["data"]


def _traffic(c: Cluster, ns: str) -> None:
    assert c.gateway_url is not None
    headers = {"Host": f"{ns}.rag.test", "Authorization": f"Bearer {c.admin_key(ns, NAME)}"}
    client = httpx.Client(base_url=c.gateway_url, headers=headers, timeout=60)
    wait_for(
        lambda: client.get("/api/v1/ready").status_code == 200,
        timeout=90,
        what="the API through the Gateway",
    )
    if client.get("/api/v1/collections/docs").status_code == 404:
        assert client.post("/api/v1/collections", json={"name": "docs"}).status_code == 201
    ids = []
    for doc in DOCUMENTS:
        resp = client.post("/api/v1/collections/docs/documents", json=doc)
        assert resp.status_code in (200, 202), resp.text
        ids.append(resp.json()["id"])
    wait_for(
        lambda: all(
            client.get(f"/api/v1/collections/docs/documents/{i}").json()["status"] == "ready"
            for i in ids
        ),
        timeout=240,
        what="documents ingested by the worker",
    )
    # A series counted only before its first scrape has no rate: the same requests run twice,
    # the second time once Prometheus holds every series the first round created.
    seen = [
        f'rag_runtime_{m}{{namespace="{ns}"}}'
        for m in (
            "retrieval_duration_seconds_count",
            "empty_searches_total",
            "generation_duration_seconds_count",
            "cache_lookups_total",
        )
    ]
    for round_ in range(2):
        for strategy in ("vector", "keyword", "hybrid"):
            for _ in range(2):  # the second is a cache hit
                body = {"collection": "docs", "query": f"Which indexes? {round_}"}
                body["strategy"] = strategy
                assert client.post("/api/v1/search", json=body).status_code == 200
        empty = {"collection": "docs", "query": f"zzqqxxyy{round_}", "strategy": "keyword"}
        assert client.post("/api/v1/search", json=empty).json()["results"] == []
        graph = {"collection": "docs", "query": "Which indexes?", "strategy": "graph"}
        assert client.post("/api/v1/search", json=graph).status_code == 409  # no Neo4j here
        for _ in range(3):
            ask = {"collection": "docs", "query": f"Redis? {round_}"}
            assert client.post("/api/v1/query", json=ask).status_code == 200
        if round_ == 0:
            wait_for(
                lambda: all(_prom(c, "/api/v1/query", query=q)["result"] for q in seen),
                timeout=120,
                what="the first round's series in Prometheus",
            )


def test_worker_is_ready_through_its_health_endpoint_and_scraped(
    platform: Cluster, system: str
) -> None:
    ns = system
    pods = get_json(platform, "-n", ns, "pods", "-l", "app.kubernetes.io/component=worker")
    (worker,) = pods["items"]
    container = worker["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    wait_for(
        lambda: all(
            cs["ready"]
            for cs in get_json(platform, "-n", ns, "pod", worker["metadata"]["name"])["status"][
                "containerStatuses"
            ]
        ),
        timeout=240,
        what="the worker ready through /ready",
    )
    selector = f'up{{namespace="{ns}",ragsystem="{NAME}",component="worker"}}'
    wait_for(
        lambda: (
            [r["value"][1] for r in _prom(platform, "/api/v1/query", query=selector)["result"]]
            == ["1"]
        ),
        timeout=120,
        what="the worker scraped with its ragsystem and component labels",
    )


def test_panels_without_data_are_only_release_and_backup_panels() -> None:
    assert {
        "Canary weight",
        "Analysis results",
        "Last measured analysis values",
        "Rollout phase",
        "Age of the last good backup",
    } == PENDING


def test_every_dashboard_panel_returns_data_and_is_rendered(platform: Cluster, system: str) -> None:
    ns = system
    _traffic(platform, ns)
    assert platform.prometheus_url is not None
    prom = platform.prometheus_url
    panels: list[dashboard_png.PanelData] = []

    def all_have_data() -> bool:
        nonlocal panels
        panels = dashboard_png.panel_data(prom, ns, NAME, minutes=10)
        return all(p.series for p in panels if p.title not in PENDING)

    out = Path(os.environ.get("RAGOPS_DASHBOARD_PNG", "/tmp/dashboard.png"))
    try:
        wait_for(all_have_data, timeout=240, what="data in every dashboard panel")
    finally:
        empty = [p.title for p in panels if not p.series and p.title not in PENDING]
        print("dashboard panels without data:", empty)
        path, drawn = dashboard_png.render_png(prom, ns, NAME, out, minutes=10)
    assert path.stat().st_size > 50_000, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(drawn) == len(panels)


def _argocd_diff(tmp: Path, desired: dict[str, Any], live: dict[str, Any], *flags: str) -> Any:
    (tmp / "desired.json").write_text(json.dumps(desired))
    (tmp / "live.json").write_text(json.dumps(live))
    proc = subprocess.run(
        [str(go_tool("argocd-diff")), *flags, str(tmp / "desired.json"), str(tmp / "live.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_operator_writes_make_no_argocd_diff(
    platform: Cluster, system: str, tmp_path: Path
) -> None:
    ns = system
    desired = rag_system(ns)
    out = platform.kubectl(
        "get", "ragsystem", NAME, "-n", ns, "-o", "json", "--show-managed-fields"
    )
    live = json.loads(out.stdout)
    meta = live["metadata"]
    # The operator did write: status, kopf's annotation and finalizer are on the live object.
    assert live["status"]["phase"]
    assert any(k.startswith("ragops.io/") for k in meta.get("annotations", {})), meta
    managers = {m["manager"] for m in meta["managedFields"]}
    assert "kubectl-client-side-apply" in managers, managers
    for flags in ((), ("-ignore-status",)):
        result = _argocd_diff(tmp_path, desired, live, *flags)
        assert result["mode"] == "three-way"
        assert result["modified"] is False, json.dumps(result, indent=1)[:4000]
    # The check can fail: a spec that differs from Git is OutOfSync.
    changed = rag_system(ns)
    changed["spec"]["api"]["replicas"] = 3
    assert _argocd_diff(tmp_path, changed, live)["modified"] is True


def test_api_down_alert_fires_for_real(platform: Cluster, system: str) -> None:
    ns = system
    rules = _prom(platform, "/api/v1/rules")
    names = {
        r["name"]
        for g in rules["groups"]
        for r in g["rules"]
        if g["name"].endswith(ns + "." + NAME)
    }
    assert "RagApiDown" in names, rules
    # A hung API (its pod frozen): scaling the Deployment to zero would not do, the operator
    # puts a hand-scaled Deployment back at once, sometimes before the alert's 5 s are over.
    (api,) = get_json(platform, "-n", ns, "pods", "-l", "app.kubernetes.io/component=api")["items"]
    plan = net_plan(platform)

    def state() -> str | None:
        alerts = _prom(platform, "/api/v1/alerts")["alerts"]
        for a in alerts:
            labels = a["labels"]
            if (labels.get("alertname"), labels.get("namespace")) == ("RagApiDown", ns):
                assert labels.get("ragsystem") == NAME, labels
                return str(a["state"])
        return None

    assert state() is None
    with frozen_pod(plan, api):
        # Within the liveness probe's 30 s: past them the node agent restarts the container.
        wait_for(lambda: state() == "firing", timeout=25, what="RagApiDown firing in Prometheus")
    # The pod answers again (or was restarted by its liveness probe): the alert resolves.
    wait_for(lambda: state() is None, timeout=120, what="RagApiDown resolved")
