"""The analysis: PromQL queries of the canary (and of stable, to compare), judged into a
Verdict.

`queries` and `judge` are pure; `Analyser.run` asks Prometheus. The runtime's metrics
(`rag_runtime/metrics.py`): `rag_runtime_http_requests_total{route,method,status,source}`
and `rag_runtime_http_request_duration_seconds_bucket{...,le}`, with the Prometheus labels
`namespace` and `pod` from the ServiceMonitor. The canary's pods are named
`<system>-canary-*`, stable's `<system>-api-*`; health, readiness and metrics requests are
not counted. During the bake the "canary" is the stable pods, which now run the new
version, and nothing is compared with stable.

A run passes only when every check has data and holds: fewer than `minRequests` canary
requests in the window (probes included), or a check without a value, is no data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.status import Measurement
from rag_operator.release.prometheus import Prometheus, PrometheusUnreachableError
from rag_operator.release.state import Target, Verdict

REQUESTS = "rag_runtime_http_requests_total"
DURATION_BUCKETS = "rag_runtime_http_request_duration_seconds_bucket"
NOT_COUNTED = "/api/v1/health|/api/v1/ready|/metrics|unmatched"


@dataclass(frozen=True)
class Query:
    metric: str
    promql: str


def canary_pods(rs: RagSystem) -> str:
    return f"{rs.name}-canary-.*"


def stable_pods(rs: RagSystem) -> str:
    return f"{rs.name}-api-.*"


def _selector(rs: RagSystem, pods: str, extra: str = "") -> str:
    return f'namespace="{rs.namespace}",pod=~"{pods}",route!~"{NOT_COUNTED}"{extra}'


def requests_query(rs: RagSystem, pods: str, window: str) -> str:
    return f"sum(increase({REQUESTS}{{{_selector(rs, pods)}}}[{window}]))"


def error_rate_query(rs: RagSystem, pods: str, window: str) -> str:
    selector = _selector(rs, pods, ',status=~"5.."')
    errors = f"sum(increase({REQUESTS}{{{selector}}}[{window}]))"
    return f"({errors} or vector(0)) / {requests_query(rs, pods, window)}"


def p95_query(rs: RagSystem, pods: str, window: str) -> str:
    return (
        f"histogram_quantile(0.95, sum by (le) "
        f"(rate({DURATION_BUCKETS}{{{_selector(rs, pods)}}}[{window}])))"
    )


def user_query(rs: RagSystem, text: str, window: str) -> str:
    return (
        text.replace("$namespace", rs.namespace)
        .replace("$canary_pods", canary_pods(rs))
        .replace("$stable_pods", stable_pods(rs))
        .replace("$window", window)
    )


def queries(rs: RagSystem, target: Target) -> list[Query]:
    """Every query one run needs."""
    analysis = rs.spec.rollout.canary.analysis
    window = analysis.window
    bake = target.mode == "bake"
    pods = stable_pods(rs) if bake else canary_pods(rs)
    out = [
        Query("requests", requests_query(rs, pods, window)),
        Query("error-rate", error_rate_query(rs, pods, window)),
    ]
    if not bake and analysis.error_rate.max_above_stable is not None:
        out.append(Query("stable-error-rate", error_rate_query(rs, stable_pods(rs), window)))
    latency = analysis.latency_p95
    if latency.max_seconds is not None or (not bake and latency.max_ratio_to_stable is not None):
        out.append(Query("latency-p95", p95_query(rs, pods, window)))
    if not bake and latency.max_ratio_to_stable is not None:
        out.append(Query("stable-latency-p95", p95_query(rs, stable_pods(rs), window)))
    for metric in analysis.metrics:
        out.append(Query(metric.name, user_query(rs, metric.query, window)))
    return out


def _num(value: float) -> str:
    return f"{value:.4g}"


class _Judge:
    def __init__(self) -> None:
        self.measurements: list[Measurement] = []
        self.failed: list[str] = []
        self.missing: list[str] = []

    def check(
        self,
        metric: str,
        value: float | None,
        low: float | None,
        high: float | None,
        what: str = "",
    ) -> None:
        name = what or metric
        limit = " and ".join(
            t
            for t in (
                (f">= {_num(low)}" if low is not None else ""),
                (f"<= {_num(high)}" if high is not None else ""),
            )
            if t
        )
        if value is None:
            self.missing.append(f"{name}: no data")
            self.measurements.append(Measurement(metric=metric, result="nodata", limit=limit))
            return
        bad = (low is not None and value < low) or (high is not None and value > high)
        if bad:
            bound = f"< {_num(low)}" if low is not None and value < low else f"> {_num(high or 0)}"
            self.failed.append(f"{name} {_num(value)} {bound}")
        self.measurements.append(
            Measurement(metric=metric, result="fail" if bad else "pass", value=value, limit=limit)
        )

    def verdict(self) -> Verdict:
        ms = tuple(self.measurements)
        if self.failed:
            return Verdict("fail", "; ".join(self.failed), ms)
        if self.missing:
            return Verdict("nodata", "; ".join(self.missing), ms)
        passed = ", ".join(
            f"{m.metric} {_num(m.value)}" for m in self.measurements if m.value is not None
        )
        return Verdict("pass", passed, ms)


def judge(
    rs: RagSystem,
    target: Target,
    values: Mapping[str, float | None],
    extra: Sequence[Measurement] = (),
) -> Verdict:
    """The verdict of one run from the queries' values (and the quality gate's measurement)."""
    analysis = rs.spec.rollout.canary.analysis
    j = _Judge()
    requests = values.get("requests")
    if requests is None or requests < analysis.min_requests:
        seen = "none" if requests is None else _num(requests)
        msg = f"{seen} canary requests in {analysis.window} < {analysis.min_requests}"
        j.measurements.append(
            Measurement(
                metric="requests",
                result="nodata",
                value=requests,
                limit=f">= {analysis.min_requests}",
            )
        )
        return Verdict("nodata", msg, tuple(j.measurements))
    j.measurements.append(
        Measurement(
            metric="requests", result="pass", value=requests, limit=f">= {analysis.min_requests}"
        )
    )
    bake = target.mode == "bake"
    rate, errs = values.get("error-rate"), analysis.error_rate
    if errs.max is not None:
        j.check("error-rate", rate, None, errs.max)
    if not bake and errs.max_above_stable is not None:
        stable = values.get("stable-error-rate")
        diff = None if rate is None or stable is None else rate - stable
        j.check("error-rate-above-stable", diff, None, errs.max_above_stable)
    p95, latency = values.get("latency-p95"), analysis.latency_p95
    if latency.max_seconds is not None:
        j.check("latency-p95", p95, None, latency.max_seconds)
    if not bake and latency.max_ratio_to_stable is not None:
        stable_p95 = values.get("stable-latency-p95")
        ratio = None if p95 is None or not stable_p95 else p95 / stable_p95
        j.check("latency-p95-ratio", ratio, None, latency.max_ratio_to_stable)
    for metric in analysis.metrics:
        j.check(metric.name, values.get(metric.name), metric.min, metric.max)
    for m in extra:
        j.measurements.append(m)
        if m.result == "fail":
            needs = f" (needs {m.limit})" if m.limit else ""
            j.failed.append(f"{m.metric} {_num(m.value or 0)}{needs}")
        elif m.result == "nodata":
            j.missing.append(
                f"{m.metric}: no data ({m.limit})" if m.limit else f"{m.metric}: no data"
            )
    return j.verdict()


def address_of(rs: RagSystem, cfg: OperatorConfig) -> str:
    spec = rs.spec.rollout.canary.analysis.prometheus
    return spec.address if spec is not None else cfg.prometheus_url


async def measure(
    prom: Prometheus, address: str, wanted: Sequence[Query]
) -> dict[str, float | None]:
    """Every query's value, asked at once; PrometheusUnreachableError when any cannot be asked."""
    values = await asyncio.gather(*(prom.value(address, q.promql) for q in wanted))
    return {q.metric: v for q, v in zip(wanted, values, strict=True)}


async def run(
    prom: Prometheus,
    rs: RagSystem,
    cfg: OperatorConfig,
    target: Target,
    extra: Sequence[Measurement] = (),
) -> Verdict:
    """One analysis run against Prometheus."""
    address = address_of(rs, cfg)
    if not address:
        return Verdict(
            "error",
            "no Prometheus to ask: set spec.rollout.canary.analysis.prometheus.address "
            "or the operator's RAGOPS_PROMETHEUS_URL",
        )
    try:
        values = await measure(prom, address, queries(rs, target))
    except PrometheusUnreachableError as exc:
        return Verdict("error", str(exc))
    return judge(rs, target, values, extra)
