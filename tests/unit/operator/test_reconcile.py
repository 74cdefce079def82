"""One reconcile pass against a fake API (no cluster).

Aspects covered: the first pass applies every child (stamped with its applied hash) and
creates the credentials Secret once; a second pass over an unchanged observed state writes
nothing; drift is re-applied; children the spec dropped are deleted, HTTPRoute and
ServiceMonitor included, but not those of a CRD the cluster no longer serves; an httpRoute
without the Gateway API is Degraded with the field; missing Secrets and keys are Degraded
and retried; API errors become a retry instead of a crash.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rag_operator.builders import Release
from rag_operator.children import Capabilities
from rag_operator.kube import KubeError
from rag_operator.models import Phase, RagSystem, RagSystemStatus
from rag_operator.models.naming import APPLIED_HASH_ANNOTATION
from rag_operator.observed import Observed, PodInfo
from rag_operator.reconcile import Outcome, reconcile
from tests.unit.operator.fakes import FakeKube, converged, ready
from tests.unit.operator.helpers import ALL_CRDS, CFG, NO_CRDS, children, make_rs


def _run(
    rs: RagSystem, kube: FakeKube, observed: Observed | None = None, caps: Capabilities = NO_CRDS
) -> Outcome:
    return asyncio.run(reconcile(rs, CFG, kube, observed or Observed(), caps))  # type: ignore[arg-type]


def _applied_state(rs: RagSystem, caps: Capabilities = NO_CRDS) -> Observed:
    """The watch caches once passes applied everything and the pods (and the migration Job
    after Postgres) became ready: the stores first, then the Job, then the Deployments."""
    observed: Observed = converged(rs, caps)
    return observed


def _cond(status: RagSystemStatus, type_: str) -> Any:
    return next(c for c in status.conditions if c.type == type_)


def test_first_pass_applies_every_child_and_creates_credentials_once() -> None:
    rs = make_rs()
    kube = FakeKube()
    outcome = _run(rs, kube)
    # No Deployment before the migration Job succeeded, no Job before Postgres is ready.
    assert len(kube.applied) == len(children(rs, release=Release(stable_version=None)))
    assert all(APPLIED_HASH_ANNOTATION in m["metadata"]["annotations"] for m in kube.applied)
    assert [c["metadata"]["name"] for c in kube.created] == ["demo-credentials"]
    assert outcome.status.phase == Phase.PROGRESSING
    assert outcome.status_changed
    assert ("Normal", "Created", "created the system's children") in outcome.events
    assert outcome.retry_after is None


def test_unchanged_ready_system_writes_nothing() -> None:
    rs = make_rs()
    observed = _applied_state(rs)
    first = _run(rs, FakeKube(), observed).status
    rs = make_rs(status=first.wire())
    kube = FakeKube()
    outcome = _run(rs, kube, _applied_state(rs))
    assert kube.applied == []
    assert kube.created == []
    assert not outcome.status_changed


def test_drifted_child_is_applied_again() -> None:
    rs = make_rs()
    observed = _applied_state(rs)
    observed.children[("Deployment", "demo-api")]["spec"]["replicas"] = 9
    del observed.children[("Service", "demo-redis")]
    outcome = _run(rs, FakeKube(), observed)
    assert sorted(outcome.applied) == ["Deployment/demo-api", "Service/demo-redis"]


def test_children_the_spec_dropped_are_deleted() -> None:
    observed = _applied_state(make_rs({"api": {"autoscaling": {"enabled": True}}}))
    kube = FakeKube()
    outcome = _run(make_rs(), kube, observed)
    assert ("HorizontalPodAutoscaler", "demo-api") in kube.deleted
    assert "HorizontalPodAutoscaler/demo-api" in outcome.deleted


def test_route_and_monitor_the_spec_dropped_are_deleted() -> None:
    route = {"api": {"exposure": {"httpRoute": {"parentRefs": [{"name": "gw"}]}}}}
    observed = _applied_state(make_rs(route), ALL_CRDS)
    assert ("HTTPRoute", "demo-api") in observed.children
    kube = FakeKube()
    _run(make_rs({"monitoring": {"enabled": False}}), kube, observed, ALL_CRDS)
    assert {("HTTPRoute", "demo-api"), ("ServiceMonitor", "demo-api")} <= set(kube.deleted)


def test_children_of_a_crd_no_longer_served_are_left_alone() -> None:
    observed = _applied_state(make_rs(), ALL_CRDS)
    assert ("ServiceMonitor", "demo-api") in observed.children
    kube = FakeKube()
    _run(make_rs(), kube, observed, NO_CRDS)
    assert kube.deleted == []


def test_children_owned_by_someone_else_are_not_deleted() -> None:
    observed = _applied_state(make_rs({"api": {"autoscaling": {"enabled": True}}}))
    hpa = observed.children[("HorizontalPodAutoscaler", "demo-api")]
    hpa["metadata"]["ownerReferences"] = [{"uid": "another-owner"}]
    kube = FakeKube()
    _run(make_rs(), kube, observed)
    assert kube.deleted == []


def test_route_without_gateway_api_is_degraded_naming_the_field() -> None:
    rs = make_rs({"api": {"exposure": {"httpRoute": {"parentRefs": [{"name": "gw"}]}}}})
    kube = FakeKube()
    outcome = _run(rs, kube, caps=NO_CRDS)
    degraded = _cond(outcome.status, "Degraded")
    assert degraded.reason == "GatewayAPINotInstalled"
    assert "spec.api.exposure.httpRoute" in degraded.message
    assert not any(m["kind"] == "HTTPRoute" for m in kube.applied)
    assert _run(rs, FakeKube(), caps=ALL_CRDS).status.phase != Phase.DEGRADED


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
    outcome = _run(rs, FakeKube())
    assert outcome.status.phase == Phase.DEGRADED
    degraded = _cond(outcome.status, "Degraded")
    assert degraded.reason == "SecretNotFound"
    assert "spec.generation.apiKeySecretRef" in degraded.message
    assert outcome.retry_after is not None


def test_secret_without_the_key_is_reported() -> None:
    rs = make_rs({"api": {"apiKeysSecretRef": {"name": "keys", "key": "list"}}})
    outcome = _run(rs, FakeKube(secrets={"keys": {"data": {"other": "eA=="}}}))
    assert _cond(outcome.status, "ConfigReady").reason == "SecretKeyNotFound"


@pytest.mark.parametrize(("status", "retry"), [(500, 2.0), (409, 2.0), (422, 30.0)])
def test_api_error_becomes_a_retry_not_a_crash(status: int, retry: float) -> None:
    kube = FakeKube(fail_apply=KubeError(status, "Failed", "etcd timeout"))
    outcome = _run(make_rs(), kube)
    assert outcome.retry_after == retry
    assert _cond(outcome.status, "Degraded").reason == "ApplyFailed"


def _image(observed: Observed, name: str) -> str:
    dep = observed.children[("Deployment", name)]
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def test_upgrade_with_a_failed_migration_keeps_the_old_version_and_says_why() -> None:
    v1 = make_rs()
    observed = _applied_state(v1)
    good = _run(v1, FakeKube(), observed).status
    assert (good.version, good.last_good_version, good.phase) == ("0.1.0", "0.1.0", Phase.READY)
    v2 = make_rs({"version": "0.2.0"}, generation=2, status=good.wire())
    kube = FakeKube()
    started = _run(v2, kube, observed)
    jobs = [m for m in kube.applied if m["kind"] == "Job"]
    assert [j["spec"]["template"]["spec"]["containers"][0]["image"] for j in jobs] == [
        "ghcr.io/ragops/rag-runtime:0.2.0"
    ]
    assert not any(m["kind"] == "Deployment" for m in kube.applied)
    assert _cond(started.status, "MigrationSucceeded").reason == "Running"
    assert started.status.phase == Phase.PROGRESSING
    assert any(e[1] == "MigrationStarted" for e in started.events)
    job = ready(jobs[0])
    job["status"] = {
        "failed": 3,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        ],
    }
    pod = PodInfo(
        "p",
        "migrate",
        False,
        job=jobs[0]["metadata"]["name"],
        terminated_message="boom: column exists",
        finished_at="2026-01-01T00:00:00Z",
    )
    observed.children[("Job", jobs[0]["metadata"]["name"])] = job
    observed.pods.append(pod)
    v2 = make_rs({"version": "0.2.0"}, generation=2, status=started.status.wire())
    kube = FakeKube()
    failed = _run(v2, kube, observed)
    assert not any(m["kind"] == "Deployment" for m in kube.applied)
    assert _image(observed, "demo-api").endswith(":0.1.0")
    status = failed.status
    assert (status.version, status.desired_version, status.last_good_version) == (
        "0.1.0",
        "0.2.0",
        "0.1.0",
    )
    degraded = _cond(status, "Degraded")
    assert degraded.reason == "MigrationFailed"
    assert "boom: column exists" in degraded.message
    assert "0.1.0 keeps serving" in degraded.message
    assert _cond(status, "MigrationSucceeded").status.value == "False"
    assert _cond(status, "ApiReady").status.value == "True"
    assert _cond(status, "ConfigReady").status.value == "True"
    assert any(e[0] == "Warning" and e[1] == "MigrationFailed" for e in failed.events)


def test_successful_migration_moves_the_deployments() -> None:
    v1 = make_rs()
    observed = _applied_state(v1)
    good = _run(v1, FakeKube(), observed).status
    v2 = make_rs({"version": "0.2.0"}, generation=2, status=good.wire())
    kube = FakeKube()
    started = _run(v2, kube, observed)
    job = next(m for m in kube.applied if m["kind"] == "Job")
    observed.children[("Job", job["metadata"]["name"])] = ready(job)
    v2 = make_rs({"version": "0.2.0"}, generation=2, status=started.status.wire())
    kube = FakeKube()
    done = _run(v2, kube, observed)
    images = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for m in kube.applied
        if m["kind"] == "Deployment"
    }
    assert images == {
        "demo-api": "ghcr.io/ragops/rag-runtime:0.2.0",
        "demo-worker": "ghcr.io/ragops/rag-runtime:0.2.0",
    }
    assert _cond(done.status, "MigrationSucceeded").reason == "Succeeded"
    assert done.status.version == "0.1.0"  # until the new pods are rolled out
    assert any(e[1] == "MigrationSucceeded" for e in done.events)


def test_pre_upgrade_backup_job_is_built_of_the_serving_version() -> None:
    backup = {
        "schedule": "@daily",
        "retention": {"keepLast": 3},
        "destination": {"volume": {"claimName": "bk"}},
    }
    v1 = make_rs({"backup": backup})
    observed = _applied_state(v1)
    good = _run(v1, FakeKube(), observed).status
    v2 = make_rs({"version": "0.2.0", "backup": backup}, generation=2, status=good.wire())
    kube = FakeKube()
    outcome = _run(v2, kube, observed)
    jobs = [m for m in kube.applied if m["kind"] == "Job"]
    assert len(jobs) == 1
    container = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":0.1.0")
    assert container["args"][:2] == ["backup", "create"]
    assert _cond(outcome.status, "MigrationSucceeded").reason == "Pending"
