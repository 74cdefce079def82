"""On-demand backups (`rag_operator.backup`) and the backup part of a RagSystem's status.

Aspects covered:
- a RagBackup of a system runs one Job (`backup create --to LOCATION --name NAME`), owned by
  the RagBackup, of the version the system runs; Running until the Job finishes;
- Completed records the CLI's JSON result (size, counts, location) from the termination
  message, with Complete and Available True and an Event;
- a failed Job is Failed with its reason and last log lines, an Event; a finished RagBackup
  is never run again;
- a missing system is Pending naming spec.systemRef; no destination is Failed naming
  spec.destination;
- the RagSystem's status.backup keeps the last success and failure of its backup Jobs (also
  past the Jobs' history limit), BackupSucceeded follows the last one, a new failure is an
  Event;
- the RagBackup status fields are those the Argo CD health check reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag_operator.backup import backup_job_name, human_size, parse_result, plan_backup
from rag_operator.conditions import backup_status, events_for
from rag_operator.models import RagSystemStatus
from rag_operator.models.ragbackup import BackupPhase, RagBackup, RagBackupStatus
from rag_operator.observed import Observed, PodInfo
from tests.unit.operator.helpers import make_rs

NOW = "2026-03-01T10:00:00Z"
REPO = Path(__file__).resolve().parents[3]
BACKUP = {
    "schedule": "@daily",
    "retention": {"keepLast": 3},
    "destination": {
        "s3": {
            "endpoint": "http://s3:9000",
            "bucket": "backups",
            "credentialsSecretRef": {"name": "s3"},
        }
    },
}


def _rb(status: dict[str, Any] | None = None, spec: dict[str, Any] | None = None) -> RagBackup:
    return RagBackup.from_body(
        {
            "metadata": {
                "name": "nightly-1",
                "namespace": "team-a",
                "uid": "rb-uid",
                "generation": 1,
            },
            "spec": spec or {"systemRef": {"name": "demo"}},
            "status": status or {},
        }
    )


def _rs(backup: dict[str, Any] | None = BACKUP) -> Any:
    return make_rs({"backup": backup} if backup else {}, status={"version": "0.1.0"})


def _job(condition: str | None, at: str = "2026-03-01T10:01:40Z", name: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if condition:
        status["conditions"] = [
            {
                "type": condition,
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "failed",
                "lastTransitionTime": at,
            }
        ]
    if condition == "Complete":
        status["completionTime"] = at
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name or backup_job_name("demo", "rb-uid"),
            "labels": {"app.kubernetes.io/component": "backup"},
        },
        "status": status,
    }


def _pod(message: str, job: str = "") -> PodInfo:
    return PodInfo(
        "p",
        "backup",
        False,
        job=job or backup_job_name("demo", "rb-uid"),
        terminated_message=message,
        finished_at="2026-03-01T10:01:40Z",
    )


def test_first_pass_creates_one_job_owned_by_the_ragbackup() -> None:
    plan = plan_backup(_rb(), _rs(), None, [], NOW)
    assert plan.status.phase is BackupPhase.RUNNING
    assert plan.status.started_at == NOW
    assert plan.job is not None
    container = plan.job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "backup",
        "create",
        "--to",
        "s3://backups/team-a/demo",
        "--name",
        "nightly-1",
    ]
    assert container["image"].endswith(":0.1.0")
    assert plan.job["metadata"]["ownerReferences"][0]["kind"] == "RagBackup"
    assert plan.job["spec"]["backoffLimit"] == 0
    assert any(e[1] == "BackupStarted" for e in plan.events)


def test_running_job_creates_nothing_more() -> None:
    running = plan_backup(_rb(), _rs(), None, [], NOW).status
    plan = plan_backup(_rb(running.wire()), _rs(), _job(None), [], NOW)
    assert plan.job is None
    assert plan.status.phase is BackupPhase.RUNNING
    assert plan.events == ()


def test_completed_backup_records_the_cli_result() -> None:
    result = {
        "name": "nightly-1",
        "size_bytes": 1503238553,
        "documents": 2311,
        "chunks": 104857,
        "location": "s3://backups/team-a/demo/nightly-1/",
    }
    pods = [_pod("log line\n" + json.dumps(result))]
    plan = plan_backup(_rb(), _rs(), _job("Complete"), pods, NOW)
    status = plan.status
    assert status.phase is BackupPhase.COMPLETED
    assert status.size == "1.4 GiB"
    assert status.size_bytes == 1503238553
    assert status.completed_at == "2026-03-01T10:01:40Z"
    assert status.location == "s3://backups/team-a/demo/nightly-1/"
    assert status.message == "2311 documents, 104857 chunks"
    conds = {c.type: c for c in status.conditions}
    assert conds["Complete"].status.value == "True"
    assert conds["Available"].status.value == "True"
    assert any(e[1] == "BackupCompleted" for e in plan.events)


def test_failed_backup_says_why() -> None:
    plan = plan_backup(_rb(), _rs(), _job("Failed"), [_pod("s3: access denied")], NOW)
    assert plan.status.phase is BackupPhase.FAILED
    assert "s3: access denied" in plan.status.message
    conds = {c.type: c for c in plan.status.conditions}
    assert conds["Complete"].status.value == "False"
    assert conds["Available"].status.value == "False"
    assert plan.events[0][:2] == ("Warning", "BackupFailed")


@pytest.mark.parametrize("phase", ["Completed", "Failed"])
def test_finished_backup_never_runs_again(phase: str) -> None:
    plan = plan_backup(_rb({"phase": phase}), _rs(), None, [], NOW)
    assert plan.job is None
    assert plan.status.phase.value == phase


def test_missing_system_is_pending_naming_the_field() -> None:
    plan = plan_backup(_rb(), None, None, [], NOW)
    assert plan.job is None
    assert plan.status.phase is BackupPhase.PENDING
    assert plan.status.message.startswith("spec.systemRef")


def test_no_destination_fails_naming_the_field() -> None:
    plan = plan_backup(_rb(), _rs(backup=None), None, [], NOW)
    assert plan.status.phase is BackupPhase.FAILED
    assert plan.status.message.startswith("spec.destination")


def test_own_destination_wins_over_the_systems() -> None:
    spec = {"systemRef": {"name": "demo"}, "destination": {"volume": {"claimName": "bk"}}}
    plan = plan_backup(_rb(spec=spec), _rs(), None, [], NOW)
    assert plan.job is not None
    args = plan.job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[3] == "file:///backups/team-a/demo"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", {}), ("no json", {}), ('x\n{"a": 1}\n', {"a": 1}), ('{"a": 1}\n{bad', {"a": 1})],
)
def test_parse_result_takes_the_last_json_line(text: str, expected: dict[str, Any]) -> None:
    assert parse_result(text) == expected


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (2048, "2.0 KiB"), (1503238553, "1.4 GiB")])
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


def test_system_status_keeps_last_success_and_failure() -> None:
    rs = _rs()
    ok = _job("Complete", "2026-03-01T10:00:00Z", "demo-backup-1")
    bad = _job("Failed", "2026-03-02T10:00:00Z", "demo-backup-2")
    observed = Observed.from_items([ok, bad], [_pod("disk full", "demo-backup-2")])
    status = backup_status(rs, observed)
    assert status is not None
    assert status.last_successful_time == "2026-03-01T10:00:00Z"
    assert status.last_failure_time == "2026-03-02T10:00:00Z"
    assert status.last_job == "demo-backup-2"
    assert "disk full" in status.message
    # The Jobs are gone (history limit): the status keeps what it knew.
    later = make_rs({"backup": BACKUP}, status={"backup": status.wire()})
    assert backup_status(later, Observed()) == status


def test_a_new_backup_failure_is_an_event() -> None:
    old = RagSystemStatus()
    new = RagSystemStatus.model_validate(
        {"backup": {"lastFailureTime": "2026-03-02T10:00:00Z", "lastJob": "j", "message": "x"}}
    )
    assert any(e[:2] == ("Warning", "BackupFailed") for e in events_for(old, new, False))
    assert not any(e[1] == "BackupFailed" for e in events_for(new, new, False))


def test_no_backup_status_without_backups() -> None:
    assert backup_status(make_rs(), Observed()) is None


TESTDATA = REPO / "examples/argocd/resource_customizations/ragops.io/RagBackup/testdata"
# Inputs of the health check that the operator never writes (robustness cases).
OFF_MODEL = {"no-status", "unknown-phase", "completed-size-in-bytes"}


def test_argocd_testdata_is_what_the_operator_writes() -> None:
    names = {p.stem for p in TESTDATA.glob("*.yaml")}
    assert names >= OFF_MODEL
    for name in sorted(names - OFF_MODEL):
        status = yaml.safe_load((TESTDATA / f"{name}.yaml").read_text())["status"]
        assert RagBackupStatus.model_validate(status).wire()["phase"] == status["phase"], name
