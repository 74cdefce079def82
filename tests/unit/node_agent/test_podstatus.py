"""Pod phase, conditions and container statuses, as the kubelet computes them.

Aspects covered:
- phase: Pending until init containers succeed and app containers start; Running while any
  runs or restarts under Always; Succeeded / Failed once all stopped for good; a failed init
  container fails the pod under Never;
- conditions: Ready only when every container is ready; PodCompleted once terminal;
  lastTransitionTime kept while a status stays; the scheduler's PodScheduled kept;
- container statuses: waiting / running / terminated with exit code, reason and message.
"""

from __future__ import annotations

import pytest

from hack.node_agent.podstatus import (
    ContainerView,
    PodView,
    Running,
    Terminated,
    Waiting,
    conditions,
    phase,
    pod_status,
)

RUN = Running("2026-01-01T00:00:00Z")
OK = Terminated(0, "Completed", "t0", "t1")
FAIL = Terminated(3, "Error", "t0", "t1", message="boom")
WAIT = Waiting("ContainerCreating")


def c(state: object, ready: bool = False, last: Terminated | None = None) -> ContainerView:
    assert isinstance(state, Waiting | Running | Terminated)
    return ContainerView(
        name="c",
        image="i",
        state=state,
        ready=ready,
        last_state=last,
        started=isinstance(state, Running),
    )


def view(
    main: list[ContainerView], policy: str = "Always", init: list[ContainerView] | None = None
) -> PodView:
    return PodView(
        sandbox_ready=True,
        init=init or [],
        main=main,
        restart_policy=policy,
        pod_ip="198.18.12.5",
        host_ip="198.18.12.1",
    )


@pytest.mark.parametrize(
    ("main", "policy", "init", "expected"),
    [
        ([c(WAIT)], "Always", [], "Pending"),
        ([c(RUN)], "Always", [], "Running"),
        ([c(RUN), c(WAIT)], "Always", [], "Pending"),
        ([c(Waiting("CrashLoopBackOff"), last=FAIL)], "Always", [], "Running"),
        ([c(OK)], "Never", [], "Succeeded"),
        ([c(OK), c(FAIL)], "Never", [], "Failed"),
        ([c(OK)], "OnFailure", [], "Succeeded"),
        ([c(Waiting("CrashLoopBackOff"), last=FAIL)], "OnFailure", [], "Running"),
        ([c(WAIT)], "Never", [c(RUN)], "Pending"),
        ([c(WAIT)], "Never", [c(FAIL)], "Failed"),
        ([c(RUN)], "Never", [c(OK)], "Running"),
        ([c(OK)], "Always", [], "Running"),
    ],
)
def test_phase(
    main: list[ContainerView], policy: str, init: list[ContainerView], expected: str
) -> None:
    assert phase(view(main, policy, init)) == expected


def test_ready_needs_every_container_ready() -> None:
    v = PodView(
        sandbox_ready=True,
        init=[],
        main=[ContainerView("a", "i", RUN, ready=True), ContainerView("b", "i", RUN, ready=False)],
    )
    conds = {x["type"]: x for x in conditions(v, "Running", [])}
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["message"] == "containers with unready status: [b]"
    assert conds["Initialized"]["status"] == "True"


def test_terminal_pod_is_not_ready_with_reason_pod_completed() -> None:
    conds = {x["type"]: x for x in conditions(view([c(OK)], "Never"), "Succeeded", [])}
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "PodCompleted"


def test_transition_time_kept_while_status_stays_and_pod_scheduled_kept() -> None:
    previous = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2019-01-01T00:00:00Z"},
    ]
    v = view([c(RUN, ready=True)])
    conds = {x["type"]: x for x in conditions(v, "Running", previous)}
    assert conds["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert conds["PodScheduled"]["lastTransitionTime"] == "2019-01-01T00:00:00Z"
    flipped = {x["type"]: x for x in conditions(view([c(RUN)]), "Running", previous)}
    assert flipped["Ready"]["lastTransitionTime"] != "2020-01-01T00:00:00Z"


def test_readiness_gate_not_true_keeps_the_pod_unready() -> None:
    v = PodView(
        sandbox_ready=True, init=[], main=[c(RUN, ready=True)], readiness_gates=["example.com/gate"]
    )
    conds = {x["type"]: x for x in conditions(v, "Running", [])}
    assert conds["ContainersReady"]["status"] == "True"
    assert conds["Ready"]["reason"] == "ReadinessGatesNotReady"


def test_container_statuses_carry_exit_code_reason_and_message() -> None:
    status = pod_status(
        view([ContainerView("c", "img", FAIL, restart_count=2, last_state=OK)], "Never"), {}
    )
    cs = status["containerStatuses"][0]
    assert cs["state"]["terminated"] == {
        "exitCode": 3,
        "reason": "Error",
        "startedAt": "t0",
        "finishedAt": "t1",
        "message": "boom",
    }
    assert cs["lastState"]["terminated"]["reason"] == "Completed"
    assert cs["restartCount"] == 2
    assert status["phase"] == "Failed"
    assert status["podIP"] == "198.18.12.5"
    assert status["podIPs"] == [{"ip": "198.18.12.5"}]
