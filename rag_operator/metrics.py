"""The operator's own Prometheus metrics (prefix ragops_operator_)."""

from __future__ import annotations

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
