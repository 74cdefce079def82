"""Fixtures for the operator's integration tests: CRD installed, the operator running as its
own process (`ragops-operator`) against the local cluster, a namespace per test, and a small
client for reading objects quickly.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from hack.cluster import Cluster, install_crds
from tests.fixtures.cluster import wait_for

REPO = Path(__file__).resolve().parents[3]
CRD_FILE = REPO / "crds" / "ragops.io_ragsystems.yaml"
RESYNC_S = 2.0
READY_TIMEOUT_S = 15.0
DISCOVERY_S = 2.0
# Kinds read through the custom objects API: (group, version, plural).
CUSTOM_KINDS = {
    "RagSystem": ("ragops.io", "v1alpha1", "ragsystems"),
    "HTTPRoute": ("gateway.networking.k8s.io", "v1", "httproutes"),
    "ServiceMonitor": ("monitoring.coreos.com", "v1", "servicemonitors"),
    "PrometheusRule": ("monitoring.coreos.com", "v1", "prometheusrules"),
    "RagBackup": ("ragops.io", "v1alpha1", "ragbackups"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Kube:
    """Typed reads by kind name for the tests (faster than spawning kubectl)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
        self.core = k8s.CoreV1Api(self.api)
        self.apps = k8s.AppsV1Api(self.api)
        self.custom = k8s.CustomObjectsApi(self.api)
        self.policy = k8s.PolicyV1Api(self.api)
        self.net = k8s.NetworkingV1Api(self.api)
        self.hpa = k8s.AutoscalingV2Api(self.api)

    def _reader(self, kind: str) -> Any:
        return {
            "ConfigMap": self.core.read_namespaced_config_map,
            "Secret": self.core.read_namespaced_secret,
            "Service": self.core.read_namespaced_service,
            "PersistentVolumeClaim": self.core.read_namespaced_persistent_volume_claim,
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "PodDisruptionBudget": self.policy.read_namespaced_pod_disruption_budget,
            "NetworkPolicy": self.net.read_namespaced_network_policy,
            "Ingress": self.net.read_namespaced_ingress,
            "HorizontalPodAutoscaler": self.hpa.read_namespaced_horizontal_pod_autoscaler,
            "Job": k8s.BatchV1Api(self.api).read_namespaced_job,
            "CronJob": k8s.BatchV1Api(self.api).read_namespaced_cron_job,
        }[kind]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            if kind in CUSTOM_KINDS:
                group, version, plural = CUSTOM_KINDS[kind]
                obj = self.custom.get_namespaced_custom_object(
                    group, version, namespace, plural, name
                )
            else:
                obj = self._reader(kind)(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        out: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return out

    def rag(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.get("RagSystem", namespace, name)
        assert obj is not None, f"RagSystem {namespace}/{name} not found"
        return obj

    def pvcs(self, namespace: str) -> list[str]:
        items = self.core.list_namespaced_persistent_volume_claim(namespace).items
        return sorted(i.metadata.name for i in items if i.metadata.deletion_timestamp is None)

    def events(self, namespace: str, name: str) -> list[str]:
        items = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=RagSystem"
        ).items
        return [i.reason for i in items]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


class Operator:
    """`ragops-operator` as a child process; can be killed and started again."""

    def __init__(self, cluster: Cluster, log_dir: Path) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.starts = 0
        self.extra_args: list[str] = []

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        env = self.cluster.env()
        env["PYTHONUNBUFFERED"] = "1"
        # Optional CRDs installed while the operator runs are noticed within this.
        env["RAGOPS_DISCOVERY_SECONDS"] = str(DISCOVERY_S)
        exe = REPO / ".venv" / "bin" / "ragops-operator"
        cmd = [
            str(exe),
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            "--resync-seconds",
            str(RESYNC_S),
            "--ready-timeout",
            str(READY_TIMEOUT_S),
            *self.extra_args,
        ]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.alive, timeout=30, what="operator liveness endpoint")

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            pytest.fail(f"operator exited; log:\n{self.tail()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1
            ) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as resp:
            return str(resp.read().decode())

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "<no log>"


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> Path:
    install_crds(cluster)
    return CRD_FILE


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster.kubeconfig)


@pytest.fixture(scope="package")
def operator(
    cluster: Cluster, crd: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """One operator for this package's tests, stopped when they are done (so tests
    elsewhere in the session can run their own)."""
    op = Operator(cluster, tmp_path_factory.mktemp("operator"))
    op.start()
    yield op
    op.kill(signal.SIGTERM)


@pytest.fixture
def ns(cluster: Cluster, crd: Path) -> Iterator[str]:
    """A fresh namespace for one test (deleted afterwards without waiting)."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    wait_for(
        lambda: cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        what=f"ServiceAccount {name}/default",
    )
    yield name
    # Let the operator run its finalizers before the namespace goes.
    cluster.kubectl("delete", "ragsystems", "--all", "-n", name, "--wait=false", check=False)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(autouse=True)
def _operator_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "operator" in request.fixturenames:
        op: Operator = request.getfixturevalue("operator")
        print(f"--- operator log ({op.log_path}) ---\n{op.tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def rag_manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": name},
        "spec": {"version": "0.1.0", **spec},
    }


def wait_phase(kube: Kube, ns: str, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = kube.get("RagSystem", ns, name) or {}
        status = seen.get("status") or {}
        if status.get("phase") == phase and status.get("observedGeneration") == (
            seen.get("metadata") or {}
        ).get("generation"):
            return seen
        time.sleep(0.2)
    pytest.fail(f"{ns}/{name} not {phase} after {timeout}s; status: {seen.get('status')}")
