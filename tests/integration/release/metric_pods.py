"""Metric endpoints that stand for runtime pods: each serves a registry of the runtime's own
`rag_runtime.metrics.Metrics`, fed by a traffic thread, scraped by a real Prometheus with the
labels a ServiceMonitor gives (namespace, pod)."""

from __future__ import annotations

import yaml
from prometheus_client import start_http_server

from hack.services._process import free_port
from hack.services.prometheus import PrometheusService
from rag_runtime.metrics import Metrics

ROUTE = "/api/v1/query"


class Pod:
    """A metrics endpoint with the runtime's metrics, fed by a traffic thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.metrics = Metrics()
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.metrics.registry
        )
        self.error_share = 0.0
        self.latency_s = 0.02
        self.per_tick = 0
        self.source = "client"
        self._sent = 0
        self._errors = 0.0

    def tick(self) -> None:
        for _ in range(self.per_tick):
            self._sent += 1
            self._errors += self.error_share
            status = "503" if self._errors >= 1 else "200"
            if status == "503":
                self._errors -= 1
            labels = (ROUTE, "POST", status, self.source)
            self.metrics.requests.labels(*labels).inc()
            self.metrics.request_seconds.labels(*labels).observe(self.latency_s)
        # Health checks are traffic too, but never counted by the analysis.
        self.metrics.requests.labels("/api/v1/health", "GET", "200", "client").inc(5)

    def stop(self) -> None:
        self.server.shutdown()


def write_config(prom: PrometheusService, pods: list[Pod], namespace: str = "ns") -> None:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "ragops",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{p.port}"],
                        "labels": {"namespace": namespace, "pod": p.name},
                    }
                    for p in pods
                ],
            }
        ],
    }
    prom.config_path.write_text(yaml.safe_dump(config))
    prom.reload()
