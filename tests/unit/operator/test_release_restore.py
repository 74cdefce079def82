"""Restore bootstrap (`rag_operator.release.restore`): pure decisions and their wiring.

Aspects covered:
- a system with spec.bootstrap.backup runs `rag-runtime restore --from URL --name NAME` as a
  Job once Postgres is ready, and neither the migration Job nor the Deployments before the
  restore succeeded; then the migration and, beside it, the workloads;
- the source is a Completed RagBackup (its recorded url and destination) or a location
  (s3 with endpoint and credentials, or a claim);
- a RagBackup that does not exist or is not Completed is Degraded naming
  spec.bootstrap.backup.name; a failed restore is Degraded and not run again;
- the model and the CRD refuse a bootstrap with both or neither of name and location, and an
  s3 location without credentials.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from rag_operator.builders import Release
from rag_operator.crd import build_crd
from rag_operator.models import MigrationPhase
from rag_operator.models.backup import BootstrapBackup
from rag_operator.models.ragbackup import RagBackup
from rag_operator.observed import Observed
from rag_operator.reconcile import reconcile
from rag_operator.release.restore import plan_restore, restore_job_name
from tests.unit.operator.fakes import FakeKube, ready
from tests.unit.operator.helpers import CFG, NO_CRDS, children, make_rs

NOW = "2026-03-01T10:00:00Z"
BY_NAME = {"bootstrap": {"backup": {"name": "nightly-1"}}}
S3_LOCATION = {
    "url": "s3://backups/team-a/old",
    "backupName": "b1",
    "endpoint": "http://s3:9000",
    "credentialsSecretRef": {"name": "s3"},
}


def _rb(phase: str = "Completed") -> RagBackup:
    return RagBackup.from_body(
        {
            "metadata": {"name": "nightly-1", "namespace": "team-a", "uid": "u"},
            "spec": {"systemRef": {"name": "old"}},
            "status": {
                "phase": phase,
                "url": "file:///backups/team-a/old",
                "backupName": "nightly-1",
                "destination": {"volume": {"claimName": "bk"}},
            },
        }
    )


def _job(condition: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if condition:
        status["conditions"] = [
            {
                "type": condition,
                "status": "True",
                "reason": "X",
                "message": "restore refused: embedding model differs",
            }
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "demo-restore"},
        "status": status,
    }


@pytest.mark.parametrize(
    ("rb", "job", "postgres", "phase", "done", "wants_job", "problem"),
    [
        (_rb(), None, False, MigrationPhase.PENDING, False, False, ""),
        (_rb(), None, True, MigrationPhase.RUNNING, False, True, ""),
        (_rb(), "running", True, MigrationPhase.RUNNING, False, True, ""),
        (_rb(), "Complete", True, MigrationPhase.SUCCEEDED, True, True, ""),
        (_rb(), "Failed", True, MigrationPhase.FAILED, False, True, "restore failed"),
        (None, None, True, MigrationPhase.PENDING, False, False, "spec.bootstrap.backup.name"),
        (
            _rb("Running"),
            None,
            True,
            MigrationPhase.PENDING,
            False,
            False,
            "spec.bootstrap.backup.name",
        ),
    ],
)
def test_restore_decisions(
    rb: RagBackup | None,
    job: str | None,
    postgres: bool,
    phase: MigrationPhase,
    done: bool,
    wants_job: bool,
    problem: str,
) -> None:
    rs = make_rs(BY_NAME)
    children_ = [_job(None if job == "running" else job)] if job else []
    plan = plan_restore(rs, Observed.from_items(children_), rb, postgres, NOW)
    assert plan.status is not None
    assert plan.status.phase is phase
    assert plan.done is done
    assert (plan.job is not None) is wants_job
    assert plan.problem.startswith(problem) if problem else plan.problem == ""
    if plan.job is not None:
        assert (plan.job.url, plan.job.name) == ("file:///backups/team-a/old", "nightly-1")


def test_finished_restore_is_not_run_again() -> None:
    for phase, done in (("Succeeded", True), ("Failed", False)):
        rs = make_rs(BY_NAME, status={"restore": {"phase": phase, "job": "demo-restore"}})
        plan = plan_restore(rs, Observed(), None, True, NOW)
        assert plan.job is None
        assert plan.done is done


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_restores_job_is_kept_while_it_exists(phase: str) -> None:
    """Its pod holds the logs: a failed restore's Job is not pruned under the user."""
    recorded = {
        "phase": phase,
        "job": "demo-restore",
        "url": "file:///backups/team-a/old",
        "backupName": "nightly-1",
        "destination": {"volume": {"claimName": "bk"}},
    }
    rs = make_rs(BY_NAME, status={"restore": recorded})
    plan = plan_restore(rs, Observed.from_items([_job(None)]), None, True, NOW)
    assert plan.job is not None
    assert (plan.job.url, plan.job.name) == ("file:///backups/team-a/old", "nightly-1")
    assert plan.done is (phase == "Succeeded")


def test_no_bootstrap_no_restore() -> None:
    plan = plan_restore(make_rs(), Observed(), None, True, NOW)
    assert plan.status is None
    assert plan.done


def test_restore_job_from_an_s3_location() -> None:
    rs = make_rs({"bootstrap": {"backup": {"location": S3_LOCATION}}})
    plan = plan_restore(rs, Observed(), None, True, NOW)
    assert plan.job is not None
    release = Release("0.1.0", restore_source=(plan.job.url, plan.job.name, plan.job.destination))
    job = next(c for c in children(rs, NO_CRDS, release) if c["kind"] == "Job")
    assert job["metadata"]["name"] == restore_job_name(rs)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["restore", "--from", "s3://backups/team-a/old", "--name", "b1"]
    env = {e["name"]: e for e in container["env"]}
    assert env["RAG_BACKUP_S3_ENDPOINT"]["value"] == "http://s3:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "s3"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "restore"


def _pass(rs: Any, observed: Observed, kube: FakeKube) -> Any:
    return asyncio.run(reconcile(rs, CFG, kube, observed, NO_CRDS))  # type: ignore[arg-type]


def test_restore_runs_before_the_migration_and_the_workloads() -> None:
    rs = make_rs({"bootstrap": {"backup": {"location": {**S3_LOCATION}}}})
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    kinds: list[set[str]] = []
    status = None
    for _ in range(5):
        kube = FakeKube()
        observed = Observed.from_items(list(seen.values()), [], frozenset({"database-url"}))
        out = _pass(rs, observed, kube)
        status = out.status
        rs = make_rs({"bootstrap": {"backup": {"location": {**S3_LOCATION}}}}, status=status.wire())
        kinds.append({f"{m['kind']}/{m['metadata']['name']}" for m in kube.applied})
        seen.update({(m["kind"], m["metadata"]["name"]): ready(m) for m in kube.applied})
    assert "Job/demo-restore" in kinds[1]
    assert not any(k.startswith("Job/demo-migrate") for k in kinds[1])
    assert not any(k.startswith("Deployment/") for k in kinds[0] | kinds[1])
    # Once the data is back, the workloads start beside the migration Job.
    assert any(k.startswith("Job/demo-migrate") for k in kinds[2])
    assert {"Deployment/demo-api", "Deployment/demo-worker"} <= kinds[2]
    assert status is not None
    assert status.restore is not None
    assert status.restore.phase is MigrationPhase.SUCCEEDED


def test_missing_ragbackup_is_degraded_naming_the_field() -> None:
    out = _pass(make_rs(BY_NAME), Observed(), FakeKube())
    degraded = next(c for c in out.status.conditions if c.type == "Degraded")
    assert degraded.reason == "RestoreFailed"
    assert "spec.bootstrap.backup.name" in degraded.message


@pytest.mark.parametrize(
    "boot",
    [
        {},
        {"name": "x", "location": S3_LOCATION},
        {"location": {k: v for k, v in S3_LOCATION.items() if k != "credentialsSecretRef"}},
        {"location": {"url": "http://x", "backupName": "b"}},
    ],
)
def test_bad_bootstrap_is_refused(boot: dict[str, Any]) -> None:
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    backup = spec["properties"]["bootstrap"]["properties"]["backup"]
    rules = [r["rule"] for r in backup["x-kubernetes-validations"]]
    loc_rules = [r["rule"] for r in backup["properties"]["location"]["x-kubernetes-validations"]]
    assert "has(self.name) != has(self.location)" in rules
    assert any("credentialsSecretRef" in r for r in loc_rules)
    with pytest.raises(ValidationError, match=r"bootstrap\.backup|url"):
        BootstrapBackup.model_validate(boot)
