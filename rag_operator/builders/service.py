"""Services: the API's ClusterIP Service, the worker's metrics Service, a headless Service per
managed store."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import (
    STORE_PORTS,
    Store,
    child_name,
    metadata,
    selector_labels,
)
from rag_operator.models import API_PORT, OperatorConfig, RagSystem


def build_api_service(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(rs, child_name(rs, "api"), "api"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(rs, "api"),
            "ports": [{"name": "http", "port": API_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_worker_service(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    """Headless Service of the worker's metrics port: what its ServiceMonitor selects.

    Not-ready workers stay listed, so that a worker that lost its queue is still scraped.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(rs, child_name(rs, "worker"), "worker"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector_labels(rs, "worker"),
            "ports": [
                {
                    "name": "metrics",
                    "port": rs.spec.monitoring.metrics_port,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                }
            ],
        },
    }


def build_store_service(rs: RagSystem, store: Store) -> dict[str, Any]:
    """Headless Service that gives the store's pod a stable DNS name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(rs, child_name(rs, store), store),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector_labels(rs, store),
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                for name, port in STORE_PORTS[store].items()
            ],
        },
    }
