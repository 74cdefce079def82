"""PodDisruptionBudgets of the API and the worker.

Aspects covered: maxUnavailable and the selector of each component; the worker's budget exists
only while it has replicas and can be turned off, independently of the API's.
"""

from __future__ import annotations

import pytest

from rag_operator.builders.pdb import build_api_pdb, build_worker_pdb
from tests.unit.operator.helpers import CFG, children, make_rs


@pytest.mark.parametrize("unavailable", [1, 2, 4])
def test_pdb_limits_disruptions_of_api_pods(unavailable: int) -> None:
    rs = make_rs({"api": {"podDisruptionBudget": {"maxUnavailable": unavailable}}})
    pdb = build_api_pdb(rs, CFG)
    assert pdb["spec"]["maxUnavailable"] == unavailable
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"


@pytest.mark.parametrize("unavailable", [1, 3])
def test_pdb_limits_disruptions_of_worker_pods(unavailable: int) -> None:
    rs = make_rs(
        {"worker": {"replicas": 4, "podDisruptionBudget": {"maxUnavailable": unavailable}}}
    )
    pdb = build_worker_pdb(rs, CFG)
    assert pdb["metadata"]["name"] == "demo-worker"
    assert pdb["spec"]["maxUnavailable"] == unavailable
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"


def _pdbs(spec: dict[str, object]) -> set[str]:
    return {
        c["metadata"]["name"] for c in children(make_rs(spec)) if c["kind"] == "PodDisruptionBudget"
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {"demo-api", "demo-worker"}),
        ({"worker": {"replicas": 0}}, {"demo-api"}),
        ({"worker": {"podDisruptionBudget": {"enabled": False}}}, {"demo-api"}),
        ({"api": {"podDisruptionBudget": {"enabled": False}}}, {"demo-worker"}),
        ({"redis": {"enabled": False}, "worker": {"replicas": 0}}, {"demo-api"}),
    ],
)
def test_worker_pdb_while_it_has_replicas(spec: dict[str, object], expected: set[str]) -> None:
    assert _pdbs(spec) == expected
