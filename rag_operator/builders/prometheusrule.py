"""Prometheus Operator PrometheusRule: the alerts of one RagSystem.

Every series is selected by `namespace` and `ragsystem` (the RagSystem's name): the runtime's
targets get them from the scrape config (pod namespace, pod label app.kubernetes.io/instance)
and `component` from app.kubernetes.io/component; the operator's per-system series carry
them as metric labels (scraped with honorLabels).
"""

from __future__ import annotations

import re
from typing import Any

from rag_operator.builders.common import child_name, metadata
from rag_operator.models import OperatorConfig, RagSystem

PROBE_ROUTES = "/metrics|/api/v1/health|/api/v1/ready"
_UNITS = {
    "ms": "millisecond",
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "y": "year",
}


def human_duration(duration: str) -> str:
    """A Prometheus duration in words: 2m -> 2 minutes, 1h30m -> 1 hour 30 minutes."""
    parts = []
    for amount, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", duration):
        word = _UNITS[unit] + ("" if int(amount) == 1 else "s")
        parts.append(f"{int(amount)} {word}")
    return " ".join(parts) or duration


def _selector(rs: RagSystem, *matchers: str, **equal: str) -> str:
    """A series selector of the system's series, e.g. {namespace="a",ragsystem="b",...}."""
    pairs = {"namespace": rs.namespace, "ragsystem": rs.name, **equal}
    parts = [f'{key}="{value}"' for key, value in pairs.items()]
    return "{" + ",".join([*parts, *matchers]) + "}"


def _alert(
    name: str, expr: str, for_: str | None, severity: str, summary: str, desc: str
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ is not None:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": desc}
    return rule


def _api_alerts(rs: RagSystem) -> list[dict[str, Any]]:
    api = _selector(rs, component="api")
    served = f'route!~"{PROBE_ROUTES}"'
    requests = f"rag_runtime_http_requests_total{_selector(rs, served, component='api')}"
    errors = requests[:-1] + ',status=~"5.."}'
    buckets = (
        f"rag_runtime_http_request_duration_seconds_bucket{_selector(rs, served, component='api')}"
    )
    where = f"RagSystem {rs.namespace}/{rs.name}"
    cfg = rs.spec.monitoring.alerts
    out = []
    if rs.spec.api.replicas > 0 or rs.spec.api.autoscaling.enabled:
        out.append(
            _alert(
                "RagApiDown",
                f"sum(up{api}) == 0 or absent(up{api})",
                cfg.api_down_for,
                "critical",
                f"{where}: no API pod is up",
                "Prometheus has scraped no API pod of the system for "
                f"{human_duration(cfg.api_down_for)}.",
            )
        )
    ratio = cfg.error_rate_ratio
    out.append(
        _alert(
            "RagApiErrorRate",
            f"sum(rate({errors}[5m])) / sum(rate({requests}[5m])) > {ratio:g}",
            cfg.error_rate_for,
            "critical",
            f"{where}: {{{{ $value | humanizePercentage }}}} of API requests fail",
            f"More than {ratio * 100:.4g}% of API requests answered 5xx over 5 minutes.",
        )
    )
    p95 = cfg.latency_p95_seconds
    out.append(
        _alert(
            "RagApiLatencyHigh",
            f"histogram_quantile(0.95, sum by (le) (rate({buckets}[5m]))) > {p95:g}",
            cfg.latency_for,
            "warning",
            f"{where}: API p95 latency is {{{{ $value | humanizeDuration }}}}",
            f"The 95th percentile of API request time is above {p95:g} s.",
        )
    )
    return out


def _ingestion_alerts(rs: RagSystem) -> list[dict[str, Any]]:
    depth = f"max(rag_runtime_ingestion_queue_depth{_selector(rs)})"
    finished = f"sum(rate(rag_runtime_ingestion_jobs_total{_selector(rs)}[15m]))"
    where = f"RagSystem {rs.namespace}/{rs.name}"
    cfg = rs.spec.monitoring.alerts
    backlog = human_duration(cfg.ingestion_backlog_for)
    stalled = human_duration(cfg.ingestion_stalled_for)
    return [
        _alert(
            "RagIngestionBacklogGrowing",
            f"{depth} > {cfg.ingestion_backlog_jobs} and deriv({depth}[15m:1m]) > 0",
            cfg.ingestion_backlog_for,
            "warning",
            f"{where}: {{{{ $value }}}} ingestion jobs wait and the queue keeps growing",
            f"The ingestion queue has grown for {backlog}: add workers or check them.",
        ),
        _alert(
            "RagIngestionStalled",
            f"{depth} > 0 and {finished} == 0",
            cfg.ingestion_stalled_for,
            "critical",
            f"{where}: ingestion jobs wait but none finished in {stalled}",
            f"Documents are queued and no worker has finished a job for {stalled}.",
        ),
    ]


def _release_alerts(rs: RagSystem) -> list[dict[str, Any]]:
    sel = _selector(rs)
    success = f"ragops_operator_backup_last_success_timestamp_seconds{sel}"
    failure = f"ragops_operator_backup_last_failure_timestamp_seconds{sel}"
    rolled_back = _selector(rs, phase="RolledBack")
    where = f"RagSystem {rs.namespace}/{rs.name}"
    cfg = rs.spec.monitoring.alerts
    max_age_h = cfg.backup_max_age_hours
    return [
        _alert(
            "RagBackupFailed",
            f"{failure} > {success} or ({failure} unless {success})",
            None,
            "critical",
            f"{where}: the last backup failed",
            "The most recent backup attempt failed; see the RagBackup objects and Events.",
        ),
        _alert(
            "RagBackupTooOld",
            f"time() - max({success}) > {max_age_h * 3600}",
            None,
            "warning",
            f"{where}: the last good backup is {{{{ $value | humanizeDuration }}}} old",
            f"No backup succeeded for more than {max_age_h} hour{'' if max_age_h == 1 else 's'}.",
        ),
        _alert(
            "RagCanaryRolledBack",
            f"max(ragops_operator_rollout_phase{rolled_back}) == 1",
            None,
            "warning",
            f"{where}: the canary was rolled back",
            "The release analysis failed and the canary was rolled back; stable keeps "
            "serving. kubectl ragops status shows the failing metric.",
        ),
        _alert(
            "RagOperatorReconcileErrors",
            f"sum(rate(ragops_operator_reconcile_errors_total{sel}[10m])) > 0",
            cfg.reconcile_errors_for,
            "warning",
            f"{where}: the operator keeps failing to reconcile the system",
            "Reconcile passes of this system have failed for "
            f"{human_duration(cfg.reconcile_errors_for)}; see its Degraded condition and the "
            "operator's log.",
        ),
    ]


def rule_groups(rs: RagSystem) -> list[dict[str, Any]]:
    """The rule groups of the system, labelled so that alerts name it."""
    rules = [*_api_alerts(rs), *_ingestion_alerts(rs), *_release_alerts(rs)]
    for rule in rules:
        rule["labels"].update({"namespace": rs.namespace, "ragsystem": rs.name})
    return [{"name": f"ragops.{rs.namespace}.{rs.name}", "rules": rules}]


def build_prometheus_rule(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(rs, child_name(rs, "alerts"), "monitoring"),
        "spec": {"groups": rule_groups(rs)},
    }
