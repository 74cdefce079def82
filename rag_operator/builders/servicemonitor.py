"""Prometheus Operator ServiceMonitor for the API's /metrics."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata, selector_labels
from rag_operator.models import OperatorConfig, RagSystem


def build_service_monitor(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(rs, child_name(rs, "api"), "api"),
        "spec": {
            "selector": {"matchLabels": selector_labels(rs, "api")},
            "namespaceSelector": {"matchNames": [rs.namespace]},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": rs.spec.monitoring.scrape_interval,
                }
            ],
        },
    }
