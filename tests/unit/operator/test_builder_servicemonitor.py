"""ServiceMonitor of the API, and when the operator creates one."""

from __future__ import annotations

import pytest

from rag_operator.builders import desired_children
from rag_operator.builders.servicemonitor import build_service_monitor
from tests.unit.operator.helpers import CFG, CFG_ALL, make_rs


@pytest.mark.parametrize("interval", ["15s", "1m"])
def test_service_monitor_scrapes_api_metrics(interval: str) -> None:
    sm = build_service_monitor(make_rs({"monitoring": {"scrapeInterval": interval}}), CFG_ALL)
    endpoint = sm["spec"]["endpoints"][0]
    assert endpoint == {"port": "http", "path": "/metrics", "interval": interval}
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"


@pytest.mark.parametrize(
    ("cfg", "enabled", "expected"),
    [(CFG, True, False), (CFG_ALL, True, True), (CFG_ALL, False, False)],
)
def test_service_monitor_only_when_crd_exists_and_enabled(
    cfg: object, enabled: bool, expected: bool
) -> None:
    rs = make_rs({"monitoring": {"enabled": enabled}})
    kinds = {c["kind"] for c in desired_children(rs, cfg)}  # type: ignore[arg-type]
    assert ("ServiceMonitor" in kinds) is expected
