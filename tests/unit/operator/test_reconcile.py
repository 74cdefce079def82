"""One reconcile pass against a fake API (no cluster).

Aspects covered: the first pass applies every child (stamped with its applied hash) and
creates the credentials Secret once; a second pass over an unchanged observed state writes
nothing; drift is re-applied; children the spec dropped are deleted, HTTPRoute and
ServiceMonitor included, but not those of a CRD the cluster no longer serves; an httpRoute
without the Gateway API is Degraded with the field; missing Secrets and keys are Degraded
and retried; API errors become a retry instead of a crash. Authentication by default: the
admin key Secret is generated once, anonymous access only when asked (condition, Warning).
Credentials are never drawn again over existing data: a deleted credentials Secret with the
stores' StatefulSets or volume claims still there is Degraded (CredentialsLost, with the way
back), a Secret that only lost its label is left alone; deletionPolicy Delete removes only a
credentials Secret the operator generated. Postgres counts as ready (the migration may start)
once its pod is, before its StatefulSet's status says so; a Job's pod does not count.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from rag_operator.builders import Release
from rag_operator.builders.common import labels
from rag_operator.children import Capabilities
from rag_operator.kube import KubeError
from rag_operator.models import Phase, RagSystem, RagSystemStatus
from rag_operator.models.naming import APPLIED_HASH_ANNOTATION
from rag_operator.observed import Observed, PodInfo
from rag_operator.reconcile import Outcome, finalize, reconcile
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
    # A first install: the Deployments at once, beside the stores; no Job before Postgres
    # is ready.
    assert len(kube.applied) == len(children(rs, release=Release(stable_version=rs.spec.version)))
    assert all(APPLIED_HASH_ANNOTATION in m["metadata"]["annotations"] for m in kube.applied)
    assert [c["metadata"]["name"] for c in kube.created] == ["demo-credentials", "demo-api-keys"]
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


def _api_keys_env(rs: RagSystem, secrets: dict[str, dict[str, Any]] | None = None) -> Any:
    """RAG_API_KEYS of the API Deployment once it exists (after the migration Job)."""
    api = converged(rs, NO_CRDS, secrets).children[("Deployment", "demo-api")]
    env = api["spec"]["template"]["spec"]["containers"][0]["env"]
    return next((e for e in env if e["name"] == "RAG_API_KEYS"), None)


def test_api_requires_a_generated_admin_key_by_default() -> None:
    rs = make_rs()
    kube = FakeKube()
    outcome = _run(rs, kube)
    secret = next(c for c in kube.created if c["metadata"]["name"] == "demo-api-keys")
    key = secret["stringData"]["admin-key"]
    assert len(key) >= 40
    assert ":" not in key
    assert "," not in key
    assert _api_keys_env(rs) == {
        "name": "RAG_API_KEYS",
        "valueFrom": {"secretKeyRef": {"name": "demo-api-keys", "key": "api-keys"}},
    }
    assert _cond(outcome.status, "AnonymousAccess").status == "False"
    assert _cond(outcome.status, "AnonymousAccess").reason == "GeneratedAdminKey"
    assert not [e for e in outcome.events if e[0] == "Warning"]


def test_existing_admin_key_is_never_overwritten() -> None:
    rs = make_rs()
    observed = _applied_state(rs)
    assert "demo-api-keys" in observed.secrets
    kube = FakeKube()
    _run(rs, kube, observed)
    assert kube.created == []


def test_api_keys_from_the_spec_need_no_generated_key() -> None:
    rs = make_rs({"api": {"apiKeysSecretRef": {"name": "mine", "key": "keys"}}})
    kube = FakeKube(secrets={"mine": {"data": {"keys": "WyJrIl0="}}})
    outcome = _run(rs, kube)
    assert "demo-api-keys" not in [c["metadata"]["name"] for c in kube.created]
    env = _api_keys_env(rs, {"mine": {"data": {"keys": "WyJrIl0="}}})
    assert env["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "keys"}
    assert _cond(outcome.status, "AnonymousAccess").reason == "ApiKeysFromSecret"


def test_anonymous_access_only_when_asked_shown_in_status_and_a_warning() -> None:
    rs = make_rs({"api": {"auth": {"anonymous": True}}})
    kube = FakeKube()
    outcome = _run(rs, kube)
    assert "demo-api-keys" not in [c["metadata"]["name"] for c in kube.created]
    assert _api_keys_env(rs) is None
    config = converged(rs, NO_CRDS).children[("ConfigMap", "demo-config")]
    assert config["data"]["RAG_ALLOW_ANONYMOUS"] == "true"  # else the runtime refuses to start
    cond = _cond(outcome.status, "AnonymousAccess")
    assert (cond.status, cond.reason) == ("True", "AnonymousAccessEnabled")
    warnings = [e for e in outcome.events if e[:2] == ("Warning", "AnonymousAccess")]
    assert len(warnings) == 1
    assert "spec.api.auth.anonymous" in warnings[0][2]
    # Once shown, the warning is not repeated on every pass.
    again = _run(
        make_rs({"api": {"auth": {"anonymous": True}}}, status=outcome.status.wire()), kube
    )
    assert not [e for e in again.events if e[1] == "AnonymousAccess"]


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


def _without_credentials(rs: RagSystem) -> Observed:
    """The caches of a running system whose credentials Secret was deleted."""
    observed = _applied_state(rs)
    observed.credentials_keys = None
    return observed


def test_deleted_credentials_with_running_stores_are_never_regenerated() -> None:
    rs = make_rs()
    kube = FakeKube()
    outcome = _run(rs, kube, _without_credentials(rs))
    assert kube.created == []
    assert outcome.status.phase == Phase.DEGRADED
    degraded = _cond(outcome.status, "Degraded")
    assert degraded.reason == "CredentialsLost"
    assert "re-create Secret 'demo-credentials'" in degraded.message
    assert "postgres, redis" in degraded.message
    assert outcome.retry_after is not None


def test_deleted_credentials_with_only_volume_claims_left_are_never_regenerated() -> None:
    rs = make_rs()
    kube = FakeKube()
    kube.pvcs = [{"metadata": {"name": "data-demo-postgres-0", "labels": labels(rs, "postgres")}}]
    outcome = _run(rs, kube, Observed())  # StatefulSets gone too (e.g. RagSystem re-created)
    assert [c["metadata"]["name"] for c in kube.created] == ["demo-api-keys"]
    assert _cond(outcome.status, "Degraded").reason == "CredentialsLost"


def test_credentials_secret_that_lost_its_label_is_left_alone() -> None:
    rs = make_rs()
    kube = FakeKube(secrets={"demo-credentials": {"metadata": {"name": "demo-credentials"}}})
    outcome = _run(rs, kube, _without_credentials(rs))
    assert kube.created == []
    assert outcome.status.phase != Phase.DEGRADED


def _finalized(secret: dict[str, Any]) -> list[tuple[str, str]]:
    rs = make_rs({"deletionPolicy": "Delete"})
    kube = FakeKube(secrets={"demo-credentials": secret})
    asyncio.run(finalize(rs, kube))  # type: ignore[arg-type]
    return kube.deleted


def test_delete_policy_removes_the_generated_credentials() -> None:
    rs = make_rs()
    ours = {"metadata": {"name": "demo-credentials", "labels": labels(rs, "config")}}
    assert ("Secret", "demo-credentials") in _finalized(ours)


def test_delete_policy_keeps_credentials_the_operator_did_not_create() -> None:
    theirs = {"metadata": {"name": "demo-credentials", "labels": {"team": "a"}}}
    assert ("Secret", "demo-credentials") not in _finalized(theirs)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_an_older_credentials_secret_gets_only_its_missing_keys() -> None:
    rs = make_rs()
    old = {
        "postgres-password": "old-pg",
        "database-url": "postgresql://rag:old-pg@demo-postgres:5432/rag",
        "redis-password": "old-rd",
        "redis-url": "redis://:old-rd@demo-redis:6379/0",
        "neo4j-password": "old-nj",
        "neo4j-auth": "neo4j/old-nj",
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "demo-credentials", "labels": labels(rs, "config")},
        "data": {k: _b64(v) for k, v in old.items()},
    }
    observed = _applied_state(rs)
    observed.credentials_keys = frozenset(old)
    kube = FakeKube(secrets={"demo-credentials": secret})
    _run(rs, kube, observed)
    ((name, patch),) = kube.patched
    assert name == "demo-credentials"
    added = patch["stringData"]
    assert set(added) == {"postgres-superuser-password", "redis.conf"}
    assert added["redis.conf"].startswith("requirepass old-rd\n")
    assert kube.created == []


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


def _earlier(rs: RagSystem) -> Observed:
    """What the caches hold right after a system of the same name was deleted: its children,
    owned by that one's uid, not yet deleted by the garbage collector."""
    old = make_rs()
    observed = _applied_state(old)
    for child in observed.children.values():
        for owner in child["metadata"].get("ownerReferences") or []:
            if owner["kind"] == "RagSystem":
                owner["uid"] = "earlier-uid"
    assert rs.metadata.uid != "earlier-uid"
    return observed


def test_a_system_recreated_under_a_deleted_ones_name_waits_for_its_children_to_go() -> None:
    rs = make_rs()
    kube = FakeKube()
    outcome = _run(rs, kube, _earlier(rs))
    # Nothing adopted, nothing deleted (the garbage collector's job), no backoff: a requeue.
    assert (kube.applied, kube.created, kube.deleted) == ([], [], [])
    assert outcome.retry_after is None
    assert outcome.requeue_after == 1.0
    assert outcome.status.phase == Phase.PENDING  # nothing of this system exists yet
    progressing = _cond(outcome.status, "Progressing")
    assert progressing.status == "True"
    assert "left by an earlier RagSystem demo" in progressing.message
    assert "StatefulSet/demo-postgres" in progressing.message or " more" in progressing.message
    assert _cond(outcome.status, "Degraded").status == "False"
    # Once they are gone, the first pass applies everything.
    after = _run(rs, kube := FakeKube(), Observed())
    assert kube.applied
    assert after.requeue_after != 1.0


def test_a_recreated_system_waits_for_the_earlier_ones_claims_to_go() -> None:
    """Its StatefulSets gone, an earlier system's claims may still terminate (until their
    pods are gone): counted as data they would have the fresh credentials refused as lost
    for good, so the new system waits for them, applying nothing."""
    rs = make_rs()
    kube = FakeKube()
    meta = {"name": "data-demo-postgres-0", "labels": labels(rs, "postgres")}
    kube.pvcs = [{"metadata": {**meta, "deletionTimestamp": "2026-12-03T02:50:29Z"}}]
    outcome = _run(rs, kube, Observed())
    assert (kube.applied, kube.created, kube.deleted) == ([], [], [])
    assert outcome.requeue_after == 1.0
    progressing = _cond(outcome.status, "Progressing")
    assert "PersistentVolumeClaim/data-demo-postgres-0" in progressing.message
    assert _cond(outcome.status, "Degraded").status == "False"
    # Gone: the credentials are drawn and everything applied. (Still there but not being
    # deleted, they are data: test_deleted_credentials_with_only_volume_claims_left...)
    kube.pvcs = []
    after = _run(rs, kube, Observed())
    assert any(m["kind"] == "Secret" for m in kube.created)
    assert kube.applied
    assert _cond(after.status, "Degraded").status == "False"


def test_children_of_other_owners_are_not_an_earlier_system() -> None:
    from rag_operator.observed import earlier_system_children

    rs = make_rs()
    observed = _applied_state(rs)
    assert earlier_system_children(observed, rs.metadata.uid) == []
    backup_job = {
        "kind": "Job",
        "metadata": {
            "name": "demo-backup-1",
            "ownerReferences": [{"kind": "RagBackup", "uid": "b", "name": "nightly"}],
        },
    }
    claim = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data-demo-postgres-0"}}
    mixed = Observed.from_items([*observed.children.values(), backup_job, claim])
    assert earlier_system_children(mixed, rs.metadata.uid) == []
    assert earlier_system_children(mixed, "another-uid") == sorted(observed.children)


@pytest.mark.parametrize(
    ("pods", "sts_ready", "expected"),
    [
        ([PodInfo("demo-postgres-0", "postgres", True)], 0, True),  # before the StatefulSet says
        ([PodInfo("demo-postgres-0", "postgres", False)], 0, False),
        ([PodInfo("demo-postgres-0", "postgres", False)], 1, True),
        ([PodInfo("demo-migrate-x", "postgres", True, job="demo-migrate-x")], 0, False),
        ([PodInfo("demo-api-1", "api", True)], 0, False),
    ],
)
def test_postgres_is_ready_once_its_pod_is(
    pods: list[PodInfo], sts_ready: int, expected: bool
) -> None:
    from rag_operator.reconcile import postgres_ready

    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "demo-postgres"},
        "status": {"readyReplicas": sts_ready},
    }
    assert postgres_ready(make_rs(), Observed.from_items([sts], pods)) is expected
