"""The operator's own Prometheus metrics (prefix ragops_operator_)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "ragops_operator_reconciles_total",
    "Reconcile passes, by trigger (create, update, resume, timer, delete) and result.",
    ["trigger", "result"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "ragops_operator_reconcile_errors_total",
    "Reconcile passes that found a problem, by system and reason (ApiError, InvalidSpec, "
    "SecretNotFound, SecretKeyNotFound, GatewayAPINotInstalled, ...).",
    ["namespace", "ragsystem", "reason"],
    registry=REGISTRY,
)
BACKOFF = Gauge(
    "ragops_operator_reconcile_backoff_seconds",
    "Seconds a failing system waits before its next pass (0 when it is not backing off); "
    "each system backs off on its own.",
    ["namespace", "ragsystem"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "ragops_operator_reconcile_duration_seconds",
    "Wall time of one reconcile pass.",
    ["trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
APPLIES = Counter(
    "ragops_operator_applies_total",
    "Server-side applies of children, by kind.",
    ["kind"],
    registry=REGISTRY,
)
SYSTEMS = Gauge(
    "ragops_operator_ragsystems",
    "RagSystems the operator holds, by phase.",
    ["phase"],
    registry=REGISTRY,
)
WATCH_OBJECTS = Gauge(
    "ragops_operator_watch_cache_objects",
    "Objects held in the operator's watch caches (only its own, label-selected), by kind.",
    ["kind"],
    registry=REGISTRY,
)
WATCH_LISTS = Counter(
    "ragops_operator_watch_lists_total",
    "Full lists of a kind (at start, and again after the watch's version expired).",
    ["kind"],
    registry=REGISTRY,
)
WATCH_ERRORS = Counter(
    "ragops_operator_watch_errors_total",
    "List or watch requests that failed (retried with backoff), by kind.",
    ["kind"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "ragops_operator_leader",
    "1 while this replica holds the leader Lease and reconciles (0 while it stands by).",
    registry=REGISTRY,
)

BACKUP_LAST_SUCCESS = Gauge(
    "ragops_operator_backup_last_success_timestamp_seconds",
    "When the last good backup of a RagSystem completed (Unix time).",
    ["namespace", "ragsystem"],
    registry=REGISTRY,
)
BACKUP_LAST_FAILURE = Gauge(
    "ragops_operator_backup_last_failure_timestamp_seconds",
    "When the last backup of a RagSystem failed (Unix time).",
    ["namespace", "ragsystem"],
    registry=REGISTRY,
)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve /metrics on a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)


# The release of each RagSystem (labels namespace and ragsystem on all four).
ROLLOUT_WEIGHT = Gauge(
    "ragops_operator_rollout_canary_weight",
    "Percent of the traffic the canary receives.",
    ["namespace", "ragsystem"],
    registry=REGISTRY,
)
ROLLOUT_PHASE = Gauge(
    "ragops_operator_rollout_phase",
    "1 for the rollout's current phase (Progressing, Paused, Promoting, RolledBack, "
    "Succeeded), 0 for the others.",
    ["namespace", "ragsystem", "phase"],
    registry=REGISTRY,
)
ANALYSIS_RUNS = Counter(
    "ragops_operator_rollout_analysis_runs",
    "Analysis results by metric (error-rate, latency-p95, ndcg@10, user metrics; analysis "
    "for the whole run) and result (pass, fail, nodata, error).",
    ["namespace", "ragsystem", "metric", "result"],
    registry=REGISTRY,
)
ANALYSIS_VALUE = Gauge(
    "ragops_operator_rollout_analysis_value",
    "The value each analysis metric measured last.",
    ["namespace", "ragsystem", "metric"],
    registry=REGISTRY,
)
ROLLOUT_PHASES = ("Progressing", "Paused", "Promoting", "RolledBack", "Succeeded")


def record_rollout(
    namespace: str,
    name: str,
    phase: str | None,
    weight: int,
    runs: list[tuple[str, str, float | None]],
) -> None:
    """The gauges of one system's rollout, and the results of this pass's analysis run."""
    ROLLOUT_WEIGHT.labels(namespace, name).set(weight)
    for each in ROLLOUT_PHASES:
        ROLLOUT_PHASE.labels(namespace, name, each).set(1 if each == phase else 0)
    for metric, result, value in runs:
        ANALYSIS_RUNS.labels(namespace, name, metric, result).inc()
        if value is not None:
            ANALYSIS_VALUE.labels(namespace, name, metric).set(value)


def forget_rollout(namespace: str, name: str) -> None:
    with contextlib.suppress(KeyError):
        ROLLOUT_WEIGHT.remove(namespace, name)
    for each in ROLLOUT_PHASES:
        with contextlib.suppress(KeyError):
            ROLLOUT_PHASE.remove(namespace, name, each)
