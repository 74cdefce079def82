"""ServiceMonitor of the API, and when the operator creates one."""

from __future__ import annotations

import pytest

from rag_operator.builders.servicemonitor import build_service_monitor
from rag_operator.children import Capabilities
from tests.unit.operator.helpers import ALL_CRDS, CFG, NO_CRDS, children, make_rs


@pytest.mark.parametrize("interval", ["15s", "1m"])
def test_service_monitor_scrapes_api_metrics(interval: str) -> None:
    sm = build_service_monitor(make_rs({"monitoring": {"scrapeInterval": interval}}), CFG)
    endpoint = sm["spec"]["endpoints"][0]
    assert endpoint == {"port": "http", "path": "/metrics", "interval": interval}
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"


@pytest.mark.parametrize(
    ("caps", "enabled", "expected"),
    [(NO_CRDS, True, False), (ALL_CRDS, True, True), (ALL_CRDS, False, False)],
)
def test_service_monitor_only_when_crd_exists_and_enabled(
    caps: Capabilities, enabled: bool, expected: bool
) -> None:
    rs = make_rs({"monitoring": {"enabled": enabled}})
    kinds = {c["kind"] for c in children(rs, caps)}
    assert ("ServiceMonitor" in kinds) is expected
