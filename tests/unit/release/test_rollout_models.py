"""The spec.rollout models: durations, step order, bounds of the checks, defaults.

The CEL and OpenAPI rules are what the API server enforces (tests/integration/operator/
test_rollout_validation.py); the models refuse the same objects, so a spec admitted before a
rule existed is reported with the field named instead of being acted on.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rag_operator.models import RagSystemSpec
from rag_operator.models.rollout import CanarySpec, PromQLCheck, RolloutStrategy, duration_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("500ms", 0.5), ("2m", 120.0), ("1h30m", 5400.0), ("1m30s", 90.0), ("0s", 0)],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["1x", "", "10", "s", "1.5s", "-1s", "10 s"])
def test_duration_refuses_what_is_not_one(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds(text)


def test_default_rollout_is_rolling_update_with_a_usable_canary() -> None:
    spec = RagSystemSpec(version="1")
    assert spec.rollout.strategy is RolloutStrategy.ROLLING_UPDATE
    canary = spec.rollout.canary
    assert [s.weight for s in canary.steps] == [10, 30, 60]
    assert canary.analysis.interval == "10s"
    assert canary.analysis.error_rate.max == 0.05


@pytest.mark.parametrize(
    ("canary", "fragment"),
    [
        ({"steps": [{"weight": 30}, {"weight": 10}]}, "strictly increasing"),
        ({"steps": [{"weight": 10}, {"weight": 10}]}, "strictly increasing"),
        ({"steps": [{"weight": 101}]}, "less than or equal to 100"),
        ({"steps": [{"weight": 10, "pause": "1x"}]}, "pattern"),
        ({"analysis": {"interval": "1x"}}, "pattern"),
        ({"analysis": {"errorRate": {"max": -0.5}}}, "greater than or equal to 0"),
        ({"bakeTime": "soon"}, "pattern"),
    ],
)
def test_invalid_canary_specs_are_refused(canary: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        CanarySpec.model_validate(canary)


@pytest.mark.parametrize(
    ("bounds", "fragment"),
    [({}, "min or max"), ({"min": 2, "max": 1}, "less than or equal to max")],
)
def test_promql_check_needs_sane_bounds(bounds: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        PromQLCheck.model_validate({"name": "m", "query": "up", **bounds})


def test_canary_example_is_a_valid_system() -> None:
    from pathlib import Path

    import yaml

    from rag_operator.models import RagSystem

    path = Path(__file__).resolve().parents[3] / "examples" / "canary.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    body = {**docs[0], "metadata": {**docs[0]["metadata"], "namespace": "default"}}
    rs = RagSystem.from_body(body)
    assert rs.spec.rollout.strategy is RolloutStrategy.CANARY
    gate = rs.spec.rollout.canary.analysis.quality_gate
    assert gate is not None
    assert docs[1]["metadata"]["name"] == gate.golden_set_ref.name
