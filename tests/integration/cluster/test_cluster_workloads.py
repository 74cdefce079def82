"""The local control plane runs workloads the way a real cluster does.

Aspects covered:
- a Deployment's pods are scheduled onto the kwok nodes and the Deployment becomes Available;
- a StatefulSet with a volumeClaimTemplate becomes Ready and its PersistentVolumeClaim is Bound
  through the ``kwok-volume`` StorageClass;
- a Job's pod runs to completion and the Job reports Complete;
- a CronJob creates a Job when its schedule comes round;
- deleting an owner garbage-collects what it owns (ConfigMap owner references, and a
  Deployment's ReplicaSets and Pods).
"""

from __future__ import annotations

import pytest

from hack.cluster import NODE_NAMES, Cluster
from tests.fixtures.cluster import apply, get_json, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def _deployment(name: str, replicas: int) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
"""


def test_deployment_becomes_available_with_pods_on_kwok_nodes(
    cluster: Cluster, namespace: str
) -> None:
    apply(cluster, namespace, _deployment("web", 3))
    cluster.kubectl(
        "wait", "-n", namespace, "deployment/web", "--for=condition=Available", "--timeout=60s"
    )
    deployment = get_json(cluster, "-n", namespace, "deployment/web")
    assert deployment["status"]["availableReplicas"] == 3
    pods = get_json(cluster, "-n", namespace, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    assert {p["spec"]["nodeName"] for p in pods} <= set(NODE_NAMES)
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert all(p["status"].get("podIP") for p in pods)


def test_statefulset_with_volume_claim_template_becomes_ready_and_binds_its_claim(
    cluster: Cluster, namespace: str
) -> None:
    apply(
        cluster,
        namespace,
        """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: registry.invalid/db:1
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: kwok-volume
      resources:
        requests: {storage: 1Gi}
""",
    )
    wait_for(
        lambda: (
            get_json(cluster, "-n", namespace, "statefulset/db")["status"].get("readyReplicas") == 1
        ),
        what="StatefulSet db ready",
    )
    pvc = get_json(cluster, "-n", namespace, "pvc/data-db-0")
    assert pvc["status"]["phase"] == "Bound"
    pv = get_json(cluster, "pv", pvc["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["name"] == "data-db-0"
    assert pv["spec"]["storageClassName"] == "kwok-volume"


def test_job_runs_to_completion(cluster: Cluster, namespace: str) -> None:
    apply(
        cluster,
        namespace,
        """
apiVersion: batch/v1
kind: Job
metadata:
  name: once
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: task
        image: registry.invalid/task:1
""",
    )
    cluster.kubectl(
        "wait", "-n", namespace, "job/once", "--for=condition=Complete", "--timeout=60s"
    )
    job = get_json(cluster, "-n", namespace, "job/once")
    assert job["status"]["succeeded"] == 2


@pytest.mark.slow
def test_cronjob_creates_a_job_when_its_schedule_comes_round(
    cluster: Cluster, namespace: str
) -> None:
    apply(
        cluster,
        namespace,
        """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: task
            image: registry.invalid/task:1
""",
    )

    def job_from_cronjob() -> bool:
        jobs = get_json(cluster, "-n", namespace, "jobs")["items"]
        return any(
            ref["kind"] == "CronJob" and ref["name"] == "tick"
            for job in jobs
            for ref in job["metadata"].get("ownerReferences", [])
        )

    # The schedule fires at the next full minute.
    wait_for(job_from_cronjob, timeout=90, what="a Job created by CronJob tick")
    wait_for(
        lambda: bool(
            get_json(cluster, "-n", namespace, "cronjob/tick")["status"].get("lastScheduleTime")
        ),
        what="CronJob lastScheduleTime",
    )


def test_deleting_an_owner_garbage_collects_the_objects_it_owns(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner_uid = get_json(cluster, "-n", namespace, "configmap/owner")["metadata"]["uid"]
    apply(
        cluster,
        namespace,
        f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: owner
    uid: {owner_uid}
data: {{k: v}}
""",
    )
    cluster.kubectl("delete", "-n", namespace, "configmap/owner")
    wait_for(
        lambda: (
            cluster.kubectl("get", "-n", namespace, "configmap/owned", check=False).returncode != 0
        ),
        what="owned ConfigMap collected",
    )


def test_deleting_a_deployment_removes_its_replicasets_and_pods(
    cluster: Cluster, namespace: str
) -> None:
    apply(cluster, namespace, _deployment("gone", 2))
    cluster.kubectl(
        "wait", "-n", namespace, "deployment/gone", "--for=condition=Available", "--timeout=60s"
    )
    assert get_json(cluster, "-n", namespace, "replicasets", "-l", "app=gone")["items"]
    cluster.kubectl("delete", "-n", namespace, "deployment/gone", "--cascade=background")

    def nothing_left() -> bool:
        rs = get_json(cluster, "-n", namespace, "replicasets", "-l", "app=gone")["items"]
        pods = get_json(cluster, "-n", namespace, "pods", "-l", "app=gone")["items"]
        return not rs and not pods

    wait_for(nothing_left, what="ReplicaSets and Pods of deployment gone collected")
