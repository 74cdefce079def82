"""Requests are counted by source: the operator's canary probes (header X-Ragops-Probe) apart
from clients' requests, so that probe traffic can be told apart in the request metrics."""

from __future__ import annotations

from rag_runtime.app import request_source
from rag_runtime.metrics import Metrics


def test_probe_header_marks_a_probe() -> None:
    assert request_source({"headers": [(b"x-ragops-probe", b"1")]}) == "probe"
    assert request_source({"headers": [(b"X-Ragops-Probe", b"quality")]}) == "probe"
    assert request_source({"headers": [(b"accept", b"*/*")]}) == "client"
    assert request_source({}) == "client"


def test_request_metrics_carry_the_source_label() -> None:
    metrics = Metrics()
    metrics.requests.labels("/api/v1/query", "POST", "200", "probe").inc()
    sample = metrics.registry.get_sample_value(
        "rag_runtime_http_requests_total",
        {"route": "/api/v1/query", "method": "POST", "status": "200", "source": "probe"},
    )
    assert sample == 1.0
