"""Children of kinds from optional CRDs: HTTPRoute (Gateway API), ServiceMonitor and
PrometheusRule (Prometheus Operator), with the projects' real CRDs installed in the local cluster.

Aspects covered:
- CRDs installed while the operator runs are noticed without a restart: a system that was
  Degraded with GatewayAPINotInstalled gets its HTTPRoute and ServiceMonitor and goes Ready;
- the HTTPRoute, the ServiceMonitor and the PrometheusRule are deleted when the spec stops
  asking for them;
- hostnames and parentRefs removed from the spec are removed from the HTTPRoute;
- a hand-deleted HTTPRoute is put back;
- each optional kind is watched on its own: with only the ServiceMonitor CRD installed after
  the operator started (no PrometheusRule CRD), the ServiceMonitor is created and pruned.

The first test removes the two CRDs if an earlier test installed them, and installs them
again; every other test finds them installed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.dataplane import crds as thirdparty
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import (
    Kube,
    Operator,
    condition,
    rag_manifest,
    wait_phase,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

BUNDLES = ("gateway-api", "monitoring")


def _route(*parents: str, hostnames: tuple[str, ...] = ()) -> dict[str, Any]:
    route: dict[str, Any] = {"parentRefs": [{"name": p} for p in parents]}
    if hostnames:
        route["hostnames"] = list(hostnames)
    return {"api": {"exposure": {"httpRoute": route}}, "monitoring": {"enabled": True}}


def _apply(cluster: Cluster, ns: str, name: str, spec: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(rag_manifest(name, spec)))


def _patch(cluster: Cluster, ns: str, name: str, spec: dict[str, Any]) -> None:
    body = json.dumps({"spec": spec})
    cluster.kubectl("patch", "rag", name, "-n", ns, "--type", "merge", "-p", body)


@pytest.fixture
def crds(cluster: Cluster) -> list[str]:
    """The Gateway API and ServiceMonitor CRDs, installed (their names)."""
    return thirdparty.install(cluster, *BUNDLES)


def test_crds_installed_after_start_are_noticed(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    thirdparty.uninstall(cluster, *BUNDLES)
    _apply(cluster, ns, "late", _route("gw"))
    rag = wait_phase(kube, ns, "late", "Degraded", timeout=60)
    assert condition(rag, "Degraded")["reason"] == "GatewayAPINotInstalled"
    assert kube.get("HTTPRoute", ns, "late-api") is None

    thirdparty.install(cluster, *BUNDLES)
    wait_for(
        lambda: kube.get("HTTPRoute", ns, "late-api") is not None,
        timeout=60,
        what="HTTPRoute created once the Gateway API CRDs exist",
    )
    wait_for(
        lambda: kube.get("ServiceMonitor", ns, "late-api") is not None,
        timeout=60,
        what="ServiceMonitor created once its CRD exists",
    )
    wait_phase(kube, ns, "late", "Ready", timeout=60)


def test_route_and_monitor_are_deleted_when_the_spec_drops_them(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str, crds: list[str]
) -> None:
    _apply(cluster, ns, "prune", _route("gw"))
    wait_phase(kube, ns, "prune", "Ready")
    assert kube.get("HTTPRoute", ns, "prune-api") is not None
    assert kube.get("ServiceMonitor", ns, "prune-api") is not None
    assert kube.get("ServiceMonitor", ns, "prune-worker") is not None

    _patch(cluster, ns, "prune", {"api": {"exposure": {"httpRoute": None}}})
    wait_for(
        lambda: kube.get("HTTPRoute", ns, "prune-api") is None, timeout=30, what="route deleted"
    )
    _patch(cluster, ns, "prune", {"monitoring": {"enabled": False}})
    wait_for(
        lambda: not any(kube.get("ServiceMonitor", ns, f"prune-{c}") for c in ("api", "worker")),
        timeout=30,
        what="ServiceMonitors deleted",
    )
    wait_phase(kube, ns, "prune", "Ready")


def _route_lists(kube: Kube, ns: str) -> tuple[list[str], list[str]]:
    spec = (kube.get("HTTPRoute", ns, "narrow-api") or {}).get("spec") or {}
    parents = [p["name"] for p in spec.get("parentRefs") or []]
    return parents, list(spec.get("hostnames") or [])


def test_hostnames_and_parents_removed_from_the_spec_leave_the_route(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str, crds: list[str]
) -> None:
    wide = _route("gw", "gw-2", hostnames=("a.example.com", "b.example.com"))
    _apply(cluster, ns, "narrow", wide)
    wait_phase(kube, ns, "narrow", "Ready")
    assert _route_lists(kube, ns) == (["gw", "gw-2"], ["a.example.com", "b.example.com"])

    _patch(cluster, ns, "narrow", _route("gw", hostnames=("a.example.com",)))
    wait_for(
        lambda: _route_lists(kube, ns) == (["gw"], ["a.example.com"]),
        timeout=30,
        what="route narrowed to one parent and one hostname",
    )
    wait_phase(kube, ns, "narrow", "Ready")


def test_deleted_route_is_put_back(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str, crds: list[str]
) -> None:
    _apply(cluster, ns, "back", _route("gw"))
    wait_phase(kube, ns, "back", "Ready")
    before = kube.get("HTTPRoute", ns, "back-api")
    assert before is not None
    cluster.kubectl("delete", "httproute", "back-api", "-n", ns)
    wait_for(
        lambda: (
            (kube.get("HTTPRoute", ns, "back-api") or {}).get("metadata", {}).get("uid")
            not in (None, before["metadata"]["uid"])
        ),
        timeout=15,
        what="HTTPRoute put back",
    )


SERVICE_MONITORS = "servicemonitors.monitoring.coreos.com"


def test_service_monitor_alone_installed_later_is_watched_and_pruned(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    thirdparty.uninstall(cluster, *BUNDLES)
    try:
        _apply(cluster, ns, "solo", {"monitoring": {"enabled": True}})
        wait_phase(kube, ns, "solo", "Ready", timeout=60)
        (doc,) = [
            d
            for d in thirdparty.crd_documents("monitoring")
            if d["metadata"]["name"] == SERVICE_MONITORS
        ]
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(doc))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{SERVICE_MONITORS}")
        wait_for(
            lambda: kube.get("ServiceMonitor", ns, "solo-api") is not None,
            timeout=60,
            what="ServiceMonitor created once its CRD alone exists",
        )
        _patch(cluster, ns, "solo", {"monitoring": {"enabled": False}})
        wait_for(
            lambda: kube.get("ServiceMonitor", ns, "solo-api") is None,
            timeout=60,
            what="ServiceMonitor pruned when monitoring is switched off",
        )
        wait_phase(kube, ns, "solo", "Ready")
    finally:
        thirdparty.install(cluster, *BUNDLES)
