"""The canary analysis against a real Prometheus scraping the runtime's own metrics.

Two metric endpoints stand for a canary pod and a stable pod: each serves a registry of
`rag_runtime.metrics.Metrics` (the runtime's real request counter and latency histogram),
and Prometheus scrapes them with the labels the ServiceMonitor gives (namespace, pod).

Aspects covered: a healthy canary passes with its measured values; a canary answering 5xx
fails on the error rate with the value named; a canary slower than stable fails on the p95
ratio; a canary without traffic has no data; probe requests (source=probe) count as data;
Prometheus unreachable is an error, never a pass.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.services._process import free_port
from hack.services.prometheus import PrometheusService, start_prometheus
from rag_operator.models import ObjectMeta, OperatorConfig, RagSystem, RagSystemSpec
from rag_operator.release import analysis
from rag_operator.release.prometheus import Prometheus
from rag_operator.release.state import Target, Verdict
from tests.integration.release.metric_pods import Pod, write_config

pytestmark = [pytest.mark.integration]

TARGET = Target("canary", "0.2.0", 1, 10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusService, Pod, Pod]]:
    prom = start_prometheus(Path(tmp_path_factory.mktemp("prom")))
    canary, stable = Pod("demo-canary-5d9f-x1"), Pod("demo-api-7c4b-y2")
    write_config(prom, [canary, stable])
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.2):
            canary.tick()
            stable.tick()

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        yield prom, canary, stable
    finally:
        stop.set()
        thread.join()
        canary.stop()
        stable.stop()
        prom.stop()


def system(prom_url: str, extra: dict[str, Any] | None = None) -> RagSystem:
    analysis_spec = {
        "window": "5s",
        "minRequests": 5,
        "prometheus": {"address": prom_url},
        **(extra or {}),
    }
    spec = {
        "version": "0.2.0",
        "rollout": {"strategy": "Canary", "canary": {"analysis": analysis_spec}},
    }
    return RagSystem(
        metadata=ObjectMeta(name="demo", namespace="ns"), spec=RagSystemSpec.model_validate(spec)
    )


def verdict(rs: RagSystem) -> Verdict:
    async def once() -> Verdict:
        prom = Prometheus()
        try:
            return await analysis.run(prom, rs, OperatorConfig(), TARGET)
        finally:
            await prom.close()

    return asyncio.run(once())


def wait_verdict(rs: RagSystem, result: str, fragment: str = "", timeout: float = 90) -> Verdict:
    """The first verdict with `result` (and `fragment` in its message), once the window of
    the queries has moved past the previous phase of the traffic."""
    deadline = time.monotonic() + timeout
    seen = verdict(rs)
    while not (seen.result == result and fragment in seen.message):
        assert time.monotonic() < deadline, seen
        time.sleep(0.5)
        seen = verdict(rs)
    return seen


def test_analysis_against_real_prometheus(world: tuple[PrometheusService, Pod, Pod]) -> None:
    prom, canary, stable = world
    rs = system(prom.url, {"latencyP95": {"maxRatioToStable": 2.0}})

    # No traffic on the canary: no data, never a pass.
    stable.per_tick = 5
    wait_verdict(rs, "nodata", "canary requests")

    # Healthy canary traffic: a pass, with the measured values.
    canary.per_tick = 5
    seen = wait_verdict(rs, "pass")
    values = {m.metric: m.value for m in seen.measurements}
    assert values["requests"] is not None
    assert values["requests"] >= 5
    assert values["error-rate"] == 0.0

    # Half the canary's requests fail: the error rate fails, named with its value.
    canary.error_share = 0.5
    seen = wait_verdict(rs, "fail", "error-rate")
    failing = next(m for m in seen.measurements if m.metric == "error-rate")
    assert failing.value is not None
    assert failing.value > 0.05

    # Healthy again but ten times slower than stable: the p95 ratio fails.
    canary.error_share = 0.0
    canary.latency_s = 0.4
    seen = wait_verdict(rs, "fail", "latency-p95-ratio")
    ratio = next(m for m in seen.measurements if m.metric == "latency-p95-ratio")
    assert ratio.value is not None
    assert ratio.value > 2.0

    # Probes alone are data.
    canary.latency_s = 0.02
    canary.source = "probe"
    wait_verdict(rs, "pass")


def test_unreachable_prometheus_is_an_error() -> None:
    seen = verdict(system(f"http://127.0.0.1:{free_port()}"))
    assert seen.result == "error"
    assert "unreachable" in seen.message
