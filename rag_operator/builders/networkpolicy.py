"""NetworkPolicies: the API reachable as configured, stores only from the system's own pods,
and egress limited to what each pod needs.

The API and the worker may reach this system's stores, DNS, the ports of the configured
provider endpoints and of external stores (NetworkPolicy cannot name hosts, so those ports are
open to any address), and `spec.networkPolicy.extraEgressPorts`. Stores make no connections
at all. The worker takes only metrics scrapes, from the namespaces and pod labels of
`spec.networkPolicy.metricsAllowedNamespaces` / `metricsScraperLabels`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rag_operator.builders.common import (
    STORE_PORTS,
    STORES,
    child_name,
    metadata,
    selector_labels,
    store_mode,
    system_labels,
)
from rag_operator.models import (
    API_PORT,
    EmbeddingProvider,
    GenerationProvider,
    OperatorConfig,
    RagSystem,
)
from rag_operator.models.naming import COMPONENT_LABEL

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DNS_PORT = 53
HTTPS_PORT = 443


def _own_pods(rs: RagSystem) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": system_labels(rs)}}


def _namespaces(names: list[str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": list(names)}
            ]
        }
    }


def _store_pods(rs: RagSystem) -> dict[str, Any]:
    return {
        "podSelector": {
            "matchLabels": system_labels(rs),
            "matchExpressions": [
                {"key": COMPONENT_LABEL, "operator": "In", "values": list(STORES)}
            ],
        }
    }


def _tcp(ports: list[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    if parts.port is not None:
        return parts.port
    return 80 if parts.scheme == "http" else HTTPS_PORT


def endpoint_ports(rs: RagSystem) -> list[int]:
    """Ports of the generation and embedding endpoints and of external stores, sorted."""
    spec = rs.spec
    ports: set[int] = set()
    if spec.generation.provider != GenerationProvider.NONE:
        base = spec.generation.base_url
        ports.add(_url_port(base) if base else HTTPS_PORT)
    if spec.embedding.provider == EmbeddingProvider.OPENAI:
        base = spec.generation.base_url if spec.generation.provider.value == "openai" else None
        ports.add(_url_port(base) if base else HTTPS_PORT)
    for store in STORES:
        if store_mode(rs, store) == "external":
            ports.add(next(iter(STORE_PORTS[store].values())))
    ports.update(spec.network_policy.extra_egress_ports)
    return sorted(ports)


def runtime_egress(rs: RagSystem) -> list[dict[str, Any]]:
    """Egress rules of the API and worker pods."""
    managed = [s for s in STORES if store_mode(rs, s) == "managed"]
    store_ports = sorted({p for s in managed for p in STORE_PORTS[s].values()})
    rules: list[dict[str, Any]] = []
    if store_ports:
        rules.append({"to": [_store_pods(rs)], "ports": _tcp(store_ports)})
    rules.append(
        {"ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]}
    )
    outside = endpoint_ports(rs)
    if outside:
        rules.append({"ports": _tcp(outside)})
    return rules


def _policy(rs: RagSystem, name: str, selector: dict[str, Any], **rules: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(rs, child_name(rs, name), "network"),
        "spec": {"podSelector": selector, "policyTypes": ["Ingress", "Egress"], **rules},
    }


def build_api_network_policy(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": _tcp([API_PORT])}
    namespaces = rs.spec.network_policy.api_allowed_namespaces
    if namespaces:
        rule["from"] = [_own_pods(rs), _namespaces(namespaces)]
    selector = {"matchLabels": selector_labels(rs, "api")}
    return _policy(rs, "api", selector, ingress=[rule], egress=runtime_egress(rs))


def build_worker_network_policy(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    """The worker takes no traffic except metrics scrapes from the monitoring pods."""
    netpol = rs.spec.network_policy
    peer: dict[str, Any] = (
        _namespaces(netpol.metrics_allowed_namespaces)
        if netpol.metrics_allowed_namespaces
        else {"namespaceSelector": {}}
    )
    if netpol.metrics_scraper_labels:
        peer["podSelector"] = {"matchLabels": dict(netpol.metrics_scraper_labels)}
    ingress = [{"from": [peer], "ports": _tcp([rs.spec.monitoring.metrics_port])}]
    selector = {"matchLabels": selector_labels(rs, "worker")}
    return _policy(rs, "worker", selector, ingress=ingress, egress=runtime_egress(rs))


def build_stores_network_policy(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    """Managed stores accept connections only from this RagSystem's pods and make none."""
    managed = [s for s in STORES if store_mode(rs, s) == "managed"]
    ports = _tcp([port for s in managed for port in STORE_PORTS[s].values()])
    ingress = [{"from": [_own_pods(rs)], "ports": ports}] if ports else []
    return _policy(rs, "stores", _store_pods(rs)["podSelector"], ingress=ingress, egress=[])
