"""The migration gate (`rag_operator.release.migration`): pure decisions.

Aspects covered:
- a first install creates no Job until Postgres is ready, then a Job of the desired image;
  its Deployments run the desired version at once, beside the migration (nothing serves yet),
  unless a restore holds them back; while that migration runs they wait without a timeout;
- an upgrade keeps the Deployments on the version they run until the new version's Job
  succeeded; a failed Job keeps the old version, with the Job's reason and the failed pod's
  last log lines in the message;
- a failed attempt is not retried on its own; a spec change or a new value of the
  `ragops.io/retry-migration` annotation starts a new Job (a new name); a running or
  succeeded attempt keeps its Job whatever else changes in the spec;
- a finished Job that was deleted is not made again;
- the status keeps start and completion times; the pod index keeps the termination message.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.models import MigrationPhase
from rag_operator.models.naming import RETRY_MIGRATION_ANNOTATION
from rag_operator.observed import Observed, PodInfo, pod_info
from rag_operator.release.migration import (
    current_attempt,
    job_name,
    job_state,
    plan_migration,
    stable_version,
)
from tests.unit.operator.helpers import make_rs

NOW = "2026-01-01T00:00:00Z"
IMAGE = "ghcr.io/ragops/rag-runtime"


def _deployment(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"image": f"{IMAGE}:{version}"}]}}},
    }


def _job(name: str, condition: str | None, message: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if condition:
        status["conditions"] = [
            {
                "type": condition,
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": message,
                "lastTransitionTime": "2026-01-01T00:01:00Z",
            }
        ]
    if condition == "Complete":
        status["succeeded"] = 1
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "status": status}


def _migration(version: str, phase: str, generation: int = 1, token: str = "") -> dict[str, Any]:
    image = f"{IMAGE}:{version}"
    return {
        "version": version,
        "image": image,
        "job": job_name(make_rs(), image, generation, token),
        "phase": phase,
        "attemptGeneration": generation,
        "retryToken": token,
    }


def _rs(
    version: str = "0.2.0",
    generation: int = 1,
    migration: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> Any:
    status = {"migration": migration} if migration else None
    rs = make_rs({"version": version}, generation=generation, status=status)
    if annotations:
        meta = rs.metadata.model_copy(update={"annotations": annotations})
        rs = rs.model_copy(update={"metadata": meta})
    return rs


@pytest.mark.parametrize(
    ("deployed", "job", "postgres", "phase", "stable", "wants_job"),
    [
        # First install: nothing serves, the Deployments start beside the migration.
        (None, None, False, MigrationPhase.PENDING, "0.2.0", False),
        (None, None, True, MigrationPhase.RUNNING, "0.2.0", True),
        (None, "running", True, MigrationPhase.RUNNING, "0.2.0", True),
        (None, "Complete", True, MigrationPhase.SUCCEEDED, "0.2.0", True),
        (None, "Failed", True, MigrationPhase.FAILED, "0.2.0", True),
        # Upgrade 0.1.0 -> 0.2.0.
        ("0.1.0", None, True, MigrationPhase.RUNNING, "0.1.0", True),
        ("0.1.0", "running", True, MigrationPhase.RUNNING, "0.1.0", True),
        ("0.1.0", "Failed", True, MigrationPhase.FAILED, "0.1.0", True),
        ("0.1.0", "FailureTarget", True, MigrationPhase.FAILED, "0.1.0", True),
        ("0.1.0", "Complete", True, MigrationPhase.SUCCEEDED, "0.2.0", True),
    ],
)
def test_deployments_move_only_after_the_job_succeeded(
    deployed: str | None,
    job: str | None,
    postgres: bool,
    phase: MigrationPhase,
    stable: str | None,
    wants_job: bool,
) -> None:
    rs = _rs()
    name = current_attempt(rs).job
    children = []
    if deployed:
        children.append(_deployment("demo-api", deployed))
    if job:
        children.append(_job(name, None if job == "running" else job))
    plan = plan_migration(rs, Observed.from_items(children), postgres, NOW)
    assert plan.status.phase is phase
    assert plan.stable_version == stable
    assert plan.job is wants_job
    assert plan.status.job == name


def test_failure_message_has_the_jobs_reason_and_the_pods_last_log_lines() -> None:
    rs = _rs()
    name = current_attempt(rs).job
    pods = [
        PodInfo(
            "p1",
            "migrate",
            False,
            job=name,
            terminated_message="first try",
            finished_at="2026-01-01T00:00:10Z",
        ),
        PodInfo(
            "p2",
            "migrate",
            False,
            job=name,
            terminated_message="Traceback...\nalembic: relation x exists",
            finished_at="2026-01-01T00:00:50Z",
        ),
        PodInfo(
            "p3",
            "migrate",
            False,
            job="other",
            terminated_message="not mine",
            finished_at="2026-01-01T00:09:00Z",
        ),
    ]
    observed = Observed.from_items(
        [
            _deployment("demo-api", "0.1.0"),
            _job(name, "Failed", "Job has reached the backoff limit"),
        ],
        pods,
    )
    plan = plan_migration(rs, observed, True, NOW)
    assert plan.failed
    assert "BackoffLimitExceeded" in plan.status.message
    assert "alembic: relation x exists" in plan.status.message
    assert "not mine" not in plan.status.message
    assert plan.status.completed_at == "2026-01-01T00:01:00Z"


@pytest.mark.parametrize(
    ("generation", "annotations", "new_attempt"),
    [
        (1, None, False),  # nothing changed: stays failed
        (2, None, True),  # the spec changed
        (1, {RETRY_MIGRATION_ANNOTATION: "1"}, True),  # a retry was asked for
    ],
)
def test_failed_attempt_retries_only_on_spec_change_or_request(
    generation: int, annotations: dict[str, str] | None, new_attempt: bool
) -> None:
    rs = _rs(
        generation=generation, migration=_migration("0.2.0", "Failed"), annotations=annotations
    )
    attempt = current_attempt(rs)
    old = _migration("0.2.0", "Failed")["job"]
    assert (attempt.job != old) is new_attempt
    assert (attempt.phase is MigrationPhase.PENDING) is new_attempt


@pytest.mark.parametrize("phase", ["Running", "Succeeded"])
def test_running_or_succeeded_attempt_keeps_its_job_when_the_spec_changes(phase: str) -> None:
    rs = _rs(generation=5, migration=_migration("0.2.0", phase))
    assert current_attempt(rs).job == _migration("0.2.0", phase)["job"]


def test_a_new_version_is_a_new_attempt() -> None:
    rs = _rs(version="0.3.0", migration=_migration("0.2.0", "Succeeded"))
    attempt = current_attempt(rs)
    assert attempt.version == "0.3.0"
    assert attempt.job != _migration("0.2.0", "Succeeded")["job"]
    assert attempt.phase is MigrationPhase.PENDING


@pytest.mark.parametrize(("phase", "stable"), [("Succeeded", "0.2.0"), ("Failed", "0.1.0")])
def test_finished_job_deleted_is_not_made_again(phase: str, stable: str) -> None:
    rs = _rs(migration=_migration("0.2.0", phase))
    plan = plan_migration(rs, Observed.from_items([_deployment("demo-api", "0.1.0")]), True, NOW)
    assert plan.job is False
    assert plan.status.phase.value == phase
    assert plan.stable_version == stable


@pytest.mark.parametrize("postgres", [False, True])
def test_a_restore_holds_a_first_installs_deployments_back(postgres: bool) -> None:
    plan = plan_migration(_rs(), Observed(), postgres, NOW, hold="waiting for the restore")
    assert plan.stable_version is None
    assert plan.workloads_wait is True
    assert plan.job is False


@pytest.mark.parametrize(
    ("deployed", "job", "waits"),
    [
        (None, None, True),  # first install, migration pending: pods wait for the schema
        (None, "running", True),
        (None, "Complete", False),
        (None, "Failed", False),  # a failure is a problem of its own, not a wait
        ("0.1.0", "running", False),  # an upgrade: the old version serves meanwhile
    ],
)
def test_workloads_wait_for_the_migration_of_the_version_they_run(
    deployed: str | None, job: str | None, waits: bool
) -> None:
    rs = _rs()
    children = [_deployment("demo-api", deployed)] if deployed else []
    if job:
        children.append(_job(current_attempt(rs).job, None if job == "running" else job))
    plan = plan_migration(rs, Observed.from_items(children), True, NOW)
    assert plan.workloads_wait is waits


def test_stable_version_is_the_workers_when_there_is_no_api() -> None:
    rs = _rs()
    observed = Observed.from_items([_deployment("demo-worker", "0.1.0")])
    assert stable_version(rs, observed, current_attempt(rs)) == "0.1.0"


def test_job_names_are_short_enough_for_labels() -> None:
    rs = make_rs(name="a" * 40)
    assert len(job_name(rs, "x" * 200, 10**9, "token")) <= 63


def test_job_state_none_without_a_job() -> None:
    assert job_state(None, []) is None


def test_pod_index_keeps_the_job_and_its_termination_message() -> None:
    pod = {
        "metadata": {
            "name": "demo-migrate-x-abc",
            "labels": {
                "app.kubernetes.io/component": "migrate",
                "batch.kubernetes.io/job-name": "demo-migrate-x",
            },
        },
        "status": {
            "containerStatuses": [
                {
                    "state": {
                        "terminated": {
                            "exitCode": 3,
                            "message": "database unavailable",
                            "finishedAt": "2026-01-01T00:00:05Z",
                        }
                    }
                }
            ]
        },
    }
    info = pod_info(pod)
    assert info.job == "demo-migrate-x"
    assert info.terminated_message == "database unavailable"
    assert info.finished_at == "2026-01-01T00:00:05Z"


BACKUP = {
    "schedule": "@daily",
    "retention": {"keepLast": 3},
    "destination": {"volume": {"claimName": "bk"}},
}


def _upgrade_with_backups(before_upgrade: bool = True) -> Any:
    spec = {"version": "0.2.0", "backup": {**BACKUP, "beforeUpgrade": before_upgrade}}
    return make_rs(spec)


def test_upgrade_backs_up_the_serving_version_before_the_migration() -> None:
    rs = _upgrade_with_backups()
    observed = Observed.from_items([_deployment("demo-api", "0.1.0")])
    plan = plan_migration(rs, observed, True, NOW)
    assert plan.job is False
    assert plan.status.phase is MigrationPhase.PENDING
    assert plan.backup == (f"{plan.status.job}-bk", "0.1.0")
    assert "backing up 0.1.0 first" in plan.status.message
    # The backup succeeded: now the migration Job, and the backup Job is kept as a record.
    backup = _job(f"{plan.status.job}-bk", "Complete")
    backup["metadata"]["annotations"] = {"ragops.io/version": "0.1.0"}
    observed = Observed.from_items([_deployment("demo-api", "0.1.0"), backup])
    plan = plan_migration(rs, observed, True, NOW)
    assert plan.job is True
    assert plan.status.phase is MigrationPhase.RUNNING
    assert plan.status.backup_job == f"{plan.status.job}-bk"
    assert plan.backup == (f"{plan.status.job}-bk", "0.1.0")


def test_failed_pre_upgrade_backup_migrates_nothing() -> None:
    rs = _upgrade_with_backups()
    name = current_attempt(rs).job
    observed = Observed.from_items(
        [_deployment("demo-api", "0.1.0"), _job(f"{name}-bk", "Failed", "no space")]
    )
    plan = plan_migration(rs, observed, True, NOW)
    assert plan.failed
    assert plan.job is False
    assert plan.stable_version == "0.1.0"
    assert "backup before the upgrade failed" in plan.status.message


@pytest.mark.parametrize(
    ("spec", "deployed"),
    [
        ({"version": "0.2.0", "backup": {**BACKUP, "beforeUpgrade": False}}, "0.1.0"),
        ({"version": "0.2.0"}, "0.1.0"),  # no backups configured
        ({"version": "0.2.0", "backup": BACKUP}, None),  # first install: nothing to back up
    ],
)
def test_no_pre_upgrade_backup(spec: dict[str, Any], deployed: str | None) -> None:
    children = [_deployment("demo-api", deployed)] if deployed else []
    plan = plan_migration(make_rs(spec), Observed.from_items(children), True, NOW)
    assert plan.backup is None
    assert plan.job is True


@pytest.mark.parametrize("deployments", [False, True])
def test_workloads_waiting_for_the_first_migration_never_time_out(deployments: bool) -> None:
    from rag_operator.conditions import compute_status
    from tests.unit.operator.helpers import CFG

    long_ago = "2020-01-01T00:00:00Z"
    old = [
        {"type": t, "status": "False", "reason": "x", "message": "", "lastTransitionTime": long_ago}
        for t in ("ApiReady", "WorkerReady")
    ]
    rs = make_rs(status={"conditions": old})
    version = rs.spec.version
    observed = Observed.from_items(
        [_deployment("demo-api", version), _deployment("demo-worker", version)]
        if deployments
        else []
    )
    plan = plan_migration(rs, observed, False, NOW)
    status = compute_status(rs, CFG, observed, [], set(), NOW, "h", migration=plan)
    conds = {c.type: c for c in status.conditions}
    assert conds["ApiReady"].reason == "WaitingForMigration"
    assert conds["WorkerReady"].reason == "WaitingForMigration"
    assert conds["Degraded"].status.value == "False"
    assert status.phase.value in ("Pending", "Progressing")


def test_a_crash_while_waiting_for_the_first_migration_is_a_problem() -> None:
    from rag_operator.conditions import compute_status
    from tests.unit.operator.helpers import CFG

    rs = make_rs()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "demo-api-1", "labels": {"app.kubernetes.io/component": "api"}},
        "status": {
            "containerStatuses": [
                {"name": "api", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]
        },
    }
    observed = Observed.from_items([_deployment("demo-api", rs.spec.version)], [pod_info(pod)])
    plan = plan_migration(rs, observed, True, NOW)
    status = compute_status(rs, CFG, observed, [], set(), NOW, "h", migration=plan)
    conds = {c.type: c for c in status.conditions}
    assert conds["ApiReady"].reason == "CrashLoopBackOff"
    assert conds["Degraded"].status.value == "True"


def test_ready_after_degraded_then_migrating_is_recovered() -> None:
    from rag_operator.conditions import events_for
    from rag_operator.models import RagSystemStatus

    def cond(type_: str, status: str, at: str) -> dict[str, Any]:
        return {"type": type_, "status": status, "reason": "x", "lastTransitionTime": at}

    migrating = RagSystemStatus.model_validate(
        {
            "phase": "Progressing",
            "conditions": [
                cond("Ready", "False", "2026-01-01T00:00:00Z"),
                cond("Degraded", "False", "2026-01-01T00:01:00Z"),  # was True until then
            ],
        }
    )
    ready = RagSystemStatus.model_validate({"phase": "Ready"})
    assert ("Normal", "Recovered", "recovered: all components are ready") in events_for(
        migrating, ready, False
    )
    fresh = RagSystemStatus.model_validate(
        {
            "phase": "Progressing",
            "conditions": [
                cond("Ready", "False", "2026-01-01T00:00:00Z"),
                cond("Degraded", "False", "2026-01-01T00:00:00Z"),
            ],
        }
    )
    assert ("Normal", "Ready", "all components are ready") in events_for(fresh, ready, False)
