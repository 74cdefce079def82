"""PrometheusRule of a RagSystem: the alerts that watch it.

Aspects covered: the object is a child of the system (name, namespace, labels, owner);
it holds every alert the system needs, each with a severity, the system's namespace and name
as labels, a summary and a description; every series an expression reads is selected by
the system's namespace and name, so two systems never share an alert; health probes count
neither as traffic nor as latency; a system scaled to zero API pods has no API-down alert;
thresholds and durations come from spec.monitoring.alerts (defaults as documented; bad values
refused naming the field; the rule can be turned off alone).
(promtool parses and unit-tests the rules in tests/integration/ecosystem/test_promtool.py.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from rag_operator.builders.prometheusrule import build_prometheus_rule, rule_groups
from tests.unit.operator.helpers import CFG, make_rs

ALERTS = {
    "RagApiDown",
    "RagApiErrorRate",
    "RagApiLatencyHigh",
    "RagIngestionBacklogGrowing",
    "RagIngestionStalled",
    "RagBackupFailed",
    "RagBackupTooOld",
    "RagCanaryRolledBack",
    "RagOperatorReconcileErrors",
}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
KEYWORDS = {"and", "or", "unless"}


def alerts(rs_kwargs: dict[str, Any] | None = None, **spec: Any) -> dict[str, dict[str, Any]]:
    rs = make_rs(spec, **(rs_kwargs or {}))
    return {rule["alert"]: rule for group in rule_groups(rs) for rule in group["rules"]}


def series_selectors(expr: str) -> list[tuple[str, str]]:
    """(metric, {matchers}) of every series an expression reads."""
    text = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery windows
    text = re.sub(r"\b(by|without)\s*\([^)]*\)", "", text)  # grouping labels
    out = []
    for match in SELECTOR.finditer(text):
        name, matchers = match.groups()
        if name in KEYWORDS or text[match.end() :].startswith("("):
            continue  # an operator or a function call
        out.append((name, matchers or ""))
    return out


def test_rule_is_a_child_of_the_system() -> None:
    rs = make_rs(name="shop", namespace="team-b")
    rule = build_prometheus_rule(rs, CFG)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    meta = rule["metadata"]
    assert (meta["name"], meta["namespace"]) == ("shop-alerts", "team-b")
    assert meta["labels"]["app.kubernetes.io/instance"] == "shop"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "ragops-operator"
    assert meta["ownerReferences"][0]["name"] == "shop"
    assert rule["spec"]["groups"] == rule_groups(rs)


def test_every_alert_the_system_needs_is_there() -> None:
    assert set(alerts()) == ALERTS


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_names_its_system_and_severity(name: str) -> None:
    rule = alerts({"name": "shop", "namespace": "team-b"})[name]
    assert rule["labels"] == {
        "severity": rule["labels"]["severity"],
        "namespace": "team-b",
        "ragsystem": "shop",
    }
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert "team-b/shop" in rule["annotations"]["summary"]
    assert rule["annotations"]["description"]


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_series_is_selected_by_the_systems_namespace_and_name(name: str) -> None:
    expr = alerts({"name": "shop", "namespace": "team-b"})[name]["expr"]
    selectors = series_selectors(expr)
    assert selectors, expr
    for metric, matchers in selectors:
        assert 'namespace="team-b"' in matchers, (metric, expr)
        assert 'ragsystem="shop"' in matchers, (metric, expr)


@pytest.mark.parametrize("name", ["RagApiErrorRate", "RagApiLatencyHigh"])
def test_probes_are_neither_traffic_nor_latency(name: str) -> None:
    expr = alerts()[name]["expr"]
    for _, matchers in series_selectors(expr):
        assert 'route!~"/metrics|/api/v1/health|/api/v1/ready"' in matchers


@pytest.mark.parametrize(
    ("api", "has_down_alert"),
    [
        ({"replicas": 0}, False),
        ({"replicas": 0, "autoscaling": {"enabled": True}}, True),
        ({"replicas": 2}, True),
    ],
)
def test_api_down_alert_only_when_api_pods_should_run(
    api: dict[str, Any], has_down_alert: bool
) -> None:
    assert ("RagApiDown" in alerts(api=api)) is has_down_alert


def test_durations_are_prometheus_durations() -> None:
    for rule in alerts().values():
        if "for" in rule:
            assert re.fullmatch(r"([0-9]+(ms|s|m|h|d|w|y))+", rule["for"]), rule


TUNED = {
    "apiDownFor": "30s",
    "errorRateRatio": 0.2,
    "errorRateFor": "1m",
    "latencyP95Seconds": 0.5,
    "latencyFor": "3m",
    "ingestionBacklogJobs": 5000,
    "ingestionBacklogFor": "1h",
    "ingestionStalledFor": "45m",
    "backupMaxAgeHours": 1,
    "reconcileErrorsFor": "20m",
}


def test_alert_parameters_come_from_the_spec() -> None:
    rules = alerts(monitoring={"alerts": TUNED})
    assert rules["RagApiDown"]["for"] == "30s"
    assert "for 30 seconds" in rules["RagApiDown"]["annotations"]["description"]
    assert rules["RagApiErrorRate"]["expr"].endswith("> 0.2")
    assert rules["RagApiErrorRate"]["for"] == "1m"
    assert "More than 20% " in rules["RagApiErrorRate"]["annotations"]["description"]
    assert rules["RagApiLatencyHigh"]["expr"].endswith("> 0.5")
    assert rules["RagApiLatencyHigh"]["for"] == "3m"
    assert "above 0.5 s" in rules["RagApiLatencyHigh"]["annotations"]["description"]
    assert "> 5000 and" in rules["RagIngestionBacklogGrowing"]["expr"]
    assert rules["RagIngestionBacklogGrowing"]["for"] == "1h"
    assert "grown for 1 hour:" in rules["RagIngestionBacklogGrowing"]["annotations"]["description"]
    assert rules["RagIngestionStalled"]["for"] == "45m"
    assert "45 minutes" in rules["RagIngestionStalled"]["annotations"]["summary"]
    assert rules["RagBackupTooOld"]["expr"].endswith("> 3600")
    assert "more than 1 hour." in rules["RagBackupTooOld"]["annotations"]["description"]
    assert rules["RagOperatorReconcileErrors"]["for"] == "20m"


def test_default_parameters_are_the_documented_ones() -> None:
    rules = alerts()
    assert [rules[a].get("for") for a in sorted(ALERTS)] == [
        "2m",  # RagApiDown
        "5m",  # RagApiErrorRate
        "10m",  # RagApiLatencyHigh
        None,  # RagBackupFailed
        None,  # RagBackupTooOld
        None,  # RagCanaryRolledBack
        "15m",  # RagIngestionBacklogGrowing
        "15m",  # RagIngestionStalled
        "10m",  # RagOperatorReconcileErrors
    ]
    assert rules["RagBackupTooOld"]["expr"].endswith(f"> {26 * 3600}")


def test_alerts_can_be_turned_off_alone() -> None:
    from tests.unit.operator.helpers import ALL_CRDS, children

    kinds = {
        c["kind"]
        for c in children(make_rs({"monitoring": {"alerts": {"enabled": False}}}), ALL_CRDS)
    }
    assert "PrometheusRule" not in kinds
    assert "ServiceMonitor" in kinds


@pytest.mark.parametrize(
    ("alerts_spec", "field"),
    [
        ({"apiDownFor": "2 minutes"}, "apiDownFor"),
        ({"errorRateFor": "5"}, "errorRateFor"),
        ({"errorRateRatio": 0}, "errorRateRatio"),
        ({"errorRateRatio": 1.5}, "errorRateRatio"),
        ({"latencyP95Seconds": -1}, "latencyP95Seconds"),
        ({"ingestionBacklogJobs": -1}, "ingestionBacklogJobs"),
        ({"backupMaxAgeHours": 0}, "backupMaxAgeHours"),
    ],
)
def test_bad_alert_parameters_are_refused_naming_the_field(
    alerts_spec: dict[str, Any], field: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        make_rs({"monitoring": {"alerts": alerts_spec}})
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        ("2m", "2 minutes"),
        ("1m", "1 minute"),
        ("90s", "90 seconds"),
        ("1h30m", "1 hour 30 minutes"),
    ],
)
def test_durations_read_as_words(duration: str, words: str) -> None:
    from rag_operator.builders.prometheusrule import human_duration

    assert human_duration(duration) == words
