"""kubectl-ragops without a cluster: the requests it writes and what status prints.

Aspects covered: promote, abort and retry are merge patches of one annotation each (never of
the spec), with a fresh value per request (full promote marked); status shows the phase,
versions, weight, step, message and each analysis run with its measured values.
"""

from __future__ import annotations

import pytest

from rag_operator.models.naming import PROMOTE_FULL_PREFIX
from rag_operator.plugin import format_status, parse_args, request_patch


@pytest.mark.parametrize(
    ("command", "annotation"),
    [
        ("promote", "ragops.io/rollout-promote"),
        ("abort", "ragops.io/rollout-abort"),
        ("retry", "ragops.io/rollout-retry"),
    ],
)
def test_requests_are_annotations_with_fresh_values(command: str, annotation: str) -> None:
    first, second = request_patch(command), request_patch(command)
    assert set(first) == {"metadata"}
    assert list(first["metadata"]["annotations"]) == [annotation]
    assert first != second


def test_full_promote_is_marked() -> None:
    value = request_patch("promote", full=True)["metadata"]["annotations"]
    assert next(iter(value.values())).startswith(PROMOTE_FULL_PREFIX)


def test_status_shows_the_release_and_its_analysis() -> None:
    obj = {
        "metadata": {"name": "demo", "namespace": "team-a"},
        "spec": {"version": "0.2.0", "rollout": {"strategy": "Canary"}},
        "status": {
            "phase": "Ready",
            "rollout": {
                "phase": "RolledBack",
                "canaryVersion": "0.2.0",
                "stableVersion": "0.1.0",
                "weight": 0,
                "step": 2,
                "message": "canary 0.2.0 rolled back: error-rate 0.5 > 0.05",
                "analysis": [
                    {
                        "time": "2026-03-01T10:00:00Z",
                        "step": 2,
                        "weight": 30,
                        "result": "fail",
                        "measurements": [
                            {"metric": "requests", "result": "pass", "value": 120},
                            {"metric": "error-rate", "result": "fail", "value": 0.5},
                        ],
                    }
                ],
            },
        },
    }
    text = format_status(obj)
    assert "team-a/demo" in text
    assert "RolledBack" in text
    assert "stable 0.1.0, canary 0.2.0" in text
    assert "error-rate=0.5 FAIL" in text
    assert "requests=120" in text
    assert "30%" in text


def test_arguments() -> None:
    args = parse_args(["-n", "ns", "promote", "demo", "--full"])
    assert (args.namespace, args.command, args.name, args.full) == ("ns", "promote", "demo", True)
