"""Pod status from the states of its containers, computed as the kubelet does (pure).

- Phase: ``Pending`` while the sandbox is not there, init containers have not all succeeded, or
  an app container has never started; ``Running`` while any container runs (or restarts under
  ``Always``); ``Succeeded`` when every container exited 0 and none will restart; ``Failed`` when
  all have stopped, none will restart and one failed.
- Conditions: ``PodReadyToStartContainers``, ``Initialized``, ``ContainersReady``, ``Ready`` (and
  the scheduler's ``PodScheduled``, left alone), with ``lastTransitionTime`` kept while a
  condition's status stays the same.
- Container statuses: ``state`` and ``lastState`` (waiting / running / terminated with exit
  code, reason and message), ``restartCount``, ``ready``, ``started``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Running:
    started_at: str


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str = ""
    signal: int | None = None


State = Waiting | Running | Terminated


@dataclass(frozen=True)
class ContainerView:
    """What the agent knows of one container, as the status reports it."""

    name: str
    image: str
    state: State
    image_id: str = ""
    container_id: str = ""
    last_state: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False


@dataclass(frozen=True)
class PodView:
    sandbox_ready: bool
    init: Sequence[ContainerView]
    main: Sequence[ContainerView]
    restart_policy: str = "Always"
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str = ""
    readiness_gates: Sequence[str] = field(default_factory=tuple)
    deleting: bool = False


def _state(state: State | None) -> dict[str, Any]:
    if state is None:
        return {}
    if isinstance(state, Waiting):
        return {
            "waiting": {
                "reason": state.reason,
                **({"message": state.message} if state.message else {}),
            }
        }
    if isinstance(state, Running):
        return {"running": {"startedAt": state.started_at}}
    term: dict[str, Any] = {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "startedAt": state.started_at,
        "finishedAt": state.finished_at,
    }
    if state.message:
        term["message"] = state.message
    if state.signal is not None:
        term["signal"] = state.signal
    return {"terminated": term}


def container_status(c: ContainerView) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.name,
        "image": c.image,
        "imageID": c.image_id,
        "ready": c.ready,
        "restartCount": c.restart_count,
        "started": c.started,
        "state": _state(c.state),
        "lastState": _state(c.last_state),
    }
    if c.container_id:
        out["containerID"] = c.container_id
    return out


def init_done(view: PodView) -> bool:
    return all(isinstance(c.state, Terminated) and c.state.exit_code == 0 for c in view.init)


def _restarting(c: ContainerView) -> bool:
    return isinstance(c.state, Waiting) and c.last_state is not None


def phase(view: PodView) -> str:
    """The kubelet's getPhase, for the container states the agent produces."""
    never = view.restart_policy == "Never"
    for c in view.init:
        if isinstance(c.state, Terminated) and c.state.exit_code != 0 and never:
            return "Failed"
    if not init_done(view):
        return "Pending"
    running = sum(isinstance(c.state, Running) for c in view.main)
    stopped = [c for c in view.main if isinstance(c.state, Terminated) or _restarting(c)]
    waiting = len(view.main) - running - len(stopped)
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if not stopped:
        return "Pending"
    if view.restart_policy == "Always":
        return "Running"
    finished = [c for c in stopped if isinstance(c.state, Terminated)]
    if len(finished) < len(stopped):
        return "Running"  # OnFailure: a failed container is about to restart
    if all(c.state.exit_code == 0 for c in finished if isinstance(c.state, Terminated)):
        return "Succeeded"
    if never:
        return "Failed"
    return "Running"


def _condition(
    kind: str, ok: bool, previous: Mapping[str, Mapping[str, Any]], reason: str, message: str
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(kind) or {}
    since = old.get("lastTransitionTime") if old.get("status") == status else None
    cond: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since or now(),
    }
    if not ok and reason:
        cond["reason"] = reason
        if message:
            cond["message"] = message
    return cond


def conditions(
    view: PodView, pod_phase: str, previous: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    prev = {str(c.get("type")): c for c in previous}
    terminal = pod_phase in ("Succeeded", "Failed")
    incomplete = [
        c.name
        for c in view.init
        if not (isinstance(c.state, Terminated) and c.state.exit_code == 0)
    ]
    unready = [c.name for c in view.main if not c.ready]
    initialized = not incomplete
    ready = not unready and not terminal and view.sandbox_ready and initialized
    gates_open = all((prev.get(g) or {}).get("status") == "True" for g in view.readiness_gates)
    if terminal:
        reason, message = "PodCompleted", ""
    else:
        reason, message = (
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    out = [
        _condition("PodReadyToStartContainers", view.sandbox_ready and not terminal, prev, "", ""),
        _condition(
            "Initialized",
            initialized,
            prev,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition("ContainersReady", ready, prev, reason, message),
    ]
    if ready and not gates_open:
        out.append(
            _condition(
                "Ready",
                False,
                prev,
                "ReadinessGatesNotReady",
                "corresponding condition of pod readiness gate is not True",
            )
        )
    else:
        out.append(_condition("Ready", ready, prev, reason, message))
    if "PodScheduled" in prev:
        out.append(dict(prev["PodScheduled"]))
    for gate in view.readiness_gates:
        if gate in prev:
            out.append(dict(prev[gate]))
    return out


def pod_status(view: PodView, previous: Mapping[str, Any]) -> dict[str, Any]:
    """The whole ``status`` a kubelet would write for ``view`` (``previous``: current status)."""
    pod_phase = phase(view)
    status: dict[str, Any] = {
        "phase": pod_phase,
        "conditions": conditions(view, pod_phase, previous.get("conditions") or []),
        "containerStatuses": [container_status(c) for c in view.main],
    }
    if view.init:
        status["initContainerStatuses"] = [container_status(c) for c in view.init]
    if view.host_ip:
        status["hostIP"] = view.host_ip
        status["hostIPs"] = [{"ip": view.host_ip}]
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.start_time:
        status["startTime"] = view.start_time
    return status
