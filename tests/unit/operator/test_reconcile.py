"""The reconcile layer without a cluster: drift detection, status, events, one pass.

Aspects covered:
- `matches`: extra observed fields are fine, changed values and missing items are drift,
  quantities compare by value;
- `compute_status`: Pending -> Progressing -> Ready, per-component conditions and counts,
  unschedulable pods and missing Secrets make it Degraded, lastTransitionTime only moves
  when a condition flips, the stores summary;
- `reconcile` against a fake API: first pass applies every child and creates the Secret once,
  a second pass over an unchanged observed state writes nothing, drift is re-applied,
  children the spec dropped are deleted, API errors become a retry instead of a crash;
- events: created, degraded, ready and recovered.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from rag_operator.builders import desired_children
from rag_operator.kube import KubeError
from rag_operator.models import Phase, RagSystemStatus
from rag_operator.reconcile import (
    Observed,
    PodInfo,
    compute_status,
    events_for,
    matches,
    reconcile,
)
from tests.unit.operator.helpers import CFG, make_rs


@pytest.mark.parametrize(
    ("desired", "observed", "same"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": {"b": "1000m"}}, {"a": {"b": "1"}}, True),
        ({"a": {"b": "1Gi"}}, {"a": {"b": "1024Mi"}}, True),
        ({"a": "512Mi"}, {"a": "1Gi"}, False),
        ({"a": [1, 2]}, {"a": [1]}, False),
        ({"a": [{"n": "x"}]}, {"a": [{"n": "x", "extra": 1}, {"n": "y"}]}, True),
        ({"a": {}}, {}, True),
        ({"a": []}, {}, True),
        ({"a": True}, {"a": 1}, False),
        ({"a": 2}, {"a": 2.0}, True),
        ({"a": "x"}, {}, False),
    ],
)
def test_matches(desired: Any, observed: Any, same: bool) -> None:
    assert matches(desired, observed) is same


def _ready(child: dict[str, Any]) -> dict[str, Any]:
    """The child as the API server would show it once its pods are ready."""
    out = copy.deepcopy(child)
    out["metadata"]["generation"] = 1
    out["metadata"]["uid"] = "child-uid"
    if child["kind"] in ("Deployment", "StatefulSet"):
        n = child["spec"].get("replicas", 1)
        out["status"] = {
            "observedGeneration": 1,
            "replicas": n,
            "readyReplicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
        }
    return out


def _observed(rs: Any, ready: bool = True) -> Observed:
    children = [_ready(c) if ready else c for c in desired_children(rs, CFG)]
    return Observed.from_items(children, [], frozenset({"database-url"}))


def _cond(status: RagSystemStatus, type_: str) -> Any:
    return next(c for c in status.conditions if c.type == type_)


def test_nothing_observed_is_pending() -> None:
    status = compute_status(make_rs(), CFG, Observed(), [], set(), "2026-01-01T00:00:00Z")
    assert status.phase == Phase.PENDING
    assert _cond(status, "Ready").status == "False"


def test_all_children_ready_is_ready_with_every_condition() -> None:
    rs = make_rs()
    status = compute_status(rs, CFG, _observed(rs), [], set(), "2026-01-01T00:00:00Z")
    assert status.phase == Phase.READY
    types = {c.type: c.status.value for c in status.conditions}
    assert types["Ready"] == "True"
    assert types["Progressing"] == "False"
    assert types["Degraded"] == "False"
    for t in ("ApiReady", "WorkerReady", "PostgresReady", "RedisReady", "Neo4jReady"):
        assert types[t] == "True", t
    assert _cond(status, "Neo4jReady").reason == "Disabled"
    assert status.components.api is not None
    assert status.components.api.ready == 2
    assert status.stores == "postgres=1/1,redis=1/1,neo4j=off"
    assert status.endpoint == "http://demo-api.team-a.svc:8000"
    assert all(c.observed_generation == 1 for c in status.conditions)


def test_children_without_ready_pods_are_progressing() -> None:
    rs = make_rs()
    status = compute_status(rs, CFG, _observed(rs, ready=False), [], set(), "2026-01-01T00:00:00Z")
    assert status.phase == Phase.PROGRESSING
    assert _cond(status, "Progressing").status == "True"
    assert _cond(status, "ApiReady").reason == "Progressing"


def test_unschedulable_store_is_degraded_with_reason() -> None:
    rs = make_rs()
    observed = _observed(rs)
    sts = observed.children[("StatefulSet", "demo-postgres")]
    sts["status"]["readyReplicas"] = 0
    observed.pods.append(
        PodInfo(
            "demo-postgres-0",
            "postgres",
            False,
            "0/2 nodes are available",
            unschedulable_since="2026-01-01T00:00:00Z",
        )
    )
    fresh = compute_status(rs, CFG, observed, [], set(), "2026-01-01T00:00:05Z")
    assert fresh.phase == Phase.PROGRESSING, "a moment unscheduled is not yet a problem"
    status = compute_status(rs, CFG, observed, [], set(), "2026-01-01T00:01:00Z")
    assert status.phase == Phase.DEGRADED
    assert _cond(status, "PostgresReady").reason == "Unschedulable"
    assert "0/2 nodes" in _cond(status, "Degraded").message


def test_component_not_ready_past_timeout_is_degraded() -> None:
    rs = make_rs()
    observed = _observed(rs, ready=False)
    first = compute_status(rs, CFG, observed, [], set(), "2026-01-01T00:00:00Z")
    later_rs = make_rs(status=first.wire())
    later = compute_status(later_rs, CFG, observed, [], set(), "2026-01-01T01:00:00Z")
    assert later.phase == Phase.DEGRADED
    assert _cond(later, "ApiReady").reason == "NotReadyTimeout"


def test_transition_time_moves_only_when_status_flips() -> None:
    rs = make_rs()
    first = compute_status(rs, CFG, _observed(rs), [], set(), "2026-01-01T00:00:00Z")
    again = compute_status(
        make_rs(status=first.wire()), CFG, _observed(rs), [], set(), "2026-01-01T00:05:00Z"
    )
    assert _cond(again, "Ready").last_transition_time == "2026-01-01T00:00:00Z"
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


class FakeKube:
    """Records calls; serves Secrets from a dict."""

    def __init__(
        self, secrets: dict[str, dict[str, Any]] | None = None, fail_apply: KubeError | None = None
    ) -> None:
        self.applied: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.secrets = secrets or {}
        self.fail_apply = fail_apply

    async def apply(self, manifest: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        if self.fail_apply:
            raise self.fail_apply
        self.applied.append(manifest)
        return manifest

    async def create(self, manifest: dict[str, Any]) -> bool:
        self.created.append(manifest)
        return True

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        return self.secrets.get(name) if kind == "Secret" else None

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
    ) -> bool:
        self.deleted.append((kind, name))
        return True


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_first_pass_applies_every_child_and_creates_credentials_once() -> None:
    rs = make_rs()
    kube = FakeKube()
    outcome = _run(reconcile(rs, CFG, kube, Observed()))  # type: ignore[arg-type]
    assert len(kube.applied) == len(desired_children(rs, CFG))
    assert [c["metadata"]["name"] for c in kube.created] == ["demo-credentials"]
    assert outcome.status.phase == Phase.PROGRESSING
    assert outcome.status_changed
    assert ("Normal", "Created", "created the system's children") in outcome.events
    assert outcome.retry_after is None


def test_unchanged_ready_system_writes_nothing() -> None:
    rs = make_rs()
    first = compute_status(rs, CFG, _observed(rs), [], set(), "2026-01-01T00:00:00Z")
    rs = make_rs(status=first.wire())
    kube = FakeKube()
    outcome = _run(reconcile(rs, CFG, kube, _observed(rs)))  # type: ignore[arg-type]
    assert kube.applied == []
    assert kube.created == []
    assert not outcome.status_changed


def test_drifted_child_is_applied_again() -> None:
    rs = make_rs()
    observed = _observed(rs)
    observed.children[("Deployment", "demo-api")]["spec"]["replicas"] = 9
    del observed.children[("Service", "demo-redis")]
    kube = FakeKube()
    outcome = _run(reconcile(rs, CFG, kube, observed))  # type: ignore[arg-type]
    assert sorted(outcome.applied) == ["Deployment/demo-api", "Service/demo-redis"]


def test_children_the_spec_dropped_are_deleted() -> None:
    old = make_rs({"api": {"autoscaling": {"enabled": True}}})
    observed = _observed(old)
    for child in observed.children.values():
        child["metadata"]["ownerReferences"] = [{"uid": "0000-uid"}]
    kube = FakeKube()
    outcome = _run(reconcile(make_rs(), CFG, kube, observed))  # type: ignore[arg-type]
    assert ("HorizontalPodAutoscaler", "demo-api") in kube.deleted
    assert "HorizontalPodAutoscaler/demo-api" in outcome.deleted


def test_missing_user_secret_is_degraded_and_retried() -> None:
    rs = make_rs(
        {
            "generation": {
                "provider": "openai",
                "model": "gpt",
                "apiKeySecretRef": {"name": "llm", "key": "key"},
            }
        }
    )
    outcome = _run(reconcile(rs, CFG, FakeKube(), Observed()))  # type: ignore[arg-type]
    assert outcome.status.phase == Phase.DEGRADED
    degraded = _cond(outcome.status, "Degraded")
    assert degraded.reason == "SecretNotFound"
    assert "spec.generation.apiKeySecretRef" in degraded.message
    assert outcome.retry_after is not None


def test_secret_without_the_key_is_reported() -> None:
    rs = make_rs({"api": {"apiKeysSecretRef": {"name": "keys", "key": "list"}}})
    kube = FakeKube(secrets={"keys": {"data": {"other": "eA=="}}})
    outcome = _run(reconcile(rs, CFG, kube, Observed()))  # type: ignore[arg-type]
    assert _cond(outcome.status, "ConfigReady").reason == "SecretKeyNotFound"


def test_api_error_becomes_a_retry_not_a_crash() -> None:
    kube = FakeKube(fail_apply=KubeError(500, "InternalError", "etcd timeout"))
    outcome = _run(reconcile(make_rs(), CFG, kube, Observed()))  # type: ignore[arg-type]
    assert outcome.retry_after is not None
    assert _cond(outcome.status, "Degraded").reason == "ApplyFailed"
