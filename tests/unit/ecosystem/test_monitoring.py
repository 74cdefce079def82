"""The Grafana dashboard and the alerts against the metrics the programs really export.

Aspects covered:
- the chart's and the example's dashboard JSON are exactly what hack.dashboards renders;
- every panel has a unique id, a title, a description, the data source variable and a place
  on the 24-column grid that no other panel takes;
- every metric the dashboard and the alerts read is exported by the runtime
  (rag_runtime.metrics) or the operator (rag_operator.metrics) under that exact name, with
  the labels the queries use, or is listed below as not emitted yet; and every listed metric
  really is not emitted yet (so the list shrinks as the features land).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hack import dashboards
from rag_operator import metrics as operator_metrics
from rag_operator.builders.prometheusrule import rule_groups
from rag_runtime.metrics import Metrics
from tests.unit.operator.helpers import make_rs

# Labels that a series gets from its scrape target, not from the program:
# the pod's namespace, the RagSystem (pod label app.kubernetes.io/instance), the component.
TARGET_LABELS = {"namespace", "ragsystem", "component", "pod", "job", "instance"}
# Metrics the dashboard and alerts use that no program emits yet, with the labels they need.
PENDING: dict[str, set[str]] = {}
# Existing metrics whose per-system labels the alerts need but the program does not set yet.
PENDING_LABELS: dict[str, set[str]] = {}
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
    "info": ("_info",),
}
SELECTOR = re.compile(r"\b((?:rag_runtime|ragops_operator)_[a-z0-9_]+)(\{[^}]*\})?")
LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def exported(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Sample name -> label names, for every metric family of a registry."""
    out: dict[str, set[str]] = {}
    collectors: Any = registry._collector_to_names  # prometheus_client keeps them here
    for collector in collectors:
        for family in collector.collect():
            names = set(getattr(collector, "_labelnames", ()))
            names |= {label for sample in family.samples for label in sample.labels}
            for suffix in SUFFIXES[family.type]:
                out[family.name + suffix] = (names - {"le"}) | (
                    {"le"} if suffix == "_bucket" else set()
                )
    return out


EXPORTED = {**exported(Metrics().registry), **exported(operator_metrics.REGISTRY)}


def all_queries() -> list[str]:
    alerts = [rule["expr"] for group in rule_groups(make_rs()) for rule in group["rules"]]
    return [expr for _, _, expr in dashboards.queries(dashboards.build())] + alerts


def used() -> dict[str, set[str]]:
    """Metric -> label names the queries select or group it by."""
    out: dict[str, set[str]] = {}
    for expr in all_queries():
        grouping = {label.strip() for g in GROUPING.findall(expr) for label in g.split(",")}
        for name, matchers in SELECTOR.findall(expr):
            labels = set(LABEL.findall(matchers)) | grouping
            out.setdefault(name, set()).update(labels)
    return out


def test_dashboard_files_are_rendered_from_hack_dashboards() -> None:
    for path in dashboards.OUTPUTS:
        assert path.read_text() == dashboards.render(), f"{path}: run make examples"


def test_panels_have_ids_titles_descriptions_and_the_datasource_variable() -> None:
    panels = dashboards.build()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["title"]
        if panel["type"] != "row":
            assert panel["description"], panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]


def test_panels_do_not_overlap_on_the_grid() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboards.build()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


@pytest.mark.parametrize(
    "topic",
    [
        "Requests per second",
        "Error ratio",
        "API latency",
        "Ingestion backlog",
        "Ingestion throughput",
        "by strategy",
        "Cache hit rate",
        "Canary weight",
        "Analysis results",
        "Age of the last good backup",
        "Reconcile errors",
    ],
)
def test_dashboard_covers(topic: str) -> None:
    assert any(topic in p["title"] for p in dashboards.build()["panels"])


def test_every_metric_used_is_exported_with_its_labels_or_pending() -> None:
    problems = []
    for name, labels in sorted(used().items()):
        if name in PENDING:
            missing = labels - PENDING[name] - TARGET_LABELS
        elif name in EXPORTED:
            allowed = EXPORTED[name] | PENDING_LABELS.get(name, set())
            if name.startswith("rag_runtime_"):
                allowed |= TARGET_LABELS
            missing = labels - allowed
        else:
            problems.append(f"{name}: exported by neither the runtime nor the operator")
            continue
        if missing:
            problems.append(f"{name}: labels {sorted(missing)} are not the metric's")
    assert not problems, "\n".join(problems)


def test_pending_metrics_are_not_emitted_yet() -> None:
    emitted = sorted(set(PENDING) & set(EXPORTED))
    assert not emitted, f"now exported, remove from PENDING: {emitted}"
    labelled = {n for n, labels in PENDING_LABELS.items() if labels <= EXPORTED.get(n, set())}
    assert not labelled, f"now labelled, remove from PENDING_LABELS: {sorted(labelled)}"
    assert set(PENDING) <= set(used())


def test_dashboard_json_is_valid_json_with_a_stable_uid() -> None:
    for path in dashboards.OUTPUTS:
        assert json.loads(path.read_text())["uid"] == "ragops-overview"
