"""Pure builders: RagSystem -> child manifests. No I/O, no kopf, no Kubernetes client."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import STORES, store_mode
from rag_operator.builders.configmap import build_configmap
from rag_operator.builders.deployment import build_api_deployment, build_worker_deployment
from rag_operator.builders.hpa import build_api_hpa
from rag_operator.builders.httproute import build_api_httproute
from rag_operator.builders.ingress import build_api_ingress
from rag_operator.builders.networkpolicy import (
    build_api_network_policy,
    build_stores_network_policy,
    build_worker_network_policy,
)
from rag_operator.builders.pdb import build_api_pdb, build_worker_pdb
from rag_operator.builders.prometheusrule import build_prometheus_rule
from rag_operator.builders.runtime import RuntimeConfig, runtime_config
from rag_operator.builders.secret import build_credentials_secret
from rag_operator.builders.service import (
    build_api_service,
    build_store_service,
    build_worker_service,
)
from rag_operator.builders.servicemonitor import (
    build_service_monitor,
    build_worker_service_monitor,
)
from rag_operator.builders.statefulset import build_store_statefulset
from rag_operator.builders.storeconfig import build_postgres_init_configmap
from rag_operator.children import Capabilities
from rag_operator.models import OperatorConfig, RagSystem

__all__ = [
    "Capabilities",
    "RuntimeConfig",
    "build_credentials_secret",
    "desired_children",
    "runtime_config",
]


def desired_children(
    rs: RagSystem,
    cfg: OperatorConfig,
    caps: Capabilities,
    runtime: RuntimeConfig | None = None,
) -> list[dict[str, Any]]:
    """Every child the system should have (except the generated Secret), in apply order.

    `caps` says which optional kinds the cluster serves; `runtime` is the pass's derived
    runtime configuration (derived here when not given).
    """
    spec = rs.spec
    runtime = runtime or runtime_config(rs)
    out: list[dict[str, Any]] = [build_configmap(rs, runtime)]
    for store in STORES:
        if store_mode(rs, store) == "managed":
            if store == "postgres":
                out.append(build_postgres_init_configmap(rs))
            out.append(build_store_service(rs, store))
            out.append(build_store_statefulset(rs, cfg, store))
    out.append(build_api_service(rs, cfg))
    out.append(build_api_deployment(rs, cfg, runtime))
    out.append(build_worker_service(rs, cfg))
    out.append(build_worker_deployment(rs, cfg, runtime))
    if spec.api.autoscaling.enabled:
        out.append(build_api_hpa(rs, cfg))
    if spec.api.pod_disruption_budget.enabled:
        out.append(build_api_pdb(rs, cfg))
    if spec.worker.pod_disruption_budget.enabled and spec.worker.replicas > 0:
        out.append(build_worker_pdb(rs, cfg))
    if spec.network_policy.enabled:
        out.append(build_api_network_policy(rs, cfg))
        out.append(build_worker_network_policy(rs, cfg))
        out.append(build_stores_network_policy(rs, cfg))
    if spec.api.exposure.ingress is not None:
        out.append(build_api_ingress(rs, cfg))
    if spec.api.exposure.http_route is not None and caps.serves("HTTPRoute"):
        out.append(build_api_httproute(rs, cfg))
    if spec.monitoring.enabled and caps.serves("ServiceMonitor"):
        out.append(build_service_monitor(rs, cfg))
        out.append(build_worker_service_monitor(rs, cfg))
    if spec.monitoring.enabled and spec.monitoring.alerts.enabled and caps.serves("PrometheusRule"):
        out.append(build_prometheus_rule(rs, cfg))
    return out
