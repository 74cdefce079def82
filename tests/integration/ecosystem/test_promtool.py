"""Alerts and dashboard queries checked by promtool (Debian's prometheus package).

Aspects covered:
- the PrometheusRule the operator builds parses (`promtool check rules`) for systems of
  several shapes;
- the alert unit tests in tests/promtool/alerts_test.yaml pass against the rules rendered for
  RagSystem team-a/demo, every alert fires in at least one of them, and a wrong expectation
  makes promtool fail;
- the same for a system with its alert thresholds and durations set in spec.monitoring.alerts
  (tests/promtool/alerts_tuned_test.yaml), whose inputs stay quiet with the default values;
- every PromQL expression of the Grafana dashboard parses (as recording rules, with Grafana's
  variables given concrete values).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack import dashboards
from hack.devtools import run, system_tool
from hack.paths import REPO_ROOT
from rag_operator.builders.prometheusrule import rule_groups
from tests.unit.operator.helpers import make_rs

pytestmark = pytest.mark.integration

ALERT_TESTS = REPO_ROOT / "tests" / "promtool" / "alerts_test.yaml"
TUNED_TESTS = REPO_ROOT / "tests" / "promtool" / "alerts_tuned_test.yaml"
TUNED_ALERTS = {
    "apiDownFor": "30s",
    "errorRateRatio": 0.2,
    "errorRateFor": "1m",
    "latencyP95Seconds": 0.5,
    "latencyFor": "3m",
}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return system_tool("promtool")


def write_rules(path: Path, groups: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "spec",
    [{}, {"api": {"replicas": 0}}, {"api": {"autoscaling": {"enabled": True}}}],
    ids=["default", "no-api-pods", "autoscaled"],
)
def test_rules_of_a_system_parse(promtool: Path, tmp_path: Path, spec: dict[str, Any]) -> None:
    rules = write_rules(tmp_path / "rules.yaml", rule_groups(make_rs(spec)))
    proc = run(promtool, ["check", "rules", rules])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def alert_test_dir(tmp_path: Path, tests: str | None = None) -> Path:
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    if tests is not None:
        (tmp_path / ALERT_TESTS.name).write_text(tests)
    write_rules(tmp_path / "ragsystem_rules.yaml", rule_groups(make_rs()))
    return tmp_path / ALERT_TESTS.name


def test_alert_unit_tests_pass(promtool: Path, tmp_path: Path) -> None:
    proc = run(promtool, ["test", "rules", alert_test_dir(tmp_path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_fires_in_a_unit_test() -> None:
    fired = {
        case["alertname"]
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    built = {rule["alert"] for group in rule_groups(make_rs()) for rule in group["rules"]}
    assert built <= fired, f"alerts without a firing test: {sorted(built - fired)}"


def test_a_wrong_expectation_fails_the_unit_tests(promtool: Path, tmp_path: Path) -> None:
    edited = ALERT_TESTS.read_text().replace("latency is 4.875s", "latency is 1s")
    assert edited != ALERT_TESTS.read_text()
    proc = run(promtool, ["test", "rules", alert_test_dir(tmp_path, edited)])
    assert proc.returncode != 0
    assert "RagApiLatencyHigh" in proc.stdout + proc.stderr


def tuned_test_dir(tmp_path: Path, alerts: dict[str, Any]) -> Path:
    shutil.copy(TUNED_TESTS, tmp_path / TUNED_TESTS.name)
    rs = make_rs({"monitoring": {"alerts": alerts}})
    write_rules(tmp_path / "ragsystem_tuned_rules.yaml", rule_groups(rs))
    return tmp_path / TUNED_TESTS.name


def test_tuned_alert_parameters_pass_their_unit_tests(promtool: Path, tmp_path: Path) -> None:
    proc = run(promtool, ["test", "rules", tuned_test_dir(tmp_path, TUNED_ALERTS)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_the_tuned_inputs_do_not_fire_with_the_defaults(promtool: Path, tmp_path: Path) -> None:
    """The tuned tests depend on the parameters: with the defaults every one of them fails."""
    proc = run(promtool, ["test", "rules", tuned_test_dir(tmp_path, {})])
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    for alert in ("RagApiDown", "RagApiErrorRate", "RagApiLatencyHigh"):
        assert f"alertname: {alert}" in out, out


def record_name(panel: str, ref: str) -> str:
    return "dashboard:" + re.sub(r"[^a-zA-Z0-9_]+", "_", panel).strip("_").lower() + ":" + ref


def test_every_dashboard_query_parses(promtool: Path, tmp_path: Path) -> None:
    queries = dashboards.queries(dashboards.build())
    assert len(queries) >= 20
    rules = [
        {"record": record_name(title, ref), "expr": dashboards.concrete(expr)}
        for title, ref, expr in queries
    ]
    path = write_rules(tmp_path / "dashboard.yaml", [{"name": "dashboard", "rules": rules}])
    proc = run(promtool, ["check", "rules", path])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_a_broken_query_is_caught(promtool: Path, tmp_path: Path) -> None:
    rules = [{"record": "dashboard:broken", "expr": "sum(rate(x[5m])"}]
    path = write_rules(tmp_path / "broken.yaml", [{"name": "dashboard", "rules": rules}])
    proc = run(promtool, ["check", "rules", path])
    assert proc.returncode != 0
