"""Gateway API HTTPRoute for the API (spec.api.exposure.httpRoute)."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata
from rag_operator.models import API_PORT, OperatorConfig, RagSystem


def build_api_httproute(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    route = rs.spec.api.exposure.http_route
    if route is None:
        raise ValueError("spec.api.exposure.httpRoute is not set")
    parents: list[dict[str, Any]] = []
    for ref in route.parent_refs:
        parent: dict[str, Any] = {"name": ref.name}
        if ref.namespace:
            parent["namespace"] = ref.namespace
        if ref.section_name:
            parent["sectionName"] = ref.section_name
        parents.append(parent)
    spec: dict[str, Any] = {
        "parentRefs": parents,
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": child_name(rs, "api"), "port": API_PORT}],
            }
        ],
    }
    if route.hostnames:
        spec["hostnames"] = list(route.hostnames)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(rs, child_name(rs, "api"), "api"),
        "spec": spec,
    }
