"""The Helm chart rendered and linted by helm itself (no cluster needed).

Aspects covered: `helm lint` passes with the defaults and with every optional part on; the
defaults render no monitoring objects and the `helm test` Pod; the dashboard ConfigMap holds
exactly dashboards/ragops.json; the operator's PrometheusRule parses with promtool; the
ServiceMonitor selects the metrics Service and keeps the operator's labels; the test Pod
reads the metrics Service's name and port; every container has resources; the schema refuses
unknown values in the new sections.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.devtools import helm, run, system_tool
from hack.paths import REPO_ROOT

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "charts" / "ragops"
KUBE_VERSION = "--kube-version=1.37.0"
EVERYTHING = [
    "--set",
    "dashboards.enabled=true,alerts.enabled=true,metrics.serviceMonitor.enabled=true",
]


def template(*args: str) -> list[dict[str, Any]]:
    proc = run(helm(), ["template", "r", CHART, KUBE_VERSION, "-n", "ragops-system", *args])
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


@pytest.mark.parametrize("extra", [[], EVERYTHING], ids=["defaults", "everything"])
def test_chart_lints(extra: list[str]) -> None:
    proc = run(helm(), ["lint", CHART, KUBE_VERSION, *extra])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_defaults_render_no_monitoring_objects_and_a_helm_test() -> None:
    docs = template()
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert not [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboards")
    ]
    pods = by_kind(docs, "Pod")
    assert len(pods) == 1
    assert pods[0]["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_dashboard_configmap_holds_the_dashboard() -> None:
    (configmap,) = [
        d for d in by_kind(template(*EVERYTHING), "ConfigMap") if "ragops.json" in d.get("data", {})
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    on_disk = json.loads((CHART / "dashboards" / "ragops.json").read_text())
    assert json.loads(configmap["data"]["ragops.json"]) == on_disk


def test_operator_alerts_parse_with_promtool(tmp_path: Path) -> None:
    (rule,) = by_kind(template(*EVERYTHING), "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {
        "RagopsOperatorDown",
        "RagopsOperatorReconcileErrors",
        "RagSystemsDegraded",
    }
    path = tmp_path / "operator.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    proc = run(system_tool("promtool"), ["check", "rules", path])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            assert 'job="r-ragops-metrics"' in alert["expr"], alert["alert"]


def test_service_monitor_selects_the_metrics_service_and_keeps_operator_labels() -> None:
    docs = template(*EVERYTHING)
    (monitor,) = by_kind(docs, "ServiceMonitor")
    (service,) = [
        s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "r-ragops-metrics"
    ]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["honorLabels"] is True


def test_helm_test_reads_the_metrics_service() -> None:
    docs = template()
    (service,) = [
        s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "r-ragops-metrics"
    ]
    (pod,) = by_kind(docs, "Pod")
    script = pod["spec"]["containers"][0]["args"][0]
    port = service["spec"]["ports"][0]["port"]
    assert f"http://r-ragops-metrics.ragops-system.svc:{port}/metrics" in script
    assert "ragops_operator_reconciles_total" in script
    assert not by_kind(template("--set", "tests.enabled=false"), "Pod")


def test_every_container_has_resources() -> None:
    docs = template(*EVERYTHING)
    pods = [d["spec"]["template"]["spec"] for d in by_kind(docs, "Deployment")]
    pods += [d["spec"] for d in by_kind(docs, "Pod")]
    for spec in pods:
        for container in spec["containers"]:
            assert container["resources"]["requests"], container["name"]
            assert container["resources"]["limits"]["memory"], container["name"]


@pytest.mark.parametrize("bad", ["dashboards.bogus=1", "alerts.enabled=maybe", "tests.bogus=1"])
def test_schema_refuses_unknown_values(bad: str) -> None:
    proc = run(helm(), ["template", "r", CHART, KUBE_VERSION, "--set", bad])
    assert proc.returncode != 0
    assert "schema" in proc.stderr.lower() or "values" in proc.stderr.lower()
