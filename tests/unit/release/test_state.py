"""The release state machine, as pure transitions (status + observation -> status + plan).

Aspects covered:
- RollingUpdate keeps no canary; Canary starts one when spec.version differs from stable,
  at weight 0 until its pods are ready, then at the first step's weight;
- a pass moves a step on only after its pause; the last step promotes (stable moves to the
  new version, the canary goes) and the bake ends in Succeeded; a step without a pause waits
  in Paused for promote;
- failed runs beyond failureLimit roll back at once (weight 0, no canary in the plan, a
  Warning Event); no data never passes and rolls back beyond inconclusiveLimit; Prometheus
  unreachable pauses, rolls back beyond the limit and never promotes;
- a failure during the bake reverts stable to the version before the promotion;
- a rolled-back version is not tried again until the generation changes or a retry is
  requested; abort and promote (a step, or full) by annotation;
- the state lives in the status: deciding again on the same status takes no second step,
  and no analysis is due before the interval has passed.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.models import ObjectMeta, RagSystem, RagSystemSpec, RagSystemStatus
from rag_operator.models.naming import ABORT_ANNOTATION, PROMOTE_ANNOTATION, RETRY_ANNOTATION
from rag_operator.models.status import (
    MigrationPhase,
    MigrationStatus,
    RolloutPhase,
    RolloutStatus,
)
from rag_operator.release.state import (
    Decision,
    Observation,
    Plan,
    Verdict,
    analysis_due,
    canary_may_start,
    decide,
)

T0 = 1_800_000_000.0
CANARY: dict[str, Any] = {
    "steps": [{"weight": 10, "pause": "20s"}, {"weight": 50, "pause": "20s"}],
    "analysis": {"interval": "10s", "failureLimit": 1, "inconclusiveLimit": 2},
    "bakeTime": "20s",
}
PASS = Verdict("pass", "error rate 0 <= 0.05")
FAIL = Verdict("fail", "error-rate 0.5 > 0.05")
NODATA = Verdict("nodata", "3 canary requests < 10")
ERROR = Verdict("error", "Prometheus unreachable: connection refused")


class Sim:
    """A RagSystem whose status is written back after each decision, as the operator does."""

    def __init__(
        self,
        canary: dict[str, Any] | None = None,
        *,
        version: str = "0.2.0",
        stable: str = "0.1.0",
        strategy: str = "Canary",
    ) -> None:
        self.spec: dict[str, Any] = {
            "version": version,
            "rollout": {"strategy": strategy, "canary": canary or CANARY},
        }
        self.generation = 1
        self.annotations: dict[str, str] = {}
        self.status = RagSystemStatus(version=stable)
        self.now = T0
        self.last: Decision | None = None

    @property
    def rs(self) -> RagSystem:
        return RagSystem(
            metadata=ObjectMeta(
                name="demo",
                namespace="ns",
                generation=self.generation,
                annotations=self.annotations,
            ),
            spec=RagSystemSpec.model_validate(self.spec),
            # The migration of the asked version has succeeded (the gate is tested apart).
            status=self.status.model_copy(
                update={
                    "migration": MigrationStatus(
                        version=self.spec["version"], phase=MigrationPhase.SUCCEEDED
                    )
                }
            ),
        )

    @property
    def rollout(self) -> RolloutStatus:
        assert self.status.rollout is not None
        return self.status.rollout

    def tick(
        self,
        verdict: Verdict | None = None,
        *,
        after: float = 10.0,
        canary_ready: bool = True,
        stable_ready: bool = True,
    ) -> Decision:
        """Advance the clock, run an analysis when one is due, write the status back."""
        self.now += after
        due = analysis_due(self.rs, self.now, canary_ready)
        obs = Observation(
            now=self.now,
            canary_ready=canary_ready,
            stable_ready=stable_ready,
            verdict=verdict if due is not None else None,
        )
        decision = decide(self.rs, obs)
        self.status = self.status.model_copy(update={"rollout": decision.status})
        self.last = decision
        return decision

    def set_spec(self, **changes: Any) -> None:
        self.spec.update(changes)
        self.generation += 1


def started(canary: dict[str, Any] | None = None) -> Sim:
    """A canary at its first step's weight."""
    sim = Sim(canary)
    sim.tick(canary_ready=False)  # starts, weight 0
    sim.tick()  # canary ready: first step's weight
    return sim


def test_rolling_update_keeps_no_canary() -> None:
    sim = Sim(strategy="RollingUpdate")
    decision = sim.tick()
    assert decision.plan == Plan("0.2.0")
    assert sim.rollout.phase is None
    assert sim.rollout.stable_version == "0.2.0"


def test_first_install_starts_no_canary() -> None:
    sim = Sim(stable="")
    decision = sim.tick()
    assert decision.plan == Plan("0.2.0")
    assert sim.rollout.phase is None


def test_new_version_starts_a_canary_at_weight_zero_until_ready() -> None:
    sim = Sim()
    decision = sim.tick(canary_ready=False)
    assert sim.rollout.phase is RolloutPhase.PROGRESSING
    assert (sim.rollout.step, sim.rollout.weight) == (1, 0)
    assert decision.plan == Plan("0.1.0", "0.2.0", 0)
    assert [e[1] for e in decision.events] == ["CanaryStarted"]
    decision = sim.tick(canary_ready=True)
    assert decision.plan == Plan("0.1.0", "0.2.0", 10)
    assert [e[1] for e in decision.events] == ["CanaryStep"]


def test_a_pass_moves_on_only_after_the_pause() -> None:
    sim = started()
    sim.tick(PASS)  # 10 s into a 20 s pause
    assert (sim.rollout.step, sim.rollout.weight) == (1, 10)
    sim.tick(PASS)  # 20 s
    assert (sim.rollout.step, sim.rollout.weight) == (2, 50)


@pytest.mark.parametrize(
    "steps",
    [
        [{"weight": 10, "pause": "0s"}],
        [{"weight": 10, "pause": "10s"}, {"weight": 30, "pause": "10s"}],
        [{"weight": w, "pause": "20s"} for w in (5, 25, 50, 75, 100)],
    ],
)
def test_healthy_canary_is_promoted_through_every_step_then_baked(
    steps: list[dict[str, Any]],
) -> None:
    sim = started({**CANARY, "steps": steps})
    weights = [sim.rollout.weight]
    for _ in range(100):
        sim.tick(PASS)
        if sim.rollout.phase is not RolloutPhase.PROGRESSING:
            break
        weights.append(sim.rollout.weight)
    assert sorted(set(weights)) == [s["weight"] for s in steps]
    assert sim.rollout.phase is RolloutPhase.PROMOTING
    assert sim.last is not None
    assert sim.last.plan == Plan("0.2.0")
    assert sim.rollout.previous_version == "0.1.0"
    sim.tick(stable_ready=False)  # stable still rolling to 0.2.0: the bake has not begun
    assert sim.rollout.step_started_at == ""
    for _ in range(10):
        sim.tick(PASS)
        if sim.rollout.phase is RolloutPhase.SUCCEEDED:
            break
    assert sim.rollout.phase is RolloutPhase.SUCCEEDED
    assert sim.rollout.stable_version == "0.2.0"
    assert sim.last.plan == Plan("0.2.0")
    # Nothing more happens once the version is stable.
    assert sim.tick(PASS).events == []


@pytest.mark.parametrize(("limit", "fails_to_roll_back"), [(0, 1), (1, 2), (3, 4)])
def test_failures_beyond_the_limit_roll_back_at_once(limit: int, fails_to_roll_back: int) -> None:
    sim = started({**CANARY, "analysis": {**CANARY["analysis"], "failureLimit": limit}})
    for _ in range(fails_to_roll_back - 1):
        sim.tick(FAIL)
        assert sim.rollout.phase is RolloutPhase.PROGRESSING
        assert sim.rollout.weight == 10
    decision = sim.tick(FAIL)
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    assert sim.rollout.weight == 0
    assert decision.plan == Plan("0.1.0")
    assert "error-rate 0.5 > 0.05" in sim.rollout.message
    assert decision.events[0][:2] == ("Warning", "RolledBack")
    assert sim.rollout.analysis[-1].result == "fail"


def test_a_pass_resets_the_failure_count() -> None:
    sim = started()
    sim.tick(FAIL)
    sim.tick(PASS)
    sim.tick(FAIL)
    assert sim.rollout.phase is RolloutPhase.PROGRESSING


def test_no_data_never_passes_and_rolls_back_beyond_its_limit() -> None:
    sim = started({**CANARY, "steps": [{"weight": 10, "pause": "0s"}]})
    sim.tick(NODATA)
    sim.tick(NODATA)
    assert sim.rollout.phase is RolloutPhase.PROGRESSING
    assert sim.rollout.weight == 10
    sim.tick(NODATA)
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    assert "no data" in sim.rollout.message


def test_prometheus_unreachable_pauses_then_rolls_back_and_never_promotes() -> None:
    sim = started({**CANARY, "steps": [{"weight": 10, "pause": "0s"}]})
    sim.tick(ERROR)
    assert sim.rollout.phase is RolloutPhase.PAUSED
    assert "unreachable" in sim.rollout.message
    sim.tick(ERROR)
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    assert sim.last is not None
    assert sim.last.plan == Plan("0.1.0")


@pytest.mark.parametrize(
    "pattern",
    [[ERROR] * 5, [ERROR, PASS] * 5, [NODATA, ERROR, NODATA] * 3, [NODATA] * 10],
)
def test_only_a_pass_promotes(pattern: list[Verdict]) -> None:
    sim = started({**CANARY, "analysis": {**CANARY["analysis"], "failureLimit": 100}})
    for verdict in pattern:
        before = sim.rollout.phase
        sim.tick(verdict)
        if verdict is not PASS and before is not RolloutPhase.PROMOTING:
            assert sim.rollout.phase is not RolloutPhase.PROMOTING


def test_unreachable_then_reachable_resumes() -> None:
    sim = started({**CANARY, "analysis": {**CANARY["analysis"], "failureLimit": 2}})
    sim.tick(ERROR)
    assert sim.rollout.phase is RolloutPhase.PAUSED
    sim.tick(PASS)
    assert sim.rollout.phase is RolloutPhase.PROGRESSING
    assert sim.rollout.failures == 0


def test_failure_during_the_bake_reverts_to_the_previous_version() -> None:
    sim = started({**CANARY, "steps": [{"weight": 10, "pause": "0s"}]})
    sim.tick(PASS)
    assert sim.rollout.phase is RolloutPhase.PROMOTING
    sim.tick()  # stable ready at 0.2.0: the bake begins
    sim.tick(FAIL)
    decision = sim.tick(FAIL)
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    assert sim.rollout.stable_version == "0.1.0"
    assert sim.rollout.canary_version == "0.2.0"
    assert decision.plan == Plan("0.1.0")
    assert "bake of 0.2.0 failed, reverted to 0.1.0" in sim.rollout.message


def rolled_back() -> Sim:
    sim = started({**CANARY, "analysis": {**CANARY["analysis"], "failureLimit": 0}})
    sim.tick(FAIL)
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    return sim


def test_rolled_back_version_is_not_tried_again() -> None:
    sim = rolled_back()
    for _ in range(5):
        decision = sim.tick(PASS)
        assert decision.plan == Plan("0.1.0")
        assert sim.rollout.phase is RolloutPhase.ROLLED_BACK


def test_spec_change_tries_again() -> None:
    sim = rolled_back()
    sim.set_spec(api={"replicas": 3})  # any spec change: a new generation
    decision = sim.tick()
    assert sim.rollout.phase is RolloutPhase.PROGRESSING
    assert decision.plan.canary_version == "0.2.0"


def test_retry_request_tries_again_once() -> None:
    sim = rolled_back()
    sim.annotations[RETRY_ANNOTATION] = "1"
    sim.tick(canary_ready=False)
    assert sim.rollout.phase is RolloutPhase.PROGRESSING
    sim.tick()
    sim.tick(FAIL)
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    sim.tick()  # the same token is no new request
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK


def test_abort_rolls_back() -> None:
    sim = started()
    sim.annotations[ABORT_ANNOTATION] = "t1"
    decision = sim.tick()
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    assert "aborted by request" in sim.rollout.message
    assert decision.plan == Plan("0.1.0")


def test_step_without_pause_waits_for_promote() -> None:
    sim = started({**CANARY, "steps": [{"weight": 10}, {"weight": 40}, {"weight": 70}]})
    for _ in range(3):
        sim.tick(PASS)
        assert sim.rollout.phase is RolloutPhase.PAUSED
        assert sim.rollout.step == 1
    sim.annotations[PROMOTE_ANNOTATION] = "a"
    sim.tick()
    assert (sim.rollout.step, sim.rollout.weight) == (2, 40)
    sim.annotations[PROMOTE_ANNOTATION] = "full:b"
    sim.tick()
    assert sim.rollout.phase is RolloutPhase.PROMOTING


def test_requests_made_before_a_rollout_are_spent() -> None:
    sim = Sim(version="0.1.0")
    sim.annotations[ABORT_ANNOTATION] = "old"
    sim.tick()
    sim.set_spec(version="0.2.0")
    sim.tick(canary_ready=False)
    sim.tick()
    assert sim.rollout.phase is RolloutPhase.PROGRESSING


def test_same_status_decided_again_takes_no_second_step() -> None:
    sim = started({**CANARY, "steps": [{"weight": 10, "pause": "0s"}, {"weight": 50}]})
    sim.tick(PASS)
    assert sim.rollout.step == 2
    rs = sim.rs  # as a restarted operator reads it back
    # Right after the step no analysis is due, and deciding again changes nothing.
    assert analysis_due(rs, sim.now + 1, True) is None
    again = decide(rs, Observation(now=sim.now + 1, canary_ready=True, verdict=PASS))
    assert again.status.step == 2
    assert again.events == []


def test_analysis_is_due_each_interval() -> None:
    sim = started()
    assert analysis_due(sim.rs, sim.now + 5, True) is None
    target = analysis_due(sim.rs, sim.now + 10, True)
    assert target is not None
    assert (target.mode, target.version, target.step, target.weight) == ("canary", "0.2.0", 1, 10)
    assert analysis_due(sim.rs, sim.now + 10, False) is None


def test_spec_back_to_stable_withdraws_the_canary() -> None:
    sim = started()
    sim.set_spec(version="0.1.0")
    decision = sim.tick()
    assert decision.plan == Plan("0.1.0")
    assert [e[1] for e in decision.events] == ["CanaryWithdrawn"]


def test_another_version_mid_canary_replaces_it() -> None:
    sim = started()
    sim.set_spec(version="0.3.0")
    decision = sim.tick(canary_ready=False)
    assert decision.plan == Plan("0.1.0", "0.3.0", 0)
    assert sim.rollout.step == 1


def test_canary_not_ready_within_the_ready_timeout_rolls_back() -> None:
    sim = Sim()
    sim.tick(canary_ready=False)  # starts
    for _ in range(29):  # 290 s of a slow start: the analysis' limits do not count it
        sim.tick(canary_ready=False)
        assert sim.rollout.phase is RolloutPhase.PROGRESSING
        assert sim.rollout.inconclusive == 0
    sim.tick(canary_ready=False, after=11)
    assert sim.rollout.phase is RolloutPhase.ROLLED_BACK
    assert "not ready within 300s" in sim.rollout.message


def test_canary_may_start_when_the_version_differs() -> None:
    rs = Sim().rs
    assert canary_may_start(rs, "0.2.0", "0.1.0")
    assert not canary_may_start(rs, "0.1.0", "0.1.0")


def test_history_is_bounded() -> None:
    sim = started({**CANARY, "steps": [{"weight": 10}], "analysis": {"interval": "1s"}})
    for _ in range(30):
        sim.tick(PASS, after=1)
    assert len(sim.rollout.analysis) == 10
