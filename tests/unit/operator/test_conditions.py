"""Status and Events as pure functions of the spec, the observed children and the problems.

Aspects covered: Pending -> Progressing -> Ready, per-component conditions and counts,
unschedulable pods and missing Secrets make it Degraded, a component not ready past the
timeout is Degraded, an unschedulable pod always shows as Unschedulable (never as the
generic timeout, whichever clock runs out first), lastTransitionTime only moves when a
condition flips, the stores summary, the status of an object the models reject, and the
Events of phase changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rag_operator.builders import runtime_config
from rag_operator.conditions import compute_status, events_for, invalid_status
from rag_operator.models import OperatorConfig, Phase, RagSystem, RagSystemSpec, RagSystemStatus
from rag_operator.observed import Observed, PodInfo
from tests.unit.operator.fakes import ready
from tests.unit.operator.helpers import CFG, children, make_rs

T0 = "2026-01-01T00:00:00Z"


def _status(
    rs: RagSystem, observed: Observed, now: str, cfg: OperatorConfig = CFG
) -> RagSystemStatus:
    return compute_status(rs, cfg, observed, [], set(), now, runtime_config(rs).config_hash)


def _observed(rs: RagSystem, is_ready: bool = True) -> Observed:
    kids = [ready(c) if is_ready else c for c in children(rs)]
    return Observed.from_items(kids, [], frozenset({"database-url"}))


def _cond(status: RagSystemStatus, type_: str) -> Any:
    return next(c for c in status.conditions if c.type == type_)


def _at(second: int) -> str:
    return f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}Z"


def test_nothing_observed_is_pending() -> None:
    status = _status(make_rs(), Observed(), T0)
    assert status.phase == Phase.PENDING
    assert _cond(status, "Ready").status == "False"


def test_all_children_ready_is_ready_with_every_condition() -> None:
    rs = make_rs()
    status = _status(rs, _observed(rs), T0)
    assert status.phase == Phase.READY
    types = {c.type: c.status.value for c in status.conditions}
    assert types["Ready"] == "True"
    assert types["Progressing"] == "False"
    assert types["Degraded"] == "False"
    for t in ("ApiReady", "WorkerReady", "PostgresReady", "RedisReady", "Neo4jReady"):
        assert types[t] == "True", t
    assert [c.type for c in status.conditions][:3] == ["Ready", "Progressing", "Degraded"]
    assert status.conditions[-1].type == "ConfigReady"
    assert _cond(status, "Neo4jReady").reason == "Disabled"
    assert status.components.api is not None
    assert status.components.api.ready == 2
    assert status.ready_summary == "4/4"
    assert status.stores == "postgres=1/1,redis=1/1,neo4j=off"
    assert status.endpoint == "http://demo-api.team-a.svc:8000"
    assert status.config_hash == runtime_config(rs).config_hash
    assert all(c.observed_generation == 1 for c in status.conditions)


def test_children_without_ready_pods_are_progressing() -> None:
    rs = make_rs()
    status = _status(rs, _observed(rs, is_ready=False), T0)
    assert status.phase == Phase.PROGRESSING
    assert _cond(status, "Progressing").status == "True"
    assert _cond(status, "ApiReady").reason == "Progressing"


def _unschedulable_postgres(rs: RagSystem, since: str) -> Observed:
    observed = _observed(rs)
    observed.children[("StatefulSet", "demo-postgres")]["status"]["readyReplicas"] = 0
    pod = PodInfo(
        "demo-postgres-0", "postgres", False, "0/2 nodes are available", unschedulable_since=since
    )
    observed.pods.append(pod)
    return observed


def test_unschedulable_store_is_degraded_with_reason() -> None:
    rs = make_rs()
    observed = _unschedulable_postgres(rs, T0)
    fresh = _status(rs, observed, _at(5))
    assert fresh.phase == Phase.PROGRESSING, "a moment unscheduled is not yet a problem"
    status = _status(rs, observed, _at(60))
    assert status.phase == Phase.DEGRADED
    assert _cond(status, "PostgresReady").reason == "Unschedulable"
    assert "0/2 nodes" in _cond(status, "Degraded").message


def test_component_not_ready_past_timeout_is_degraded() -> None:
    rs = make_rs()
    observed = _observed(rs, is_ready=False)
    first = _status(rs, observed, T0)
    later = _status(make_rs(status=first.wire()), observed, "2026-01-01T01:00:00Z")
    assert later.phase == Phase.DEGRADED
    assert _cond(later, "ApiReady").reason == "NotReadyTimeout"


@pytest.mark.parametrize("pod_late_by", [0, 3, 8, 14, 30])
@pytest.mark.parametrize(("timeout", "grace"), [(15.0, 20.0), (15.0, 15.0), (30.0, 10.0)])
def test_unschedulable_pod_reads_as_unschedulable_whichever_clock_runs_out_first(
    pod_late_by: int, timeout: float, grace: float
) -> None:
    """The component's condition turns False at T0; its pod is reported unschedulable
    `pod_late_by` seconds later (later on a busy machine). Passes every second must never
    show NotReadyTimeout, and end on Unschedulable."""
    cfg = OperatorConfig(ready_timeout_seconds=timeout, unschedulable_grace_seconds=grace)
    rs = make_rs()
    waiting = _observed(rs)
    waiting.children[("StatefulSet", "demo-postgres")]["status"]["readyReplicas"] = 0
    status = _status(rs, waiting, T0, cfg)
    stuck = _unschedulable_postgres(rs, _at(pod_late_by))
    reasons = []
    for second in range(pod_late_by, pod_late_by + int(max(timeout, grace)) + 3):
        status = _status(make_rs(status=status.wire()), stuck, _at(second), cfg)
        reasons.append(_cond(status, "PostgresReady").reason)
    assert "NotReadyTimeout" not in reasons, reasons
    assert reasons[-1] == "Unschedulable"
    assert status.phase == Phase.DEGRADED
    assert _cond(status, "Degraded").reason == "Unschedulable"


def test_transition_time_moves_only_when_status_flips() -> None:
    rs = make_rs()
    first = _status(rs, _observed(rs), T0)
    again = _status(make_rs(status=first.wire()), _observed(rs), "2026-01-01T00:05:00Z")
    assert _cond(again, "Ready").last_transition_time == T0
    assert again.wire() == first.wire()


@pytest.mark.parametrize(
    ("old", "new", "reasons"),
    [
        (Phase.PENDING, Phase.READY, ["Ready"]),
        (Phase.PROGRESSING, Phase.READY, ["Ready"]),
        (Phase.DEGRADED, Phase.READY, ["Recovered"]),
        (Phase.READY, Phase.READY, []),
    ],
)
def test_events_on_phase_changes(old: Phase, new: Phase, reasons: list[str]) -> None:
    got = events_for(RagSystemStatus(phase=old), RagSystemStatus(phase=new), created=False)
    assert [r for _t, r, _m in got] == reasons


def test_rejected_spec_gets_degraded_status_naming_the_field() -> None:
    body = {
        "metadata": {"name": "x", "namespace": "n", "generation": 3},
        "spec": {"version": "1", "api": {"replicas": -4}},
    }
    with pytest.raises(ValidationError) as info:
        RagSystemSpec.model_validate(body["spec"])
    status = invalid_status(body, info.value)
    degraded = next(c for c in status.conditions if c.type == "Degraded")
    assert degraded.reason == "InvalidSpec"
    assert "spec.api.replicas" in degraded.message
    assert status.observed_generation == 3
    assert status.phase.value == "Degraded"
