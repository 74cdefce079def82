"""Pure builders of what a canary adds to a system, and the children of a serving plan.

How traffic reaches the canary depends on the exposure:
- HTTPRoute (Gateway API): a canary Service, and the route's backendRefs weighted
  stable 100-w / canary w;
- Ingress: a canary Service and a second Ingress with the nginx canary annotations
  (`canary: "true"`, `canary-weight: w`), present only while w > 0;
- no exposure: by replica ratio. The canary's pods carry the API's selector labels (plus
  `ragops.io/track: canary`), so the API Service spreads requests over stable and canary
  pods; the canary gets about w % of the pods (at least one), which only approximates w.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

from rag_operator.builders import Release, desired_children
from rag_operator.builders.common import child_name, labels, metadata, selector_labels
from rag_operator.builders.deployment import build_api_deployment
from rag_operator.builders.runtime import RuntimeConfig
from rag_operator.children import Capabilities
from rag_operator.models import API_PORT, OperatorConfig, RagSystem
from rag_operator.models.naming import TRACK_LABEL
from rag_operator.models.rollout import duration_seconds
from rag_operator.release.state import Plan

Mode = Literal["httproute", "ingress", "replicas"]
NGINX_CANARY = "nginx.ingress.kubernetes.io/canary"
NGINX_CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def canary_name(rs: RagSystem) -> str:
    return child_name(rs, "canary")


def exposure_mode(rs: RagSystem, caps: Capabilities) -> Mode:
    exposure = rs.spec.api.exposure
    if exposure.http_route is not None and caps.serves("HTTPRoute"):
        return "httproute"
    if exposure.ingress is not None:
        return "ingress"
    return "replicas"


def with_version(rs: RagSystem, version: str) -> RagSystem:
    """The same system at another runtime version (what the stable or canary pods run)."""
    if rs.spec.version == version:
        return rs
    return rs.model_copy(update={"spec": rs.spec.model_copy(update={"version": version})})


def canary_replicas(rs: RagSystem, weight: int, mode: Mode) -> int:
    """Pods of the canary: its share of the API's pods (at least one, to become ready)."""
    stable = max(rs.spec.api.replicas, rs.spec.api.autoscaling.min_replicas, 1)
    if mode != "replicas":
        return max(1, math.ceil(stable * weight / 100))
    if weight >= 100:
        return stable
    return max(1, round(stable * weight / (100 - weight)))


def canary_pod_labels(rs: RagSystem, mode: Mode) -> dict[str, str]:
    """Selector labels of the canary's pods (the API's in replica-ratio mode)."""
    component = "api" if mode == "replicas" else "canary"
    return {**selector_labels(rs, component), TRACK_LABEL: "canary"}


def build_canary_deployment(
    rs: RagSystem, cfg: OperatorConfig, runtime: RuntimeConfig, plan: Plan, mode: Mode
) -> dict[str, Any]:
    if plan.canary_version is None:
        raise ValueError("the plan has no canary")
    dep = build_api_deployment(with_version(rs, plan.canary_version), cfg, runtime)
    pod_labels = canary_pod_labels(rs, mode)
    dep["metadata"] = metadata(rs, canary_name(rs), "canary")
    spec = dep["spec"]
    spec["replicas"] = canary_replicas(rs, plan.weight, mode)
    spec["selector"] = {"matchLabels": pod_labels}
    template_labels = {**labels(rs, pod_labels["app.kubernetes.io/component"]), **pod_labels}
    spec["template"]["metadata"]["labels"] = template_labels
    return dep


def build_canary_service(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(rs, canary_name(rs), "canary"),
        "spec": {
            "type": "ClusterIP",
            "selector": canary_pod_labels(rs, "httproute"),
            "ports": [{"name": "http", "port": API_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def canary_scrape_interval(rs: RagSystem) -> str:
    """Half the analysis interval (at least 1 s), never slower than the system's own."""
    interval = duration_seconds(rs.spec.rollout.canary.analysis.interval)
    own = duration_seconds(rs.spec.monitoring.scrape_interval)
    return f"{max(1, int(min(own, interval / 2)))}s"


def build_canary_service_monitor(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(rs, canary_name(rs), "canary"),
        "spec": {
            "selector": {"matchLabels": selector_labels(rs, "canary")},
            "namespaceSelector": {"matchNames": [rs.namespace]},
            "endpoints": [
                {"port": "http", "path": "/metrics", "interval": canary_scrape_interval(rs)}
            ],
        },
    }


def weighted_route(route: dict[str, Any], rs: RagSystem, weight: int) -> dict[str, Any]:
    """The API's HTTPRoute with its traffic split between stable and the canary."""
    out = copy.deepcopy(route)
    refs: list[dict[str, Any]] = [
        {"name": child_name(rs, "api"), "port": API_PORT, "weight": 100 - weight}
    ]
    if weight > 0:
        refs.append({"name": canary_name(rs), "port": API_PORT, "weight": weight})
    for rule in out["spec"]["rules"]:
        rule["backendRefs"] = copy.deepcopy(refs)
    return out


def build_canary_ingress(
    stable_ingress: dict[str, Any], rs: RagSystem, weight: int
) -> dict[str, Any]:
    """A copy of the API's Ingress to the canary Service, marked as nginx's canary."""
    out = copy.deepcopy(stable_ingress)
    annotations = dict(out["metadata"].get("annotations") or {})
    annotations[NGINX_CANARY] = "true"
    annotations[NGINX_CANARY_WEIGHT] = str(weight)
    out["metadata"] = metadata(rs, canary_name(rs), "canary", annotations)
    for rule in out["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            path["backend"]["service"]["name"] = canary_name(rs)
    return out


def release_children(
    rs: RagSystem,
    cfg: OperatorConfig,
    caps: Capabilities,
    runtime: RuntimeConfig,
    plan: Plan,
    release: Release | None = None,
) -> list[dict[str, Any]]:
    """Every child of the system under `plan`: stable at its version, the canary beside it.

    `release` carries the migration step's Jobs and the version the stable Deployments run
    (default: `plan.stable_version`, no Jobs)."""
    release = release or Release(stable_version=plan.stable_version)
    out = desired_children(with_version(rs, plan.stable_version), cfg, caps, runtime, release)
    if plan.canary_version is None:
        return out
    mode = exposure_mode(rs, caps)
    out.append(build_canary_deployment(rs, cfg, runtime, plan, mode))
    if mode == "replicas":
        return out
    out.append(build_canary_service(rs, cfg))
    if rs.spec.monitoring.enabled and caps.serves("ServiceMonitor"):
        out.append(build_canary_service_monitor(rs, cfg))
    for i, child in enumerate(out):
        if mode == "httproute" and child["kind"] == "HTTPRoute":
            out[i] = weighted_route(child, rs, plan.weight)
        elif mode == "ingress" and child["kind"] == "Ingress" and plan.weight > 0:
            out.append(build_canary_ingress(child, rs, plan.weight))
            break
    return out
