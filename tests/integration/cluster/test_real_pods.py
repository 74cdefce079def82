"""The node agent runs pods for real, the way a kubelet would, with processes.

Aspects covered:
- env: literals, ConfigMap and Secret keys (``valueFrom``, ``envFrom`` with a prefix), pod and
  resource fields, ``$(VAR)`` expansion in env and args, Service link variables, optional refs;
- volumes at their mount paths: ConfigMap items and modes, Secrets, downwardAPI, an emptyDir
  shared by an init container and the app, ``runAsUser``/``fsGroup``, a read-only root; a
  mounted ConfigMap follows changes of its ConfigMap;
- probes executed for real: readiness (exec, httpGet, tcpSocket) drives Ready; a failing
  liveness probe restarts the container (restart count, last state);
- Jobs run to completion (``cluster-logs`` prints their output); a failed container reports
  its exit code and termination message (file or ``FallbackToLogsOnError``); a crashing
  container backs off (CrashLoopBackOff);
- a claim outlives its pod (a StatefulSet pod deleted and recreated finds its files; a
  Postgres pod of the pgvector image comes back with its rows; the neo4j image honours
  ``NEO4J_AUTH``), and a deleted pod gets
  SIGTERM, then SIGKILL after its grace period, leaving no sandbox behind;
- an image the agent cannot map, and a missing Secret, leave the pod waiting with a clear
  reason and never Ready; the Secret appearing lets it start;
- pods on their own addresses: two pods serve 0.0.0.0:8000 at once, Services resolve by name
  (ClusterIP through the agent's proxy, headless to pod IPs);
- extra image mappings (images.json) give an image its own environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time

import pytest

from hack import cluster as local_cluster
from hack.cluster import REAL_NODE_NAMES, Cluster
from hack.node_agent import network
from tests.fixtures.cluster import (
    apply,
    condition,
    container_status,
    get_json,
    logs,
    net_plan,
    pod,
    processes_of_pods,
    wait_for,
    wait_phase,
    wait_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def _json_output(
    cluster: Cluster, ns: str, name: str, container: str | None = None
) -> dict[str, object]:
    text = logs(cluster, ns, name, container)
    line = next((ln for ln in text.splitlines() if ln.startswith("{")), "")
    assert line, f"no JSON in the output of {name}:\n{text}"
    data: dict[str, object] = json.loads(line)
    return data


PRINT_ENV = """
import json, os, sys
print(json.dumps({"env": dict(os.environ), "argv": sys.argv[1:]}))
"""


def test_env_comes_from_literals_configmaps_secrets_and_fields(
    cluster: Cluster, real_ns: str
) -> None:
    apply(
        cluster,
        real_ns,
        f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{MODE: fast, LEVEL: "3"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{token: t0ps3cret, user: admin}}
---
apiVersion: v1
kind: Service
metadata: {{name: svc-a}}
spec:
  selector: {{app: none}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: env, labels: {{tier: test}}}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: python:3.11
    command: [python, -c, {json.dumps(PRINT_ENV)}]
    args: ["$(LITERAL)", "$$(LITERAL)", "$(NOT_DEFINED)"]
    resources: {{limits: {{memory: 64Mi}}}}
    envFrom:
    - configMapRef: {{name: settings}}
      prefix: CFG_
    - secretRef: {{name: creds}}
    env:
    - {{name: LITERAL, value: plain}}
    - {{name: FROM_CM, valueFrom: {{configMapKeyRef: {{name: settings, key: MODE}}}}}}
    - {{name: FROM_SECRET, valueFrom: {{secretKeyRef: {{name: creds, key: token}}}}}}
    - name: OPTIONAL
      valueFrom: {{configMapKeyRef: {{name: settings, key: absent, optional: true}}}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: TIER, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['tier']"}}}}}}
    - name: MEM_MI
      valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}
    - {{name: EXPANDED, value: "$(FROM_CM)-$(LITERAL)-$(NOT_DEFINED)-$$(LITERAL)"}}
""",
    )
    p = wait_phase(cluster, real_ns, "env", "Succeeded", "Failed")
    assert p["status"]["phase"] == "Succeeded", container_status(p)
    out = _json_output(cluster, real_ns, "env")
    env = out["env"]
    assert isinstance(env, dict)
    assert env["LITERAL"] == "plain"
    assert env["FROM_CM"] == "fast"
    assert env["FROM_SECRET"] == "t0ps3cret"
    assert env["CFG_MODE"] == "fast"
    assert env["CFG_LEVEL"] == "3"
    assert env["token"] == "t0ps3cret"
    assert env["user"] == "admin"
    assert "OPTIONAL" not in env
    assert env["POD_NAME"] == "env"
    assert env["POD_IP"] == p["status"]["podIP"]
    assert env["TIER"] == "test"
    assert env["MEM_MI"] == "64"
    assert env["EXPANDED"] == "fast-plain-$(NOT_DEFINED)-$(LITERAL)"
    svc_ip = get_json(cluster, "-n", real_ns, "service/svc-a")["spec"]["clusterIP"]
    assert env["SVC_A_SERVICE_HOST"] == svc_ip
    assert env["SVC_A_SERVICE_PORT_HTTP"] == "8080"
    assert env["KUBERNETES_SERVICE_HOST"] == str(net_plan(cluster).kubernetes_service_ip)
    assert out["argv"] == ["plain", "$(LITERAL)", "$(NOT_DEFINED)"]


VOLUME_CHECK = """
import json, os, stat
def info(path):
    st = os.stat(path)
    return {"mode": oct(stat.S_IMODE(st.st_mode)), "gid": st.st_gid, "text": open(path).read()}
try:
    open("/opt/written", "w")
    root_writable = True
except OSError:
    root_writable = False
print(json.dumps({
    "uid": os.getuid(), "groups": sorted(os.getgroups()),
    "renamed": info("/etc/cfg/renamed.conf"),
    "cfg_files": sorted(n for n in os.listdir("/etc/cfg") if not n.startswith("..")),
    "secret": info("/etc/secret/token"),
    "labels": open("/etc/podinfo/labels").read(),
    "shared": open("/shared/from-init").read(),
    "root_writable": root_writable,
    "tmp_writable": os.access("/tmp", os.W_OK),
}))
"""


def test_volumes_appear_at_mount_paths_with_modes_and_owners(
    cluster: Cluster, real_ns: str
) -> None:
    apply(
        cluster,
        real_ns,
        f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: files}}
data: {{app.conf: "key = value", other: "not mounted"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec}}
stringData: {{token: abc}}
---
apiVersion: v1
kind: Pod
metadata: {{name: vols, labels: {{app: vols}}}}
spec:
  restartPolicy: Never
  securityContext: {{runAsUser: 1234, runAsGroup: 1234, fsGroup: 2345}}
  initContainers:
  - name: init
    image: busybox:1.36
    command: [sh, -c, "echo made-by-init > /shared/from-init"]
    volumeMounts: [{{name: work, mountPath: /shared}}]
  containers:
  - name: main
    image: python:3.11
    command: [python, -c, {json.dumps(VOLUME_CHECK)}]
    securityContext: {{readOnlyRootFilesystem: true}}
    volumeMounts:
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: sec, mountPath: /etc/secret}}
    - {{name: info, mountPath: /etc/podinfo}}
    - {{name: work, mountPath: /shared}}
    - {{name: tmp, mountPath: /tmp}}
  volumes:
  - name: cfg
    configMap:
      name: files
      items: [{{key: app.conf, path: renamed.conf, mode: 0600}}]
  - {{name: sec, secret: {{secretName: sec, defaultMode: 0400}}}}
  - name: info
    downwardAPI:
      items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]
  - {{name: work, emptyDir: {{}}}}
  - {{name: tmp, emptyDir: {{}}}}
""",
    )
    p = wait_phase(cluster, real_ns, "vols", "Succeeded", "Failed")
    assert p["status"]["phase"] == "Succeeded", logs(cluster, real_ns, "vols", "main")
    out = _json_output(cluster, real_ns, "vols", "main")
    assert out["uid"] == 1234
    assert out["groups"] == [1234, 2345]
    assert out["cfg_files"] == ["renamed.conf"]
    renamed, secret = out["renamed"], out["secret"]
    assert isinstance(renamed, dict)
    assert isinstance(secret, dict)
    assert renamed["text"] == "key = value"
    # The item's mode, with the fsGroup's read bit, group-owned by the fsGroup.
    assert (renamed["mode"], renamed["gid"]) == ("0o640", 2345)
    assert (secret["text"], secret["mode"], secret["gid"]) == ("abc", "0o440", 2345)
    assert out["labels"] == 'app="vols"'
    assert out["shared"] == "made-by-init\n"
    assert out["root_writable"] is False
    assert out["tmp_writable"] is True
    init = p["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"


def test_readiness_gates_ready_and_failed_liveness_restarts(cluster: Cluster, real_ns: str) -> None:
    # Ready once /tmp/ready exists (after 2 s); the liveness probe fails once /tmp/dead does.
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "sleep 2; touch /tmp/ready; sleep 3; touch /tmp/dead; exec sleep 1000"]
    readinessProbe: {exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1}
    livenessProbe:
      exec: {command: [test, '!', -f, /tmp/dead]}
      periodSeconds: 1
      failureThreshold: 1
""",
    )
    first = pod(cluster, real_ns, "probed")
    wait_for(
        lambda: (
            container_status(pod(cluster, real_ns, "probed")).get("state", {}).get("running")
            is not None
        ),
        what="container running",
    )
    assert condition(pod(cluster, real_ns, "probed"), "Ready") != "True"
    assert condition(first, "Ready") != "True"
    wait_ready(cluster, real_ns, "probed", timeout=60)

    def restarted() -> bool:
        return int(container_status(pod(cluster, real_ns, "probed")).get("restartCount", 0)) >= 1

    wait_for(restarted, timeout=90, what="a restart after the liveness probe failed")
    cs = container_status(pod(cluster, real_ns, "probed"))
    last = cs["lastState"]["terminated"]
    assert last["exitCode"] in (137, 143)  # killed: SIGKILL or SIGTERM
    events = cluster.kubectl("get", "events", "-n", real_ns, "-o", "json").stdout
    assert "Liveness probe failed" in events


def test_http_and_tcp_probes_are_really_sent(cluster: Cluster, real_ns: str) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: python:3.11
    command: [python, -m, http.server, "8000"]
    ports: [{name: http, containerPort: 8000}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
    livenessProbe: {tcpSocket: {port: 8000}, periodSeconds: 1}
  - name: strict
    image: python:3.11
    command: [python, -m, http.server, "8001"]
    readinessProbe: {httpGet: {path: /missing, port: 8001}, periodSeconds: 1}
""",
    )

    def web_ready() -> bool:
        return bool(container_status(pod(cluster, real_ns, "web"), "web").get("ready"))

    wait_for(web_ready, timeout=60, what="container web ready")
    p = pod(cluster, real_ns, "web")
    assert container_status(p, "strict")["ready"] is False
    assert condition(p, "Ready") == "False"
    assert condition(p, "ContainersReady") == "False"
    wait_for(
        lambda: "statuscode: 404" in cluster.kubectl("get", "events", "-n", real_ns).stdout,
        timeout=30,
        what="the 404 of the readiness probe reported",
    )
    assert container_status(p, "web")["restartCount"] == 0


def test_job_runs_to_completion(cluster: Cluster, real_ns: str) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: main, image: busybox:1.36, command: [sh, -c, "echo finished"]}
""",
    )
    cluster.kubectl(
        "wait", "-n", real_ns, "job/once", "--for=condition=Complete", "--timeout=90s", timeout=100
    )
    pods = get_json(cluster, "-n", real_ns, "pods", "-l", "job-name=once")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["spec"]["nodeName"] in REAL_NODE_NAMES
    assert logs(cluster, real_ns, pods[0]["metadata"]["name"]) == "finished\n"
    # What `make cluster-logs POD=... NS=...` runs.
    cli = subprocess.run(
        [sys.executable, "-m", "hack.cluster", "logs", pods[0]["metadata"]["name"], "-n", real_ns],
        env={**os.environ, "RAGOPS_CLUSTER_DIR": str(cluster.state_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (cli.returncode, cli.stdout) == (0, "finished\n"), cli.stderr


def test_failed_container_reports_exit_code_and_termination_message(
    cluster: Cluster, real_ns: str
) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  restartPolicy: Never
  containers:
  - name: file
    image: busybox:1.36
    command: [sh, -c, "echo 'disk is full' > /dev/termination-log; exit 3"]
  - name: logs
    image: busybox:1.36
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, "echo 'last words'; exit 2"]
""",
    )
    p = wait_phase(cluster, real_ns, "broken", "Failed", "Succeeded")
    assert p["status"]["phase"] == "Failed"
    file_term = container_status(p, "file")["state"]["terminated"]
    assert (file_term["exitCode"], file_term["reason"]) == (3, "Error")
    assert file_term["message"] == "disk is full\n"
    logs_term = container_status(p, "logs")["state"]["terminated"]
    assert logs_term["exitCode"] == 2
    assert "last words" in logs_term["message"]
    assert condition(p, "Ready") == "False"


def test_crashing_container_restarts_with_back_off(cluster: Cluster, real_ns: str) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - {name: main, image: busybox:1.36, command: [sh, -c, "echo try; exit 1"]}
""",
    )

    def backing_off() -> bool:
        cs = container_status(pod(cluster, real_ns, "crasher"))
        waiting = (cs.get("state") or {}).get("waiting") or {}
        return waiting.get("reason") == "CrashLoopBackOff"

    wait_for(backing_off, timeout=60, what="CrashLoopBackOff")
    cs = container_status(pod(cluster, real_ns, "crasher"))
    assert cs["restartCount"] >= 1
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert "back-off 10s" in cs["state"]["waiting"]["message"]
    assert pod(cluster, real_ns, "crasher")["status"]["phase"] == "Running"


def test_claim_outlives_its_pod_and_deletion_sends_sigterm(cluster: Cluster, real_ns: str) -> None:
    # Each start appends to the claim; SIGTERM appends "term" before exiting.
    apply(
        cluster,
        real_ns,
        """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: keeper}
spec:
  serviceName: keeper
  replicas: 1
  selector: {matchLabels: {app: keeper}}
  template:
    metadata: {labels: {app: keeper}}
    spec:
      terminationGracePeriodSeconds: 20
      containers:
      - name: main
        image: busybox:1.36
        command:
        - sh
        - -c
        - >-
          cat /data/journal 2>/dev/null; echo "start $(hostname)" >> /data/journal;
          trap 'echo term >> /data/journal; exit 0' TERM;
          while true; do sleep 0.1; done
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
""",
    )
    first = wait_phase(cluster, real_ns, "keeper-0", "Running")
    wait_for(lambda: "start keeper-0" in _claim_text(cluster, real_ns), what="first start")
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "keeper-0", "-n", real_ns, "--wait=true", timeout=60)
    assert time.monotonic() - started < 15  # SIGTERM ended it long before the grace period

    def recreated() -> bool:
        p = pod(cluster, real_ns, "keeper-0")
        return (
            bool(p)
            and p["metadata"]["uid"] != first["metadata"]["uid"]
            and (p.get("status") or {}).get("phase") == "Running"
        )

    wait_for(recreated, timeout=60, what="keeper-0 recreated")
    wait_for(
        lambda: "start keeper-0\nterm\n" in logs(cluster, real_ns, "keeper-0"),
        timeout=30,
        what="the new pod reading the claim",
    )
    plan = net_plan(cluster)
    old_ip = first["status"]["podIP"]
    new_ip = pod(cluster, real_ns, "keeper-0")["status"]["podIP"]
    if old_ip != new_ip:
        assert plan.netns(plan.pod_index(ipaddress.IPv4Address(old_ip))) not in (
            network.own_netns(plan)
        )


def _claim_text(cluster: Cluster, ns: str) -> str:
    assert cluster.state_dir is not None
    claim = get_json(cluster, "-n", ns, "pvc/data-keeper-0")
    path = cluster.state_dir / "agent" / "claims" / claim["metadata"]["uid"] / "journal"
    return path.read_text() if path.exists() else ""


def test_grace_period_ends_with_sigkill_and_no_sandbox_is_left(
    cluster: Cluster, real_ns: str
) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "trap '' TERM; while true; do sleep 0.1; done"]
""",
    )
    p = wait_phase(cluster, real_ns, "stubborn", "Running")
    plan = net_plan(cluster)
    netns = plan.netns(plan.pod_index(ipaddress.IPv4Address(p["status"]["podIP"])))
    assert netns in network.own_netns(plan)
    assert cluster.state_dir is not None
    pod_dir = cluster.state_dir / "agent" / "pods" / f"{real_ns}_stubborn_{p['metadata']['uid']}"
    assert pod_dir.is_dir()
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "-n", real_ns, "--wait=true", timeout=60)
    took = time.monotonic() - started
    assert took >= 2  # it ignored SIGTERM for the whole grace period
    assert netns not in network.own_netns(plan)
    assert not pod_dir.exists()


def test_orphaned_descendants_are_reaped_before_the_pod_is_gone(
    cluster: Cluster, real_ns: str
) -> None:
    """A daemon's children outlive the shell that started them: once the pod is deleted,
    none is left, not even as a zombie (the agent adopts and reaps them)."""
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: forks}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "sh -c 'sleep 1000 & sleep 1000 &'; touch /tmp/forked; exec sleep 1000"]
    readinessProbe: {exec: {command: [test, -f, /tmp/forked]}, periodSeconds: 1}
""",
    )
    p = wait_ready(cluster, real_ns, "forks")
    plan = net_plan(cluster)
    uid = p["metadata"]["uid"]
    assert len(processes_of_pods(plan, [uid])) >= 3  # the main sleep and two orphans
    cluster.kubectl("delete", "pod", "forks", "-n", real_ns, "--wait=true", timeout=60)
    assert processes_of_pods(plan, [uid]) == []


def test_unmappable_image_waits_with_a_clear_reason_and_never_becomes_ready(
    cluster: Cluster, real_ns: str
) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  containers:
  - {name: main, image: registry.invalid/team/app:2.0}
""",
    )

    def waiting_reason() -> str:
        cs = container_status(pod(cluster, real_ns, "nowhere"))
        return str(((cs.get("state") or {}).get("waiting") or {}).get("reason", ""))

    wait_for(lambda: waiting_reason() in ("ErrImagePull", "ImagePullBackOff"), what="pull error")
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        p = pod(cluster, real_ns, "nowhere")
        assert condition(p, "Ready") != "True"
        assert p["status"]["phase"] == "Pending"
        time.sleep(0.5)
    message = container_status(p)["state"]["waiting"]["message"]
    assert "registry.invalid/team/app:2.0" in message
    assert "has no program on this node" in message


def test_missing_secret_waits_then_starts_once_it_exists(cluster: Cluster, real_ns: str) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Pod
metadata: {name: patient}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "echo got $TOKEN; exec sleep 1000"]
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: late, key: token}}}]
""",
    )

    def config_error() -> str:
        cs = container_status(pod(cluster, real_ns, "patient"))
        waiting = (cs.get("state") or {}).get("waiting") or {}
        return (
            str(waiting.get("message", ""))
            if waiting.get("reason") == "CreateContainerConfigError"
            else ""
        )

    wait_for(lambda: bool(config_error()), what="CreateContainerConfigError")
    assert config_error() == 'secret "late" not found'
    cluster.kubectl("create", "secret", "generic", "late", "-n", real_ns, "--from-literal=token=ok")
    wait_phase(cluster, real_ns, "patient", "Running")
    wait_for(lambda: logs(cluster, real_ns, "patient") == "got ok\n", what="the secret's value")


SERVE_HOSTNAME = "hostname > /srv/index.html && exec python -m http.server -d /srv 8000"

CLIENT = """
import json, socket, urllib.request
print(json.dumps({
    "clusterip": socket.gethostbyname("web"),
    "headless": sorted(socket.gethostbyname_ex("web-headless")[2]),
    "through_service": sorted({urllib.request.urlopen("http://web/", timeout=5).read().decode()
                               for _ in range(8)}),
}))
"""


def test_pods_listen_on_their_own_addresses_and_find_services_by_name(
    cluster: Cluster, real_ns: str
) -> None:
    apply(
        cluster,
        real_ns,
        f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: python:3.11
        command: [sh, -c, {json.dumps(SERVE_HOSTNAME)}]
        ports: [{{name: http, containerPort: 8000}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
        volumeMounts: [{{name: srv, mountPath: /srv}}]
      volumes: [{{name: srv, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-headless}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8000}}]
""",
    )
    cluster.kubectl(
        "rollout", "status", "deployment/web", "-n", real_ns, "--timeout=90s", timeout=100
    )
    pods = get_json(cluster, "-n", real_ns, "pods", "-l", "app=web")["items"]
    ips = sorted(p["status"]["podIP"] for p in pods)

    def both_endpoints_ready() -> bool:
        slices = get_json(
            cluster, "-n", real_ns, "endpointslices", "-l", "kubernetes.io/service-name=web"
        )["items"]
        ready = [
            a
            for s in slices
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready")
            for a in e["addresses"]
        ]
        return sorted(ready) == ips

    wait_for(both_endpoints_ready, what="both pods in the Service's EndpointSlice")
    names = sorted(p["metadata"]["name"] for p in pods)
    plan = net_plan(cluster)
    assert len(set(ips)) == 2
    assert all(plan.in_pod_network(ip) for ip in ips)
    apply(
        cluster,
        real_ns,
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  restartPolicy: Never
  containers:
  - {{name: main, image: python:3.11, command: [python, -c, {json.dumps(CLIENT)}]}}
""",
    )
    p = wait_phase(cluster, real_ns, "client", "Succeeded", "Failed")
    assert p["status"]["phase"] == "Succeeded", logs(cluster, real_ns, "client")
    out = _json_output(cluster, real_ns, "client")
    assert out["clusterip"] == get_json(cluster, "-n", real_ns, "service/web")["spec"]["clusterIP"]
    assert out["headless"] == ips
    assert out["through_service"] == [f"{n}\n" for n in names]  # round robin reached both


def test_extra_image_mapping_gives_an_image_its_environment(cluster: Cluster, real_ns: str) -> None:
    local_cluster.set_images(
        cluster,
        [{"image": "example.test/faulty:*", "base": "python", "env": {"FAULT": "errors"}}],
    )
    try:
        apply(
            cluster,
            real_ns,
            """
apiVersion: v1
kind: Pod
metadata: {name: faulty}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "example.test/faulty:1", command: [sh, -c, "echo fault=$FAULT"]}
""",
        )
        p = wait_phase(cluster, real_ns, "faulty", "Succeeded", "Failed")
        assert p["status"]["phase"] == "Succeeded"
        assert logs(cluster, real_ns, "faulty") == "fault=errors\n"
    finally:
        local_cluster.set_images(cluster, [])


def test_configmap_volume_follows_its_configmap(cluster: Cluster, real_ns: str) -> None:
    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: ConfigMap
metadata: {name: live}
data: {color: blue}
---
apiVersion: v1
kind: Pod
metadata: {name: watcher}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "while true; do cat /cfg/color; echo; sleep 0.5; done"]
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes: [{name: cfg, configMap: {name: live}}]
""",
    )
    wait_for(lambda: "blue" in logs(cluster, real_ns, "watcher"), what="the first value")
    cluster.kubectl(
        "patch",
        "configmap",
        "live",
        "-n",
        real_ns,
        "--type=merge",
        "-p",
        '{"data": {"color": "green"}}',
    )
    wait_for(
        lambda: "green" in logs(cluster, real_ns, "watcher"),
        timeout=60,
        what="the updated value in the mounted file",
    )


POSTGRES = """
apiVersion: v1
kind: Secret
metadata: {name: pg}
stringData: {password: pw-for-tests}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg}
spec:
  serviceName: pg
  replicas: 1
  selector: {matchLabels: {app: pg}}
  template:
    metadata: {labels: {app: pg}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999}
      containers:
      - name: postgres
        image: pgvector/pgvector:pg17
        env:
        - {name: POSTGRES_USER, value: rag}
        - {name: POSTGRES_DB, value: rag}
        - {name: POSTGRES_PASSWORD, valueFrom: {secretKeyRef: {name: pg, key: password}}}
        - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
        ports: [{name: postgres, containerPort: 5432}]
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
        readinessProbe: {exec: {command: [pg_isready, -U, rag, -d, rag]}, periodSeconds: 1}
        volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
        - {name: tmp, mountPath: /tmp}
        - {name: run, mountPath: /var/run/postgresql}
      volumes: [{name: tmp, emptyDir: {}}, {name: run, emptyDir: {}}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def _psql(ip: str, sql: str) -> str:
    from hack.node_agent.images import postgres_bin_dir

    out = subprocess.run(
        [
            str(postgres_bin_dir() / "psql"),
            "-X",
            "-At",
            "-h",
            ip,
            "-U",
            "rag",
            "-d",
            "rag",
            "-c",
            sql,
        ],
        env={**os.environ, "PGPASSWORD": "pw-for-tests"},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_postgres_pod_comes_back_with_its_data(cluster: Cluster, real_ns: str) -> None:
    """The pgvector image as the operator runs it: read-only root, uid 999, exec probe."""
    apply(cluster, real_ns, POSTGRES)
    first = wait_ready(cluster, real_ns, "pg-0", timeout=120)
    assert first["spec"]["nodeName"] in REAL_NODE_NAMES
    _psql(
        first["status"]["podIP"],
        "CREATE EXTENSION vector; CREATE TABLE kept (v vector(3));"
        "INSERT INTO kept VALUES ('[1,2,3]');",
    )
    cluster.kubectl("delete", "pod", "pg-0", "-n", real_ns, "--wait=true", timeout=60)

    def back() -> bool:
        p = pod(cluster, real_ns, "pg-0")
        return (
            bool(p)
            and p["metadata"]["uid"] != first["metadata"]["uid"]
            and (condition(p, "Ready") == "True")
        )

    wait_for(back, timeout=120, what="pg-0 back and Ready")
    again = pod(cluster, real_ns, "pg-0")
    assert _psql(again["status"]["podIP"], "SELECT v FROM kept") == "[1,2,3]"
    # Its data is a claim directory, owned by the postgres user through fsGroup.
    assert "/var/run/postgresql/.s.PGSQL.5432" in logs(cluster, real_ns, "pg-0")


def test_neo4j_pod_honours_neo4j_auth(cluster: Cluster, real_ns: str) -> None:
    """The neo4j image as the operator runs it: NEO4J_AUTH from a Secret, Bolt on 7687."""
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError

    apply(
        cluster,
        real_ns,
        """
apiVersion: v1
kind: Secret
metadata: {name: graph}
stringData: {auth: neo4j/graph-password}
---
apiVersion: v1
kind: Pod
metadata: {name: graph}
spec:
  securityContext: {runAsUser: 7474, runAsGroup: 7474, fsGroup: 7474}
  containers:
  - name: neo4j
    image: neo4j:5.26-community
    env: [{name: NEO4J_AUTH, valueFrom: {secretKeyRef: {name: graph, key: auth}}}]
    ports: [{name: bolt, containerPort: 7687}]
    readinessProbe: {tcpSocket: {port: bolt}, periodSeconds: 1}
    volumeMounts: [{name: data, mountPath: /data}, {name: logs, mountPath: /logs}]
  volumes: [{name: data, emptyDir: {}}, {name: logs, emptyDir: {}}]
""",
    )
    p = wait_ready(cluster, real_ns, "graph", timeout=180)
    uri = f"bolt://{p['status']['podIP']}:7687"
    with GraphDatabase.driver(uri, auth=("neo4j", "graph-password")) as driver:
        records, _, _ = driver.execute_query("RETURN 41 + 1 AS answer")
        assert records[0]["answer"] == 42
    with (
        GraphDatabase.driver(uri, auth=("neo4j", "wrong-password")) as driver,
        pytest.raises(AuthError),
    ):
        driver.execute_query("RETURN 1")
