"""Gateway API HTTPRoute of the API."""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.builders.httproute import build_api_httproute
from tests.unit.operator.helpers import CFG, make_rs


@pytest.mark.parametrize(
    "refs",
    [
        [{"name": "gw"}],
        [{"name": "gw", "namespace": "infra", "sectionName": "https"}],
        [{"name": "a"}, {"name": "b"}],
    ],
)
def test_route_attaches_to_parents_and_targets_api(refs: list[dict[str, Any]]) -> None:
    rs = make_rs(
        {"api": {"exposure": {"httpRoute": {"parentRefs": refs, "hostnames": ["rag.example.com"]}}}}
    )
    route = build_api_httproute(rs, CFG)
    assert route["spec"]["parentRefs"] == refs
    assert route["spec"]["hostnames"] == ["rag.example.com"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "demo-api", "port": 8000}]
