"""Migration gate, backups and restore against the real control plane (kwok completes the
Jobs' pods; the real-pod behaviour, failing migrations included, is in tests/e2e).

Aspects covered:
- first install: the API and worker Deployments are created at once (nothing serves yet),
  the migration Job of spec.version once Postgres is ready; status shows version,
  desiredVersion, lastGoodVersion and MigrationSucceeded; `kubectl get rag` shows them;
- an upgrade runs a new Job with the new image and moves the Deployments after it;
- spec.backup makes a CronJob; a schedule that is not cron, retention 0 and a destination
  without credentials are refused by the API server naming the field;
- a RagBackup runs its Job and completes, `kubectl get ragbackups` shows it;
- a new system bootstrapped from that RagBackup restores before it migrates;
- a system deleted and applied again under the same name (bootstrapped from its backup)
  waits, Pending and saying why, while the earlier one's children are being deleted, then
  restores and owns every child alone.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.volume_backup import BACKUP_CLAIM, VOLUME_BACKUP
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import (
    Kube,
    Operator,
    condition,
    rag_manifest,
    wait_phase,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def _ragbackup(name: str, system: str) -> dict[str, Any]:
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagBackup",
        "metadata": {"name": name},
        "spec": {"systemRef": {"name": system}},
    }


def _apply(cluster: Cluster, ns: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))


def _jobs(kube: Kube, ns: str, component: str) -> list[Any]:
    from kubernetes import client as k8s

    batch = k8s.BatchV1Api(kube.api)
    selector = f"app.kubernetes.io/component={component}"
    return list(batch.list_namespaced_job(ns, label_selector=selector).items)


def _when(value: Any) -> datetime:
    """A timestamp as the client returns it (datetime or ISO text), as a datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _image(kube: Kube, ns: str, name: str) -> str:
    dep = kube.get("Deployment", ns, name)
    assert dep is not None
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def test_deployments_follow_the_migration_job(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    _apply(cluster, ns, rag_manifest("up", {"api": {"replicas": 1}}))
    rag = wait_phase(kube, ns, "up", "Ready", timeout=90)
    (job,) = _jobs(kube, ns, "migrate")
    assert job.spec.template.spec.containers[0].args == ["migrate"]
    assert job.status.succeeded == 1
    api = kube.get("Deployment", ns, "up-api")
    assert api is not None
    # A first install: the Deployment comes at once, the Job once Postgres is ready.
    created = _when(api["metadata"]["creationTimestamp"])
    assert created <= _when(job.metadata.creation_timestamp)
    status = rag["status"]
    assert (status["version"], status["desiredVersion"], status["lastGoodVersion"]) == (
        "0.1.0",
        "0.1.0",
        "0.1.0",
    )
    assert condition(rag, "MigrationSucceeded")["status"] == "True"
    assert status["migration"]["phase"] == "Succeeded"
    table = cluster.kubectl("get", "rag", "up", "-n", ns).stdout
    assert "Succeeded" in table

    cluster.kubectl(
        "patch",
        "rag",
        "up",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"version": "0.2.0"}}),
    )
    wait_for(
        lambda: _image(kube, ns, "up-api").endswith(":0.2.0"),
        timeout=90,
        what="API Deployment on 0.2.0",
    )
    images = {j.spec.template.spec.containers[0].image for j in _jobs(kube, ns, "migrate")}
    assert "ghcr.io/ragops/rag-runtime:0.2.0" in images
    rag = wait_phase(kube, ns, "up", "Ready", timeout=90)
    wait_for(
        lambda: (kube.get("RagSystem", ns, "up") or {}).get("status", {}).get("version") == "0.2.0",
        timeout=60,
        what="status.version 0.2.0",
    )
    assert "MigrationSucceeded" in kube.events(ns, "up")


def test_backup_schedule_makes_a_cronjob(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    _apply(cluster, ns, rag_manifest("bk", {"api": {"replicas": 1}, "backup": VOLUME_BACKUP}))
    wait_for(
        lambda: kube.get("CronJob", ns, "bk-backup") is not None,
        timeout=60,
        what="CronJob bk-backup",
    )
    cj = kube.get("CronJob", ns, "bk-backup")
    assert cj is not None
    assert cj["spec"]["schedule"] == "0 3 * * *"


@pytest.mark.parametrize(
    ("backup", "field"),
    [
        ({**VOLUME_BACKUP, "schedule": "every night"}, "spec.backup.schedule"),
        ({**VOLUME_BACKUP, "retention": {"keepLast": 0}}, "spec.backup.retention.keepLast"),
        ({**VOLUME_BACKUP, "retention": {}}, "backup.retention"),
        (
            {**VOLUME_BACKUP, "destination": {"s3": {"endpoint": "http://s3", "bucket": "bkt"}}},
            "spec.backup.destination.s3.credentialsSecretRef",
        ),
    ],
)
def test_bad_backup_spec_is_refused_naming_the_field(
    cluster: Cluster, crd: Any, ns: str, backup: dict[str, Any], field: str
) -> None:
    manifest = rag_manifest("bad", {"backup": backup})
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest), check=False)
    assert out.returncode != 0
    assert field in out.stderr, out.stderr


def test_ragbackup_completes_and_a_new_system_restores_from_it(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    _apply(cluster, ns, BACKUP_CLAIM)
    _apply(cluster, ns, rag_manifest("src", {"api": {"replicas": 1}, "backup": VOLUME_BACKUP}))
    wait_phase(kube, ns, "src", "Ready", timeout=90)
    _apply(cluster, ns, _ragbackup("first", "src"))

    def phase() -> str:
        return str(((kube.get("RagBackup", ns, "first") or {}).get("status") or {}).get("phase"))

    try:
        wait_for(lambda: phase() == "Completed", timeout=90, what="RagBackup Completed")
    except BaseException:
        print("RagBackup:", json.dumps(kube.get("RagBackup", ns, "first"), default=str))
        print("jobs:", [(j.metadata.name, j.status.to_dict()) for j in _jobs(kube, ns, "backup")])
        raise
    rb = kube.get("RagBackup", ns, "first")
    assert rb is not None
    conds = {c["type"]: c["status"] for c in rb["status"]["conditions"]}
    assert conds == {"Complete": "True", "Available": "True"}
    assert rb["status"]["startedAt"]
    assert rb["status"]["completedAt"]
    table = cluster.kubectl("get", "ragbackups", "-n", ns).stdout
    assert "Completed" in table
    assert "src" in table
    wait_for(
        lambda: (
            ((kube.get("RagSystem", ns, "src") or {}).get("status") or {})
            .get("backup", {})
            .get("lastSuccessfulTime")
        ),
        timeout=60,
        what="status.backup.lastSuccessfulTime",
    )

    started = time.monotonic()
    _apply(
        cluster,
        ns,
        rag_manifest("dst", {"api": {"replicas": 1}, "bootstrap": {"backup": {"name": "first"}}}),
    )
    rag = wait_phase(kube, ns, "dst", "Ready", timeout=90)
    assert rag["status"]["restore"]["phase"] == "Succeeded"
    (restore,) = _jobs(kube, ns, "restore")
    args = restore.spec.template.spec.containers[0].args
    assert args == ["restore", "--from", f"file:///backups/{ns}/src", "--name", "first"]
    migrations = [j for j in _jobs(kube, ns, "migrate") if j.metadata.name.startswith("dst-")]
    assert migrations[0].metadata.creation_timestamp >= restore.status.completion_time
    assert time.monotonic() - started < 90


HOLD = "ragops.io/test-hold"


def test_a_system_recreated_under_its_name_waits_for_the_earlier_ones_children(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    """Deleted and at once applied again (a restore under the same name, a GitOps re-sync):
    the new system adopts nothing of the old one, whose children the garbage collector is
    still deleting; it waits for them, says so, and then restores and starts clean."""
    _apply(cluster, ns, BACKUP_CLAIM)
    spec = {"api": {"replicas": 1}, "backup": VOLUME_BACKUP, "deletionPolicy": "Delete"}
    _apply(cluster, ns, rag_manifest("same", spec))
    old_uid = wait_phase(kube, ns, "same", "Ready", timeout=90)["metadata"]["uid"]
    _apply(cluster, ns, _ragbackup("last", "same"))
    wait_for(
        lambda: (
            ((kube.get("RagBackup", ns, "last") or {}).get("status") or {}).get("phase")
            == "Completed"
        ),
        timeout=90,
        what="RagBackup Completed",
    )
    # A finalizer keeps one of its children in place after its owner is gone, as a slow
    # garbage collector would.
    patch = json.dumps({"metadata": {"finalizers": [HOLD]}})
    cluster.kubectl("patch", "service", "same-api", "-n", ns, "--type=merge", "-p", patch)
    cluster.kubectl("delete", "ragsystem", "same", "-n", ns, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: (
            (kube.get("Service", ns, "same-api") or {}).get("metadata", {}).get("deletionTimestamp")
            is not None
        ),
        timeout=60,
        what="the earlier system's Service marked for deletion",
    )
    _apply(
        cluster,
        ns,
        rag_manifest("same", {**spec, "bootstrap": {"backup": {"name": "last"}}}),
    )

    def progressing() -> str:
        return str(condition(kube.get("RagSystem", ns, "same") or {}, "Progressing").get("message"))

    # The others go; the held one stays, and the new system waits for it alone.
    wait_for(
        lambda: "of Service/same-api (left by an earlier RagSystem same)" in progressing(),
        timeout=60,
        what="the new system waiting for the earlier one's held Service",
    )
    new = kube.rag(ns, "same")
    assert new["status"]["phase"] in ("Pending", "Progressing")
    assert kube.get("StatefulSet", ns, "same-postgres") is None  # nothing applied meanwhile
    assert not _jobs(kube, ns, "restore")
    unhold = json.dumps({"metadata": {"finalizers": None}})
    cluster.kubectl("patch", "service", "same-api", "-n", ns, "--type=merge", "-p", unhold)
    rag = wait_phase(kube, ns, "same", "Ready", timeout=90)
    assert rag["status"]["restore"]["phase"] == "Succeeded"
    new_uid = rag["metadata"]["uid"]
    assert new_uid != old_uid
    for kind, name in (("Service", "same-api"), ("StatefulSet", "same-postgres")):
        obj = kube.get(kind, ns, name)
        assert obj is not None
        owners = {o["uid"] for o in obj["metadata"]["ownerReferences"]}
        assert owners == {new_uid}, (kind, name, owners)


def test_bootstrap_from_a_missing_backup_is_degraded(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    _apply(cluster, ns, rag_manifest("lost", {"bootstrap": {"backup": {"name": "nope"}}}))
    rag = wait_phase(kube, ns, "lost", "Degraded", timeout=60)
    assert "spec.bootstrap.backup.name" in condition(rag, "Degraded")["message"]
    assert kube.get("Deployment", ns, "lost-api") is None
    assert not _jobs(kube, ns, "migrate")
