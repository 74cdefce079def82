"""Prometheus metrics, prefix `rag_runtime_`, one registry per runtime (API or worker)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "rag_runtime"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def package_version() -> str:
    try:
        return version("ragops")
    except PackageNotFoundError:
        return "0.0.0"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._serving(r)
        self._ingestion(r)
        self.build = Info(f"{PREFIX}_build", "Build information.", registry=r)
        self.build.info({"version": package_version(), "python": platform.python_version()})

    def _serving(self, r: CollectorRegistry) -> None:
        """Requests, retrieval, generation and the cache."""
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests by route template, method, status and source (client, or probe: "
            "the operator's canary probes, marked by the X-Ragops-Probe header).",
            ["route", "method", "status", "source"],
            registry=r,
        )
        self.request_seconds = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request duration by route template, method, status and source.",
            ["route", "method", "status", "source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.retrieval_seconds = Histogram(
            f"{PREFIX}_retrieval_duration_seconds",
            "Retrieval duration by strategy (cache misses).",
            ["strategy"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.generation_seconds = Histogram(
            f"{PREFIX}_generation_duration_seconds",
            "Answer generation duration by provider.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.empty_searches = Counter(
            f"{PREFIX}_empty_searches",
            "Searches that returned no result, by strategy.",
            ["strategy"],
            registry=r,
        )
        self.cache_lookups = Counter(
            f"{PREFIX}_cache_lookups",
            "Lookups of the Redis cache by cache (results, embedding) and result (hit, miss).",
            ["cache", "result"],
            registry=r,
        )

    def _ingestion(self, r: CollectorRegistry) -> None:
        """The ingestion queue, documents, chunks and jobs."""
        self.queue_depth = Gauge(
            f"{PREFIX}_ingestion_queue_depth",
            "Ingestion jobs waiting in the queue.",
            registry=r,
        )
        self.documents = Gauge(
            f"{PREFIX}_documents", "Documents by ingestion status.", ["status"], registry=r
        )
        self.chunks = Gauge(f"{PREFIX}_chunks", "Stored chunks.", registry=r)
        self.ingested = Counter(
            f"{PREFIX}_ingestion_jobs",
            "Finished ingestion jobs by outcome (ready, failed, retried).",
            ["outcome"],
            registry=r,
        )
        self.ingestion_seconds = Histogram(
            f"{PREFIX}_ingestion_duration_seconds",
            "Time to chunk, embed and store one document.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
