"""NetworkPolicies: the API reachable as configured, stores only from the system's own pods."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import (
    STORE_PORTS,
    STORES,
    child_name,
    metadata,
    selector_labels,
    store_mode,
    system_labels,
)
from rag_operator.models import API_PORT, OperatorConfig, RagSystem
from rag_operator.models.naming import COMPONENT_LABEL


def _own_pods(rs: RagSystem) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": system_labels(rs)}}


def build_api_network_policy(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": API_PORT}]}
    namespaces = rs.spec.network_policy.api_allowed_namespaces
    if namespaces:
        rule["from"] = [
            _own_pods(rs),
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": list(namespaces),
                        }
                    ]
                }
            },
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(rs, child_name(rs, "api"), "network"),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(rs, "api")},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
    }


def build_worker_network_policy(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    """The worker takes no traffic except metrics scrapes."""
    port = rs.spec.monitoring.metrics_port
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(rs, child_name(rs, "worker"), "network"),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(rs, "worker")},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


def build_stores_network_policy(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    """Managed stores accept connections only from this RagSystem's pods."""
    managed = [s for s in STORES if store_mode(rs, s) == "managed"]
    ports = [{"protocol": "TCP", "port": port} for s in managed for port in STORE_PORTS[s].values()]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(rs, child_name(rs, "stores"), "network"),
        "spec": {
            "podSelector": {
                "matchLabels": system_labels(rs),
                "matchExpressions": [
                    {"key": COMPONENT_LABEL, "operator": "In", "values": list(STORES)}
                ],
            },
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [_own_pods(rs)], "ports": ports}] if ports else [],
        },
    }
