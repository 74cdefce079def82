"""The local cluster's data plane: real traffic through Traefik to real pods, seen by Prometheus.

Aspects covered:
- the Gateway is programmed by Traefik and its listener is a loopback port;
- an HTTPRoute with backend weights 90/10 over two real backends: over 1,000 requests through
  the Gateway the canary's share is 10 +/- 3 %;
- an Ingress of class nginx with a canary Ingress beside it: ``canary-by-header`` sends the
  marked requests to the canary only, ``canary-weight: 30`` about 30 % of the others;
- Prometheus finds pods through a ServiceMonitor (labels namespace, service, pod, endpoint)
  and scrapes their metrics, and it scrapes Traefik's, which count the requests above.
"""

from __future__ import annotations

import collections
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.dataplane.traefik import GATEWAY_NAME, GATEWAY_NAMESPACE
from tests.fixtures.cluster import apply, get_json, namespace_for, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

REQUESTS = 1000

# Each backend serves its own name at / and one gauge at /metrics.
SERVE = (
    "mkdir -p /tmp/www && echo {name} > /tmp/www/index.html && "
    "printf 'demo_backend_up{{backend=\"{name}\"}} 1\\n' > /tmp/www/metrics && "
    "exec python -m http.server -d /tmp/www 8000"
)


def backend(name: str) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: python:3.11
        command: [sh, -c, {json.dumps(SERVE.format(name=name))}]
        ports: [{{name: http, containerPort: 8000}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, labels: {{app: {name}, demo: backends}}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""


@pytest.fixture(scope="module")
def backends(platform: Cluster) -> Iterator[str]:
    """Namespace with two real backends, ``stable`` and ``canary``, both Ready."""
    ns_iter = namespace_for(platform, "dp", real=True)
    ns = next(ns_iter)
    apply(platform, ns, backend("stable") + "---" + backend("canary"))
    platform.kubectl(
        "rollout",
        "status",
        "-n",
        ns,
        "deployment/stable",
        "deployment/canary",
        "--timeout=120s",
        timeout=130,
    )
    yield ns
    next(ns_iter, None)


def gateway_get(
    c: Cluster, host: str, path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    assert c.gateway_url is not None
    url = urllib.parse.urlsplit(c.gateway_url)
    assert url.hostname == "127.0.0.1"  # only ever loopback
    req = urllib.request.Request(c.gateway_url + path, headers={"Host": host, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def shares(
    c: Cluster, host: str, count: int, headers: dict[str, str] | None = None
) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        status, body = gateway_get(c, host, headers=headers)
        seen[body if status == 200 else f"HTTP {status}"] += 1
    return seen


def wait_routed(c: Cluster, host: str, bodies: set[str]) -> None:
    """Until Traefik sends ``host`` to every backend in ``bodies`` (its config has caught up)."""
    seen: set[str] = set()

    def routed() -> bool:
        seen.update(
            body for status, body in (gateway_get(c, host) for _ in range(20)) if status == 200
        )
        return bodies <= seen

    wait_for(routed, timeout=60, what=f"Traefik routing {host} to {sorted(bodies)}")


def prom_query(c: Cluster, query: str) -> list[dict[str, Any]]:
    assert c.prometheus_url is not None
    url = f"{c.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as resp:
        data = json.loads(resp.read())
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def test_gateway_is_programmed_on_a_loopback_listener(platform: Cluster) -> None:
    gw = get_json(platform, "-n", GATEWAY_NAMESPACE, f"gateway/{GATEWAY_NAME}")
    conditions = {c["type"]: c["status"] for c in gw["status"]["conditions"]}
    assert conditions["Programmed"] == "True"
    assert platform.gateway_url is not None
    port = urllib.parse.urlsplit(platform.gateway_url).port
    assert [listener["port"] for listener in gw["spec"]["listeners"]] == [port]


def test_httproute_weights_split_real_traffic_90_10(platform: Cluster, backends: str) -> None:
    apply(
        platform,
        backends,
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: split}}
spec:
  parentRefs: [{{name: {GATEWAY_NAME}, namespace: {GATEWAY_NAMESPACE}}}]
  hostnames: [split.{backends}.test]
  rules:
  - backendRefs:
    - {{name: stable, port: 80, weight: 90}}
    - {{name: canary, port: 80, weight: 10}}
""",
    )
    host = f"split.{backends}.test"
    wait_routed(platform, host, {"stable", "canary"})
    seen = shares(platform, host, REQUESTS)
    assert set(seen) == {"stable", "canary"}, seen
    canary_share = seen["canary"] / REQUESTS
    assert 0.07 <= canary_share <= 0.13, seen


def test_nginx_canary_annotations_route_by_header_and_weight(
    platform: Cluster, backends: str
) -> None:
    host = f"ing.{backends}.test"
    apply(
        platform,
        backends,
        f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: main}}
spec:
  ingressClassName: nginx
  rules:
  - host: {host}
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: stable, port: {{name: http}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: main-canary
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-by-header: X-Canary
    nginx.ingress.kubernetes.io/canary-weight: "30"
spec:
  ingressClassName: nginx
  rules:
  - host: {host}
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: canary, port: {{name: http}}}}}}}}
""",
    )
    wait_routed(platform, host, {"stable", "canary"})
    assert shares(platform, host, 50, headers={"X-Canary": "always"}) == {"canary": 50}
    assert shares(platform, host, 50, headers={"X-Canary": "never"}) == {"stable": 50}
    seen = shares(platform, host, 500)
    # Weighted at random: 30 % of 500 is 150, sd ~10; +/- 45 is beyond 4 sd.
    assert 105 <= seen["canary"] <= 195, seen


def test_prometheus_scrapes_service_monitor_targets_and_traefik(
    platform: Cluster, backends: str
) -> None:
    apply(
        platform,
        backends,
        """
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: backends}
spec:
  selector: {matchLabels: {demo: backends}}
  endpoints: [{port: http, path: /metrics, interval: 1s}]
""",
    )
    pods = get_json(platform, "-n", backends, "pods", "-l", "app=stable")["items"]
    stable_pod = pods[0]["metadata"]["name"]

    def scraped() -> bool:
        return len(prom_query(platform, f'demo_backend_up{{namespace="{backends}"}}')) == 2

    wait_for(scraped, timeout=60, what="the ServiceMonitor's targets scraped")
    series = {
        r["metric"]["backend"]: r["metric"]
        for r in prom_query(platform, f'demo_backend_up{{namespace="{backends}"}}')
    }
    assert set(series) == {"stable", "canary"}
    stable = series["stable"]
    assert (stable["service"], stable["pod"], stable["endpoint"], stable["job"]) == (
        "stable",
        stable_pod,
        "http",
        "stable",
    )
    assert stable["instance"].startswith("198.1")

    host = f"metrics.{backends}.test"
    apply(
        platform,
        backends,
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: counted}}
spec:
  parentRefs: [{{name: {GATEWAY_NAME}, namespace: {GATEWAY_NAMESPACE}}}]
  hostnames: [{host}]
  rules:
  - backendRefs: [{{name: stable, port: 80}}]
""",
    )
    wait_routed(platform, host, {"stable"})
    shares(platform, host, 40)
    query = f'sum(traefik_service_requests_total{{service=~"httproute-{backends}-counted-.*"}})'

    def counted() -> bool:
        result = prom_query(platform, query)
        return bool(result) and float(result[0]["value"][1]) >= 40

    started = time.monotonic()
    wait_for(counted, timeout=60, what="Traefik's request counter in Prometheus")
    assert time.monotonic() - started < 60
