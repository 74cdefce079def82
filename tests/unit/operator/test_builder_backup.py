"""spec.backup and its CronJob.

Aspects covered:
- the model refuses a schedule that is not cron (pattern and field ranges), retention below 1
  or with neither count nor age, a destination with neither or both of s3 and volume, an s3
  destination without credentials; each refusal names the field;
- the CRD carries the cron pattern and the CEL rules, so the API server refuses the same;
- the CronJob runs `backup create` then `backup prune` with the retention, of the serving
  version, against the system's own location, with the S3 endpoint and credentials from the
  Secret (or the claim mounted); one run at a time; restricted security;
- the credentials Secret is a referenced Secret (missing = Degraded naming the field);
- no spec.backup, no CronJob.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rag_operator.builders import Release, runtime_config
from rag_operator.builders.backup import backup_location, build_backup_cronjob
from rag_operator.crd import build_crd
from rag_operator.models.backup import BackupSpec
from tests.unit.operator.helpers import CFG, children, make_rs

S3 = {
    "endpoint": "http://s3.local:9000",
    "bucket": "backups",
    "prefix": "rag/",
    "credentialsSecretRef": {"name": "s3-creds"},
}
VALID: dict[str, Any] = {
    "schedule": "0 3 * * *",
    "retention": {"keepLast": 7, "maxAgeDays": 30},
    "destination": {"s3": S3},
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


@pytest.mark.parametrize(
    "schedule", ["0 3 * * *", "*/15 * * * *", "0 0 1,15 * mon-fri", "@daily", "5 4 * 1-12/2 0"]
)
def test_cron_schedules_are_accepted(schedule: str) -> None:
    assert BackupSpec.model_validate(_with(schedule=schedule)).schedule == schedule


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (_with(schedule="every day"), "schedule"),
        (_with(schedule="0 3 * *"), "schedule"),
        (_with(schedule="61 3 * * *"), "schedule"),
        (_with(schedule="0 25 * * *"), "schedule"),
        (_with(retention={"keepLast": 0}), "keep_last"),
        (_with(retention={"maxAgeDays": 0}), "max_age_days"),
        (_with(retention={}), "retention"),
        (_with(destination={}), "destination"),
        (_with(destination={"s3": S3, "volume": {"claimName": "x"}}), "destination"),
        (
            _with(destination={"s3": {k: v for k, v in S3.items() if k != "credentialsSecretRef"}}),
            "credentials_secret_ref",
        ),
        (_with(destination={"s3": {**S3, "endpoint": "s3.local"}}), "endpoint"),
    ],
)
def test_bad_backup_specs_are_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        BackupSpec.model_validate(spec)
    text = str(err.value)
    assert field in text or field.replace("_", "") in text.lower()


def _schema_of(path: list[str]) -> dict[str, Any]:
    node = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for part in path:
        node = node["properties"][part]
    return node  # type: ignore[no-any-return]


def test_crd_refuses_what_the_model_refuses() -> None:
    backup = _schema_of(["backup"])
    assert "pattern" in backup["properties"]["schedule"]
    assert backup["properties"]["retention"]["properties"]["keepLast"]["minimum"] == 1
    assert backup["properties"]["retention"]["properties"]["maxAgeDays"]["minimum"] == 1
    rules = [r["rule"] for r in backup["properties"]["retention"]["x-kubernetes-validations"]]
    assert "has(self.keepLast) || has(self.maxAgeDays)" in rules
    dest = backup["properties"]["destination"]
    assert "has(self.s3) != has(self.volume)" in [
        r["rule"] for r in dest["x-kubernetes-validations"]
    ]
    assert "credentialsSecretRef" in dest["properties"]["s3"]["required"]


def _cronjob(backup: dict[str, Any], version: str = "0.1.0") -> dict[str, Any]:
    rs = make_rs({"backup": backup})
    return build_backup_cronjob(rs, CFG, runtime_config(rs), version)


def test_cronjob_creates_then_prunes_with_the_retention() -> None:
    cj = _cronjob(VALID, "0.1.0")
    assert cj["spec"]["schedule"] == "0 3 * * *"
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (create,) = pod["initContainers"]
    (prune,) = pod["containers"]
    url = "s3://backups/rag/team-a/demo"
    assert create["args"] == ["backup", "create", "--to", url]
    assert prune["args"] == [
        "backup",
        "prune",
        "--to",
        url,
        "--keep-last",
        "7",
        "--max-age-days",
        "30",
    ]
    assert create["image"].endswith(":0.1.0")
    env = {e["name"]: e for e in create["env"]}
    assert env["RAG_BACKUP_S3_ENDPOINT"]["value"] == "http://s3.local:9000"
    ref = env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert create["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert cj["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"


def test_volume_destination_mounts_the_claim() -> None:
    cj = _cronjob(_with(destination={"volume": {"claimName": "backup-pvc", "path": "rag"}}))
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "backup-pvc"}} in pod[
        "volumes"
    ]
    create = pod["initContainers"][0]
    assert create["args"][-1] == "file:///backups/rag/team-a/demo"
    assert {"name": "backups", "mountPath": "/backups"} in create["volumeMounts"]
    assert not any(e["name"].startswith("AWS_") for e in create["env"])


def test_location_without_prefix() -> None:
    rs = make_rs({"backup": _with(destination={"s3": {**S3, "prefix": ""}})})
    assert rs.spec.backup is not None
    assert backup_location(rs, rs.spec.backup.destination) == "s3://backups/team-a/demo"


def test_credentials_secret_is_a_referenced_secret() -> None:
    refs = runtime_config(make_rs({"backup": VALID})).secret_refs
    paths = {(r.path, r.name, r.key) for r in refs}
    path = "spec.backup.destination.s3.credentialsSecretRef"
    assert (path, "s3-creds", "AWS_ACCESS_KEY_ID") in paths
    assert (path, "s3-creds", "AWS_SECRET_ACCESS_KEY") in paths


@pytest.mark.parametrize(("backup", "count"), [(None, 0), (VALID, 1)])
def test_cronjob_only_with_spec_backup(backup: dict[str, Any] | None, count: int) -> None:
    spec = {"backup": backup} if backup else {}
    emitted = children(make_rs(spec), release=Release(stable_version="0.1.0"))
    assert sum(c["kind"] == "CronJob" for c in emitted) == count
