"""The Grafana dashboard of ragops: one RagSystem's runtime, its releases and backups, and the
operator. This module is its single source; the JSON files are rendered from it.

    python -m hack.dashboards            print the dashboard JSON
    python -m hack.dashboards --write    rewrite charts/ragops/dashboards/ and examples/grafana/

Series of a system are selected by `namespace` and `ragsystem` (the RagSystem's name), as the
alerts in rag_operator/builders/prometheusrule.py select them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from hack.paths import REPO_ROOT

OUTPUTS = (
    REPO_ROOT / "charts" / "ragops" / "dashboards" / "ragops.json",
    REPO_ROOT / "examples" / "grafana" / "ragops.json",
)
UID = "ragops-overview"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SYSTEM = 'namespace="$namespace",ragsystem="$ragsystem"'
SERVED = 'route!~"/metrics|/api/v1/health|/api/v1/ready"'
API = f'{SYSTEM},component="api",{SERVED}'
RATE = "$__rate_interval"
# Values given to Grafana's variables when the queries are checked outside Grafana.
CONCRETE = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "namespace": "team-a",
    "ragsystem": "demo",
}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def quantiles(metric: str, selector: str, by: str = "") -> tuple[Query, ...]:
    group = f"le{', ' + by if by else ''}"
    legend = "{{" + by + "}} " if by else ""
    return tuple(
        q(
            f"histogram_quantile({p}, sum by ({group}) (rate({metric}{{{selector}}}[{RATE}])))",
            f"{legend}p{round(p * 100)}",
        )
        for p in (0.5, 0.95, 0.99)
    )


ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    (
        "Traffic and errors",
        (
            Panel(
                "Requests per second by route",
                "API requests served, without health probes and /metrics.",
                (
                    q(
                        f"sum by (route) (rate(rag_runtime_http_requests_total{{{API}}}[{RATE}]))",
                        "{{route}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Error ratio (5xx)",
                "Share of API requests answered with a 5xx status.",
                (
                    q(
                        # 0 rather than no data while no request failed.
                        f'(sum(rate(rag_runtime_http_requests_total{{{API},status=~"5.."}}[{RATE}]))'
                        " or vector(0))"
                        f" / sum(rate(rag_runtime_http_requests_total{{{API}}}[{RATE}]))",
                        "5xx",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "API pods up",
                "API pods that Prometheus scrapes successfully.",
                (q(f'sum(up{{{SYSTEM},component="api"}})', "up"),),
                kind="stat",
            ),
        ),
    ),
    (
        "Latency",
        (
            Panel(
                "API latency",
                "Percentiles of API request time (all served routes).",
                quantiles("rag_runtime_http_request_duration_seconds_bucket", API),
                unit="s",
            ),
            Panel(
                "API p95 by route",
                "95th percentile of request time per route template.",
                (
                    q(
                        "histogram_quantile(0.95, sum by (le, route) ("
                        f"rate(rag_runtime_http_request_duration_seconds_bucket{{{API}}}[{RATE}])))",
                        "{{route}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Generation latency by provider",
                "Time to generate an answer, per provider.",
                quantiles("rag_runtime_generation_duration_seconds_bucket", SYSTEM, "provider"),
                unit="s",
            ),
        ),
    ),
    (
        "Retrieval",
        (
            Panel(
                "Retrievals per second by strategy",
                "Searches that reached the stores (cache misses), per strategy.",
                (
                    q(
                        "sum by (strategy) (rate("
                        f"rag_runtime_retrieval_duration_seconds_count{{{SYSTEM}}}[{RATE}]))",
                        "{{strategy}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Retrieval p95 by strategy",
                "95th percentile of retrieval time per strategy (cache misses).",
                (
                    q(
                        "histogram_quantile(0.95, sum by (le, strategy) ("
                        f"rate(rag_runtime_retrieval_duration_seconds_bucket{{{SYSTEM}}}[{RATE}])))",
                        "{{strategy}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Empty results by strategy",
                "Share of retrievals that found nothing.",
                (
                    q(
                        f"sum by (strategy) (rate(rag_runtime_empty_searches_total{{{SYSTEM}}}"
                        f"[{RATE}])) / sum by (strategy) (rate("
                        f"rag_runtime_retrieval_duration_seconds_count{{{SYSTEM}}}[{RATE}]))",
                        "{{strategy}}",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "Cache hit rate",
                "Share of cache lookups that hit, per cache (search results, query embeddings).",
                (
                    q(
                        "sum by (cache) (rate(rag_runtime_cache_lookups_total{"
                        f'{SYSTEM},result="hit"}}[{RATE}])) / sum by (cache) (rate('
                        f"rag_runtime_cache_lookups_total{{{SYSTEM}}}[{RATE}]))",
                        "{{cache}}",
                    ),
                ),
                unit="percentunit",
                width=24,
            ),
        ),
    ),
    (
        "Ingestion",
        (
            Panel(
                "Ingestion backlog",
                "Ingestion jobs waiting in the queue.",
                (q(f"max(rag_runtime_ingestion_queue_depth{{{SYSTEM}}})", "queued jobs"),),
            ),
            Panel(
                "Ingestion throughput",
                "Finished ingestion jobs per second, by outcome.",
                (
                    q(
                        "sum by (outcome) (rate("
                        f"rag_runtime_ingestion_jobs_total{{{SYSTEM}}}[{RATE}]))",
                        "{{outcome}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Time to ingest a document",
                "Chunk, embed and store one document.",
                quantiles("rag_runtime_ingestion_duration_seconds_bucket", SYSTEM),
                unit="s",
            ),
            Panel(
                "Documents by status",
                "Stored documents per ingestion status, and stored chunks.",
                (
                    q(f"max by (status) (rag_runtime_documents{{{SYSTEM}}})", "{{status}}"),
                    q(f"max(rag_runtime_chunks{{{SYSTEM}}})", "chunks"),
                ),
                width=24,
            ),
        ),
    ),
    (
        "Releases and backups",
        (
            Panel(
                "Canary weight",
                "Share of traffic the canary receives (percent).",
                (q(f"max(ragops_operator_rollout_canary_weight{{{SYSTEM}}})", "canary"),),
                unit="percent",
            ),
            Panel(
                "Analysis results",
                "Release analysis runs per minute, by metric and result (pass, fail, nodata).",
                (
                    q(
                        "sum by (metric, result) (rate("
                        f"ragops_operator_rollout_analysis_runs_total{{{SYSTEM}}}[{RATE}])) * 60",
                        "{{metric}} {{result}}",
                    ),
                ),
                unit="short",
            ),
            Panel(
                "Last measured analysis values",
                "The value each analysis metric measured last.",
                (
                    q(
                        "max by (metric) (ragops_operator_rollout_analysis_value{" + SYSTEM + "})",
                        "{{metric}}",
                    ),
                ),
            ),
            Panel(
                "Rollout phase",
                "The release state machine's current phase.",
                (
                    q(
                        f"max by (phase) (ragops_operator_rollout_phase{{{SYSTEM}}}) == 1",
                        "{{phase}}",
                    ),
                ),
                kind="stat",
                extra={"options": {"textMode": "name", "colorMode": "background"}},
            ),
            Panel(
                "Runtime versions",
                "Pods per runtime version (stable and canary during a release).",
                (q(f"count by (version) (rag_runtime_build_info{{{SYSTEM}}})", "{{version}}"),),
            ),
            Panel(
                "Age of the last good backup",
                "Time since the last backup that succeeded.",
                (
                    q(
                        "time() - max(ragops_operator_backup_last_success_timestamp_seconds{"
                        + SYSTEM
                        + "})",
                        "age",
                    ),
                ),
                unit="s",
                kind="stat",
            ),
        ),
    ),
    (
        "Operator",
        (
            Panel(
                "Reconciles per second",
                "Reconcile passes of every RagSystem, by result.",
                (
                    q(
                        f"sum by (result) (rate(ragops_operator_reconciles_total[{RATE}]))",
                        "{{result}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Reconcile errors",
                "Failed reconcile passes per second, by reason.",
                (
                    q(
                        f"sum by (reason) (rate(ragops_operator_reconcile_errors_total[{RATE}]))",
                        "{{reason}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Reconcile time",
                "Percentiles of the wall time of one reconcile pass.",
                quantiles("ragops_operator_reconcile_duration_seconds_bucket", ""),
                unit="s",
            ),
            Panel(
                "RagSystems by phase",
                "Systems the operator holds, by phase.",
                (q("sum by (phase) (ragops_operator_ragsystems)", "{{phase}}"),),
                width=12,
            ),
            Panel(
                "Applies per second by kind",
                "Server-side applies of children (zero when nothing changed).",
                (q(f"sum by (kind) (rate(ragops_operator_applies_total[{RATE}]))", "{{kind}}"),),
                unit="ops",
                width=12,
            ),
        ),
    ),
)


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": name},
        "refresh": 2,
        "sort": 1,
        "current": {},
        "options": [],
        "hide": 0,
        "includeAll": False,
        "multi": False,
    }


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
            }
            for i, query in enumerate(panel.queries)
        ],
    }
    out.update(panel.extra)
    return out


def layout() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    y = 0
    for title, row in ROWS:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        for panel in row:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(panel_json(panel, len(panels) + 1, x, y))
            x += panel.width
        y += 8
    return panels


def build() -> dict[str, Any]:
    """The dashboard as Grafana imports it."""
    return {
        "uid": UID,
        "title": "ragops",
        "description": "One RagSystem: traffic, latency, retrieval, ingestion, releases and "
        "backups; and the ragops operator.",
        "tags": ["ragops", "rag"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                variable(
                    "namespace", "Namespace", "label_values(rag_runtime_build_info, namespace)"
                ),
                variable(
                    "ragsystem",
                    "RagSystem",
                    'label_values(rag_runtime_build_info{namespace="$namespace"}, ragsystem)',
                ),
            ]
        },
        "panels": layout(),
    }


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL) of every query of a dashboard."""
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def concrete(expr: str, values: dict[str, str] | None = None) -> str:
    """The query with Grafana's variables replaced by values (for checks outside Grafana);
    `values` overrides the defaults (e.g. another namespace and ragsystem)."""
    given = {**CONCRETE, **(values or {})}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in given:
            raise KeyError(f"unknown dashboard variable ${name} in {expr}")
        return given[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the ragops Grafana dashboard.")
    parser.add_argument("--write", action="store_true", help="rewrite the dashboard JSON files")
    args = parser.parse_args(argv)
    text = render()
    if not args.write:
        sys.stdout.write(text)
        return 0
    for path in OUTPUTS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
