"""Prometheus Operator ServiceMonitors of the API's and the worker's /metrics.

Each target gets `ragsystem` (the RagSystem's name) and `component` (api, worker) from the
Service's labels, next to the `namespace` the Prometheus Operator sets, so that the
dashboard's and the alerts' selectors `{namespace, ragsystem, component}` find them.
"""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata, selector_labels
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.naming import COMPONENT_LABEL, INSTANCE_LABEL


def _meta_label(label: str) -> str:
    """Discovery label of a Service label: `app.kubernetes.io/x` -> `..._app_kubernetes_io_x`."""
    return "__meta_kubernetes_service_label_" + "".join(c if c.isalnum() else "_" for c in label)


RELABELINGS: list[dict[str, Any]] = [
    {
        "sourceLabels": [_meta_label(INSTANCE_LABEL)],
        "targetLabel": "ragsystem",
        "action": "replace",
    },
    {
        "sourceLabels": [_meta_label(COMPONENT_LABEL)],
        "targetLabel": "component",
        "action": "replace",
    },
]


def _service_monitor(rs: RagSystem, component: str, port: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(rs, child_name(rs, component), component),
        "spec": {
            "selector": {"matchLabels": selector_labels(rs, component)},
            "namespaceSelector": {"matchNames": [rs.namespace]},
            "endpoints": [
                {
                    "port": port,
                    "path": "/metrics",
                    "interval": rs.spec.monitoring.scrape_interval,
                    "relabelings": [dict(r) for r in RELABELINGS],
                }
            ],
        },
    }


def build_service_monitor(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return _service_monitor(rs, "api", "http")


def build_worker_service_monitor(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return _service_monitor(rs, "worker", "metrics")
