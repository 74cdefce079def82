"""Status writes paced per system (`rag_operator.pacing`), on statuses computed as passes do.

Aspects covered: one more component ready is progress, the system turning Ready is not, nor
a migration step, a new phase or generation; the pacer writes a system's first status at
once, holds progress until the interval after the last write and then writes it, and never
holds a change that is not progress or that comes with Events; the status patch makes the
status exactly the new one, whichever of the body or the last write the server holds.
"""

from __future__ import annotations

from typing import Any

from rag_operator.builders import runtime_config
from rag_operator.conditions import compute_status
from rag_operator.models import Phase, RagSystem, RagSystemStatus
from rag_operator.models.status import MigrationPhase, MigrationStatus
from rag_operator.observed import Observed
from rag_operator.pacing import StatusPacer, progress_only, replacing_patch
from tests.unit.operator.fakes import ready
from tests.unit.operator.helpers import CFG, children, make_rs

KEY = ("ns", "rag")


def _status(rs: RagSystem, ready_kinds: set[str], now: str = "2026-01-01T00:00:00Z") -> Any:
    """The status with the children whose component is in `ready_kinds` ready."""
    kids = []
    for child in children(rs):
        component = child["metadata"]["labels"].get("app.kubernetes.io/component", "")
        kids.append(ready(child) if component in ready_kinds else child)
    observed = Observed.from_items(kids, [], frozenset({"database-url"}))
    return compute_status(rs, CFG, observed, [], set(), now, runtime_config(rs).config_hash)


def _after(rs: RagSystem, status: RagSystemStatus) -> RagSystem:
    return rs.model_copy(update={"status": status})


def test_one_more_component_ready_is_progress() -> None:
    rs = make_rs()
    first = _status(rs, {"postgres"})
    second = _status(_after(rs, first), {"postgres", "redis"}, "2026-01-01T00:00:03Z")
    assert first.wire() != second.wire()
    assert second.phase == first.phase == Phase.PROGRESSING
    assert progress_only(first, second)


def test_turning_ready_is_not_progress() -> None:
    rs = make_rs()
    first = _status(rs, {"postgres", "redis", "neo4j", "api"})
    everything = {"postgres", "redis", "neo4j", "api", "worker"}
    second = _status(_after(rs, first), everything, "2026-01-01T00:00:03Z")
    assert second.phase == Phase.READY
    assert not progress_only(first, second)


def test_a_migration_step_a_phase_or_a_generation_is_not_progress() -> None:
    first = _status(make_rs(), {"postgres"})
    running = MigrationStatus(version="0.1.0", job="rag-migrate-1", phase=MigrationPhase.RUNNING)
    done = running.model_copy(update={"phase": MigrationPhase.SUCCEEDED})
    with_job = first.model_copy(update={"migration": running})
    assert not progress_only(first, with_job)
    assert not progress_only(with_job, with_job.model_copy(update={"migration": done}))
    assert not progress_only(first, first.model_copy(update={"phase": Phase.DEGRADED}))
    assert not progress_only(first, first.model_copy(update={"observed_generation": 2}))


def test_a_migration_message_alone_is_progress() -> None:
    first = _status(make_rs(), {"postgres"})
    created = MigrationStatus(
        version="0.1.0", job="rag-migrate-1", phase=MigrationPhase.RUNNING, message="created"
    )
    running = created.model_copy(update={"message": "Job rag-migrate-1 is running"})
    a, b = (first.model_copy(update={"migration": m}) for m in (created, running))
    assert progress_only(a, b)


def test_the_pacer_holds_progress_until_its_turn_and_nothing_else() -> None:
    rs = make_rs()
    first = _status(rs, {"postgres"})
    more = _status(_after(rs, first), {"postgres", "redis"}, "2026-01-01T00:00:01Z")
    pacer = StatusPacer(interval_s=5.0)
    assert pacer.due(KEY, first, True, now=100.0) is None  # the first write
    pacer.wrote(KEY, first, 100.0)
    assert pacer.written(KEY, first)  # a pass on a body the watch has not updated yet
    assert not pacer.written(KEY, more)
    assert pacer.due(KEY, more, False, now=101.0) == 105.0  # progress: held
    assert pacer.due(KEY, more, False, now=105.0) is None  # its turn
    assert pacer.due(KEY, more, True, now=101.0) is None  # with Events: at once
    other = first.model_copy(update={"phase": Phase.DEGRADED})
    assert pacer.due(KEY, other, False, now=101.0) is None  # not progress
    assert pacer.due(("ns", "other"), more, False, now=101.0) is None  # per system
    pacer.forget(KEY)
    assert pacer.due(KEY, more, False, now=101.0) is None
    assert not pacer.written(KEY, first)


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def test_the_status_patch_replaces_what_either_old_status_had() -> None:
    body = {"phase": "Progressing", "rollout": {"phase": "Canary", "weight": 10}, "a": [1, 2]}
    written = {"phase": "Progressing", "migration": {"job": "j1", "message": "running"}}
    new = {"phase": "Ready", "migration": {"job": "j1"}, "a": [3]}
    patch = replacing_patch(new, body, written)
    assert _merge(body, patch) == new  # the server showed the body
    assert _merge(written, patch) == new  # or what was written last, the watch being behind
    assert patch["rollout"] is None
    assert patch["migration"] == {"job": "j1", "message": None}
