"""PodDisruptionBudget of the API."""

from __future__ import annotations

import pytest

from rag_operator.builders.pdb import build_api_pdb
from tests.unit.operator.helpers import CFG, make_rs


@pytest.mark.parametrize("unavailable", [1, 2, 4])
def test_pdb_limits_disruptions_of_api_pods(unavailable: int) -> None:
    rs = make_rs({"api": {"podDisruptionBudget": {"maxUnavailable": unavailable}}})
    pdb = build_api_pdb(rs, CFG)
    assert pdb["spec"]["maxUnavailable"] == unavailable
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
