"""Ingress for the API (spec.api.exposure.ingress)."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata
from rag_operator.models import OperatorConfig, RagSystem


def build_api_ingress(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    ingress = rs.spec.api.exposure.ingress
    if ingress is None:
        raise ValueError("spec.api.exposure.ingress is not set")
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": child_name(rs, "api"),
                                    "port": {"name": "http"},
                                }
                            },
                        }
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(rs, child_name(rs, "api"), "api", dict(ingress.annotations)),
        "spec": spec,
    }
