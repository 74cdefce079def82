"""How the operator scales: N RagSystems applied at once, with the operator as its own process.

Figures, per N (1, 50, 200; ``--quick``: 1 and 20; ``--large`` adds 1,000), each run in a
namespace of its own that is removed before the next run (each system takes one ClusterIP of
the local cluster's Service range, 1,022 addresses, and six pods of its fake nodes' 2,044;
``--large`` starts a cluster of eight address slots, ``hack.cluster up --span 8``, with room for
16,380 pods and 8,190 ClusterIPs, as the last run's ~6,000 pods stay while its floor runs):
- ``children_p50_s`` / ``children_p95_s``: per system, seconds from the RagSystem appearing
  (its watch ADDED event) to the last of its 13 children appearing;
- ``ready_s``: seconds from the start of the apply to every system of the run showing
  ``phase: Ready`` for its current generation;
and once every system of the last run is Ready (``idle_all_ready`` says whether that
happened within the wait):
- ``idle_writes_per_min``: write requests (POST, PUT, PATCH, APPLY, DELETE) the API server
  counted (``apiserver_request_total``) for the kinds the operator writes, per minute, over an
  idle window (children's status subresources and kwok's volume writes left out), plus
  new Events about RagSystems;
- ``peak_rss_mb``: the operator process's peak resident memory over the whole run;
- ``operator_cpu_s``, ``control_plane_cpu_s`` (per N): CPU seconds the operator and the
  control plane's processes (etcd, API server, controller-manager, scheduler, kwok) used from
  the apply to Ready; ``floor_control_plane_cpu_s`` the control plane's during the floor
  (where the host's two cores went); ``passes_per_system``, ``pass_s_mean`` and
  ``applies_per_system``: the operator's reconcile passes from apply to Ready (its metrics);
- ``floor_ready_s`` (per N): the floor, measured in the same run in a namespace of its own
  with no RagSystem: the very children the operator would create for N systems (built by
  its builders, stamped as it stamps them, owner references left out), applied straight
  through the operator's own client (`rag_operator.kube.Kube`, server-side apply, the
  ConfigMap first, as many systems at once as the operator's default
  max_parallel_reconciles), timed from the first apply to every Deployment and StatefulSet
  ready and the first migration Job complete (a first install's children include that Job),
  as seen by the same watches that watch the operator's run (so both runs carry the same
  observers); ``ready_to_floor_ratio`` = ``ready_s`` / ``floor_ready_s``;
- ``timeline_s`` (per N): where the operator's run went, the median and the last system's
  second of each step (Postgres ready, the migration Job created and done, every workload
  pod ready, phase Ready);
- ``api_per_system`` and ``floor_api_per_system`` (per N): per system, the API server's
  write requests by resource (whoever made them), its seconds serving requests by verb and
  resource, and the watch events it sent by kind: what the operator's run costs the
  control plane beyond the floor; ``control_plane_cpu_s`` and ``floor_control_plane_cpu_s``
  split by process;
- ``peak_rss_mb_with_unrelated``: after ``--unrelated`` (default 20,000) unrelated
  ConfigMaps and Secrets are created, the main operator stops and two fresh operators with
  --leader-election start; the peak RSS of the one that takes the Lease and resumes the last
  run's systems;
- ``failover_s``: seconds from SIGKILL of that leader to the standby holding the Lease
  (its ``ragops_operator_leader`` gauge at 1), with ``--lease-duration 8``.

Aims: p95 apply->children < 1 s at N=1; Ready within 1.25x the floor at N=200 (and within
120 s if the floor allows); < 200 MB RSS at 200 whatever else the cluster holds; idle writes
0; failover <= 15 s.

Run: ``make bench-operator_scale`` (``ARGS=--quick`` for a run of under a minute;
``ARGS="--large --sizes 1000"`` for N=1,000 alone, about half an hour on two cores). Uses a
running local cluster when ``RAGOPS_KUBECONFIG`` is set, else starts (and stops) its own.
Waits grow with N (a run: 240 s or 1.2 s per system, whichever is longer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from hack import cluster as local_cluster
from rag_operator import drift
from rag_operator.builders import (
    Release,
    build_credentials_secret,
    desired_children,
    runtime_config,
)
from rag_operator.builders.common import runtime_image
from rag_operator.builders.secret import PASSWORD_KEYS
from rag_operator.children import Capabilities
from rag_operator.kube import Kube, KubeError, load_configuration
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.release.migration import job_name

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "crds" / "ragops.io_ragsystems.yaml"
CHILDREN_PER_SYSTEM = 13
RUN_WAIT_PER_SYSTEM_S = 1.2
# Address slots of the --large cluster (hack.node_agent.netplan): the last run's systems stay
# while its floor runs, so it must hold twice 1,000 systems' ~6,000 pods.
LARGE_SPAN = 8
OPERATOR_KINDS = {
    "ragsystems",
    "configmaps",
    "secrets",
    "services",
    "deployments",
    "statefulsets",
    "poddisruptionbudgets",
    "networkpolicies",
    "horizontalpodautoscalers",
    "ingresses",
}
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}
WORKLOAD_LISTS = {
    "list_namespaced_deployment": "Deployment",
    "list_namespaced_stateful_set": "StatefulSet",
    "list_namespaced_job": "Job",
}
LONG_VERBS = {"WATCH", "WATCHLIST", "CONNECT"}  # open for as long as the client wants


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@contextlib.contextmanager
def a_cluster(span: int = 1) -> Iterator[local_cluster.Cluster]:
    external = os.environ.get("RAGOPS_KUBECONFIG")
    if external:
        bdir = local_cluster.bin_dir()
        yield local_cluster.Cluster(kubeconfig=Path(external), server="", bin_dir=bdir)
        return
    with (
        tempfile.TemporaryDirectory(prefix="bench-opscale-") as tmp,
        local_cluster.cluster(Path(tmp) / "cluster", timeout=180, span=span) as c,
    ):
        yield c


class Watcher:
    """First-seen times of RagSystems and children, and when each system went Ready."""

    def __init__(self, api: k8s.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.added: dict[str, float] = {}
        self.children: dict[str, dict[str, float]] = {}
        self.ready: dict[str, float] = {}
        # "Deployment/name" or "StatefulSet/name" -> when it was first seen rolled out
        self.workloads_ready: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        core, apps, batch = (
            k8s.CoreV1Api(self.api),
            k8s.AppsV1Api(self.api),
            k8s.BatchV1Api(self.api),
        )
        policy, net = k8s.PolicyV1Api(self.api), k8s.NetworkingV1Api(self.api)
        custom = k8s.CustomObjectsApi(self.api)
        lists = [
            core.list_namespaced_config_map,
            core.list_namespaced_secret,
            core.list_namespaced_service,
            apps.list_namespaced_deployment,
            apps.list_namespaced_stateful_set,
            policy.list_namespaced_pod_disruption_budget,
            net.list_namespaced_network_policy,
            batch.list_namespaced_job,
        ]
        for fn in lists:
            self._spawn(self._watch_children, fn)
        self._spawn(self._watch_systems, custom)
        time.sleep(1.0)  # let every watch connect before the apply

    def _spawn(self, target: Any, arg: Any) -> None:
        thread = threading.Thread(target=target, args=(arg,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _watch_children(self, list_fn: Any) -> None:
        while not self.stop.is_set():
            try:
                self._children_once(list_fn)
            except Exception:  # a watch that expires or times out starts again from a list
                time.sleep(0.5)

    def _children_once(self, list_fn: Any) -> None:
        w = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        while not self.stop.is_set():
            for event in w.stream(  # type: ignore[no-untyped-call]
                list_fn,
                self.namespace,
                timeout_seconds=30,
                label_selector="app.kubernetes.io/managed-by=ragops-operator",
            ):
                now = time.monotonic()
                obj = event["object"]
                instance = (obj.metadata.labels or {}).get("app.kubernetes.io/instance")
                if not instance:
                    continue
                key = f"{obj.kind or list_fn.__name__}/{obj.metadata.name}"
                kind = WORKLOAD_LISTS.get(list_fn.__name__)
                with self.lock:
                    if kind != "Job":  # made after Postgres is ready: not one of the 13
                        self.children.setdefault(instance, {}).setdefault(key, now)
                    if kind and workload_ready(obj):
                        self.workloads_ready.setdefault(f"{kind}/{obj.metadata.name}", now)
                if self.stop.is_set():
                    break

    def _watch_systems(self, custom: k8s.CustomObjectsApi) -> None:
        while not self.stop.is_set():
            try:
                self._systems_once(custom)
            except Exception:
                time.sleep(0.5)

    def _systems_once(self, custom: k8s.CustomObjectsApi) -> None:
        w = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        while not self.stop.is_set():
            for event in w.stream(  # type: ignore[no-untyped-call]
                custom.list_namespaced_custom_object,
                "ragops.io",
                "v1alpha1",
                self.namespace,
                "ragsystems",
                timeout_seconds=30,
            ):
                now = time.monotonic()
                obj = event["object"]
                name = obj["metadata"]["name"]
                status = obj.get("status") or {}
                with self.lock:
                    self.added.setdefault(name, now)
                    if status.get("phase") == "Ready" and status.get("observedGeneration") == obj[
                        "metadata"
                    ].get("generation"):
                        self.ready.setdefault(name, now)
                if self.stop.is_set():
                    break


def manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "ragops.io/v1alpha1",
        "kind": "RagSystem",
        "metadata": {"name": f"rag-{i:03d}"},
        "spec": {"version": "0.1.0", "api": {"replicas": 1}},
    }


def apply_all(api: k8s.ApiClient, namespace: str, n: int) -> None:
    """Create the N RagSystems at once (16 concurrent requests)."""
    custom = k8s.CustomObjectsApi(api)

    def create(i: int) -> None:
        custom.create_namespaced_custom_object(
            "ragops.io", "v1alpha1", namespace, "ragsystems", manifest(i)
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, range(n)))


def floor_children(namespace: str, n: int) -> list[list[dict[str, Any]]]:
    """Per system, the children the operator would apply for `manifest(i)` (the credentials
    Secret first), stamped with its applied-hash annotation, without owner references."""
    cfg = OperatorConfig()
    out: list[list[dict[str, Any]]] = []
    for i in range(n):
        body = manifest(i)
        body["metadata"] = {**body["metadata"], "namespace": namespace, "uid": f"floor-{i}"}
        rs = RagSystem.from_body(body)
        passwords = {k: secrets.token_urlsafe(24) for k in PASSWORD_KEYS}
        kids = [build_credentials_secret(rs, passwords)]
        # A first install's children: the Deployments at the desired version and the
        # first migration Job beside them.
        version = rs.spec.version
        job = job_name(rs, runtime_image(rs), rs.metadata.generation, "")
        release = Release(stable_version=version, migration_job=job, migration_version=version)
        for child in desired_children(rs, cfg, Capabilities(), runtime_config(rs), release):
            kids.append(drift.stamp(child, drift.applied_hash(child)))
        for kid in kids:
            kid["metadata"].pop("ownerReferences", None)
        out.append(kids)
    return out


async def apply_floor(kubeconfig: Path, systems: list[list[dict[str, Any]]]) -> None:
    """Apply every system's children as the operator does: the Secret created, the
    ConfigMap first, the rest at once; max_parallel_reconciles systems at a time."""
    kube = Kube(load_configuration(str(kubeconfig)), field_manager="ragops-floor")
    slots = asyncio.Semaphore(OperatorConfig().max_parallel_reconciles)

    async def retried(call: Any, kid: dict[str, Any]) -> None:
        # As the operator does (its next pass): transient API errors are tried again.
        for attempt in range(6):
            try:
                await call(kid)
                return
            except KubeError as exc:
                if not exc.transient or attempt == 5:
                    raise
                await asyncio.sleep(2.0)

    async def one(kids: list[dict[str, Any]]) -> None:
        async with slots:
            await retried(kube.create, kids[0])
            first = [k for k in kids[1:] if k["kind"] == "ConfigMap"]
            rest = [k for k in kids[1:] if k["kind"] != "ConfigMap"]
            for batch in (first, rest):
                await asyncio.gather(*(retried(kube.apply, k) for k in batch))

    try:
        await asyncio.gather(*(one(kids) for kids in systems))
    finally:
        await kube.close()


def workload_ready(obj: Any) -> bool:
    """Whether a Deployment or StatefulSet has rolled out its current spec, every replica
    ready; whether a Job has completed."""
    status = obj.status
    if isinstance(obj, k8s.V1Job):
        return bool(status is not None and (status.succeeded or 0) > 0)
    want = obj.spec.replicas or 0
    return bool(
        status is not None
        and (status.observed_generation or 0) >= (obj.metadata.generation or 0)
        and (status.ready_replicas or 0) == want
        and (status.updated_replicas or 0) == want
    )


def run_floor(
    c: local_cluster.Cluster, api: k8s.ApiClient, n: int, timeout: float
) -> dict[str, Any]:
    """The floor: the children applied straight, watched as the operator's run is watched
    (the same watches), timed to every Deployment and StatefulSet ready and every migration
    Job complete."""
    namespace = make_namespace(c, f"floor-{n}")
    systems = floor_children(namespace, n)
    awaited = {
        f"{k['kind']}/{k['metadata']['name']}"
        for s in systems
        for k in s
        if k["kind"] in ("Deployment", "StatefulSet", "Job")
    }
    watcher = Watcher(api, namespace)
    watcher.start()
    counts, cpu = api_counts(c), control_plane_cpu(c)
    started = time.monotonic()
    asyncio.run(apply_floor(c.kubeconfig, systems))
    applied_s = time.monotonic() - started
    ready_s: float | None = None
    while time.monotonic() < started + timeout:
        with watcher.lock:
            seen = watcher.workloads_ready
            if awaited <= seen.keys():
                ready_s = max(seen[w] for w in awaited) - started
                break
        time.sleep(0.2)
    watcher.stop.set()
    floor_api = per_system(counts, api_counts(c), n)
    floor_cpu = cpu_since(cpu, control_plane_cpu(c))
    remove_namespaces(c, [namespace], timeout=max(180.0, timeout))
    return {
        "floor_ready_s": round(ready_s, 2) if ready_s else None,
        "floor_apply_s": round(applied_s, 2),
        "floor_api_per_system": floor_api,
        "floor_control_plane_cpu_s": floor_cpu,
    }


def make_namespace(c: local_cluster.Cluster, prefix: str) -> str:
    namespace = f"{prefix}-{int(time.time()) % 100000}"
    c.kubectl("create", "namespace", namespace)
    deadline = time.monotonic() + 30
    while c.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("namespace ServiceAccount never appeared")
        time.sleep(0.2)
    return namespace


def api_counts(c: local_cluster.Cluster) -> dict[str, dict[str, float]]:
    """What the API server has counted so far: ``writes`` (write requests by resource,
    ``pods/status`` for a subresource, whoever made them), ``busy_s`` (seconds spent serving
    requests, by verb and resource, watches left out) and ``watch_events`` (events sent to
    watchers, by kind)."""
    text = c.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    out: dict[str, dict[str, float]] = {"writes": {}, "busy_s": {}, "watch_events": {}}
    pattern = re.compile(
        r"^(apiserver_request_total|apiserver_request_duration_seconds_sum"
        r"|apiserver_watch_events_total)\{([^}]*)\} ([0-9.e+]+)$"
    )
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        name, value = match.group(1), float(match.group(3))
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        verb = labels.get("verb", "")
        if name == "apiserver_request_total" and verb in WRITE_VERBS:
            key, into = resource, out["writes"]
        elif name == "apiserver_request_duration_seconds_sum" and verb not in LONG_VERBS:
            key, into = f"{verb} {resource}", out["busy_s"]
        elif name == "apiserver_watch_events_total":
            key, into = labels.get("kind", "") or labels.get("resource", ""), out["watch_events"]
        else:
            continue
        into[key] = into.get(key, 0.0) + value
    return out


def per_system(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], n: int, top: int = 12
) -> dict[str, dict[str, float]]:
    """Each of `api_counts`' figures per system between two readings, the largest first
    (``writes`` whole, the others their `top` largest), each with its ``total``."""
    out: dict[str, dict[str, float]] = {}
    for figure, now in after.items():
        old = before.get(figure, {})
        delta = {k: (v - old.get(k, 0.0)) / n for k, v in now.items()}
        ordered = sorted(((k, v) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1])
        if figure != "writes":
            ordered = ordered[:top]
        digits = 3 if figure == "busy_s" else 1
        shown = {k: round(v, digits) for k, v in ordered}
        out[figure] = {**shown, "total": round(sum(delta.values()), digits)}
    return out


def apiserver_writes(c: local_cluster.Cluster) -> float:
    """Writes the API server counted that the operator could have made.

    Children's status subresources (written by controllers) and volume claims (bound by kwok)
    are left out; the operator's Events are counted separately (`ragsystem_events`).
    """
    total = 0.0
    for resource, count in api_counts(c)["writes"].items():
        kind, _, sub = resource.partition("/")
        if kind in OPERATOR_KINDS and (not sub or kind == "ragsystems"):
            total += count
    return total


def ragsystem_events(api: k8s.ApiClient) -> int:
    """Events about RagSystems in every namespace, counting repeats."""
    items = (
        k8s.CoreV1Api(api)
        .list_event_for_all_namespaces(field_selector="involvedObject.kind=RagSystem")
        .items
    )
    return sum(int(e.count or 1) for e in items)


def wait_all_ready(api: k8s.ApiClient, namespace: str, timeout: float) -> bool:
    custom = k8s.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: Any = custom.list_namespaced_custom_object(
            "ragops.io", "v1alpha1", namespace, "ragsystems"
        )
        items: list[dict[str, Any]] = found["items"]
        if items and all((i.get("status") or {}).get("phase") == "Ready" for i in items):
            return True
        time.sleep(2.0)
    return False


def remove_namespaces(c: local_cluster.Cluster, names: list[str], timeout: float = 180) -> None:
    for name in names:
        c.kubectl("delete", "namespace", name, "--wait=false", check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = c.kubectl("get", "namespaces", "-o", "name", check=False).stdout
        if not any(f"namespace/{name}" in left for name in names):
            return
        time.sleep(1.0)


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.25)


def since(stamp: Any, wall_start: float) -> float | None:
    """Seconds from `wall_start` (time.time()) to an API timestamp (a datetime or None); API
    timestamps are whole seconds, so one in the apply's own second counts as 0."""
    return None if stamp is None else max(0.0, float(stamp.timestamp()) - wall_start)


def pod_ready_at(pod: Any) -> Any:
    for cond in (pod.status.conditions or []) if pod.status else []:
        if cond.type == "Ready" and cond.status == "True":
            return cond.last_transition_time
    return None


def timeline(
    api: k8s.ApiClient, namespace: str, wall_start: float, ready: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Where a run's time went, per step: the median and the last over its systems, in
    seconds from the apply's start (API timestamps: one-second resolution).

    Steps: ``postgres_ready`` (its pod's Ready), ``migration_created`` / ``migration_done``
    (the migration Job's creation and completion), ``workloads_ready`` (the last pod of a
    Deployment or StatefulSet Ready: what the floor waits for) and ``ready`` (phase Ready,
    from the watch).
    """
    steps: dict[str, dict[str, float]] = {}

    def note(step: str, instance: str, at: float | None) -> None:
        if at is not None:
            per = steps.setdefault(step, {})
            per[instance] = max(per.get(instance, at), at)

    pods: list[Any] = k8s.CoreV1Api(api).list_namespaced_pod(namespace).items
    jobs: list[Any] = k8s.BatchV1Api(api).list_namespaced_job(namespace).items
    for pod in pods:
        labels = pod.metadata.labels or {}
        instance = labels.get("app.kubernetes.io/instance", "")
        if "job-name" in labels or "batch.kubernetes.io/job-name" in labels:
            continue
        at = since(pod_ready_at(pod), wall_start)
        note("workloads_ready", instance, at)
        if labels.get("app.kubernetes.io/component") == "postgres":
            note("postgres_ready", instance, at)
    for job in jobs:
        if "-migrate-" not in job.metadata.name:
            continue
        instance = (job.metadata.labels or {}).get("app.kubernetes.io/instance", "")
        note("migration_created", instance, since(job.metadata.creation_timestamp, wall_start))
        note("migration_done", instance, since(job.status.completion_time, wall_start))
    steps["ready"] = dict(ready)
    order = ("postgres_ready", "migration_created", "migration_done", "workloads_ready", "ready")
    return {
        step: {
            "p50": round(percentile(list(steps[step].values()), 0.5), 1),
            "last": round(max(steps[step].values()), 1),
        }
        for step in order
        if steps.get(step)
    }


def run_once(
    c: local_cluster.Cluster, api: k8s.ApiClient, n: int, timeout: float
) -> dict[str, Any]:
    namespace = make_namespace(c, f"bench-{n}")
    watcher = Watcher(api, namespace)
    watcher.start()
    wall_start = time.time()
    started = time.monotonic()
    apply_all(api, namespace, n)
    applied_s = time.monotonic() - started
    names = [f"rag-{i:03d}" for i in range(n)]
    end = started + timeout
    while time.monotonic() < end:
        with watcher.lock:
            if all(name in watcher.ready for name in names):
                break
        time.sleep(0.2)
    watcher.stop.set()
    with watcher.lock:
        durations = []
        for name in names:
            kids = watcher.children.get(name, {})
            if name in watcher.added and len(kids) >= CHILDREN_PER_SYSTEM:
                durations.append(max(kids.values()) - watcher.added[name])
        ready = [watcher.ready[name] for name in names if name in watcher.ready]
    all_ready = len(ready) == n
    steps = timeline(api, namespace, wall_start, {k: v - started for k, v in watcher.ready.items()})
    return {
        "n": n,
        "children_p50_s": round(percentile(durations, 0.5), 3),
        "children_p95_s": round(percentile(durations, 0.95), 3),
        "ready_s": round(max(ready) - started, 2) if all_ready else None,
        "apply_s": round(applied_s, 2),
        "ready_count": len(ready),
        "children_complete": len(durations),
        "timeline_s": steps,
        "namespace": namespace,
    }


class OperatorProcess:
    """`ragops-operator` as a child process, with its ports and a peak-RSS sampler."""

    def __init__(self, c: local_cluster.Cluster, args: list[str], log_dir: Path) -> None:
        env = c.env()
        env["PYTHONUNBUFFERED"] = "1"
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.log_path = log_dir / f"operator-{self.metrics_port}.log"
        cmd = [str(REPO / ".venv" / "bin" / "ragops-operator")]
        cmd += ["--metrics-port", str(self.metrics_port)]
        cmd += ["--liveness-port", str(self.liveness_port), *args]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.sampler = RssSampler(self.proc.pid)

    def wait_alive(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.liveness_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"operator did not start; log in {self.log_path}")

    def leader(self) -> bool:
        with contextlib.suppress(OSError):
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as resp:
                for line in resp.read().decode().splitlines():
                    if line.startswith("ragops_operator_leader "):
                        return float(line.split()[1]) == 1.0
        return False

    def metric_sum(self, name: str) -> float:
        """The sum of a metric's series on the operator's /metrics (0 when it has none)."""
        total = 0.0
        with contextlib.suppress(OSError):
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as resp:
                for line in resp.read().decode().splitlines():
                    if line.startswith((f"{name} ", f"{name}{{")):
                        total += float(line.rsplit(" ", 1)[1])
        return total

    def peak_mb(self) -> float:
        return round(self.sampler.peak / 2**20, 1)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the operator process has used so far."""
        with contextlib.suppress(psutil.Error):
            times = self.sampler.proc.cpu_times()
            return float(times.user + times.system)
        return 0.0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.sampler.stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# Reconcile passes, seconds spent in them, and applies of children, from the operator's /metrics.
OPERATOR_WORK = (
    "ragops_operator_reconciles_total",
    "ragops_operator_reconcile_duration_seconds_sum",
    "ragops_operator_applies_total",
)
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def control_plane_cpu(c: local_cluster.Cluster) -> dict[str, float]:
    """CPU seconds each of the local control plane's processes has used so far (this
    cluster's own, by the pids it started; by name for a cluster started elsewhere)."""
    out: dict[str, float] = {}
    wanted = {name: pid for name, pid in c.pids.items() if name in CONTROL_PLANE}
    procs: list[tuple[str, psutil.Process]] = []
    if wanted:
        for name, pid in wanted.items():
            with contextlib.suppress(psutil.Error):
                procs.append((name, psutil.Process(pid)))
    else:
        short = {name[:15]: name for name in CONTROL_PLANE}  # the kernel keeps 15 characters
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] in short:
                procs.append((short[proc.info["name"]], proc))
    for name, proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            out[name] = out.get(name, 0.0) + times.user + times.system
    return out


def cpu_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per process between two readings, and their ``total``."""
    delta = {k: round(v - before.get(k, 0.0), 1) for k, v in after.items()}
    return {**delta, "total": round(sum(delta.values()), 1)}


def create_unrelated(api: k8s.ApiClient, namespace: str, count: int) -> None:
    """count/2 ConfigMaps and count/2 Secrets of about 600 bytes, not the operator's."""
    core = k8s.CoreV1Api(api)
    payload = {"blob": "x" * 512}
    labels = {"app.kubernetes.io/managed-by": "someone-else"}

    def make(i: int) -> None:
        meta = k8s.V1ObjectMeta(name=f"unrelated-{i}", labels=labels)
        if i % 2:
            core.create_namespaced_config_map(
                namespace, k8s.V1ConfigMap(metadata=meta, data=payload)
            )
        else:
            core.create_namespaced_secret(
                namespace, k8s.V1Secret(metadata=meta, string_data=payload)
            )

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(make, range(count)))


def failover(
    c: local_cluster.Cluster, log_dir: Path
) -> tuple[float | None, float, OperatorProcess]:
    """Two operators with leader election; (failover_s, peak RSS of the first leader, the
    surviving one). The leader is killed once it has resumed every system."""
    args = ["--leader-election", "--leader-election-namespace", "default", "--lease-duration", "8"]
    args += ["--leader-election-id", f"bench-{int(time.time())}"]
    first = OperatorProcess(c, args, log_dir)
    first.wait_alive()
    deadline = time.monotonic() + 60
    while not first.leader() and time.monotonic() < deadline:
        time.sleep(0.2)
    second = OperatorProcess(c, args, log_dir)
    second.wait_alive()
    time.sleep(10.0)  # the leader resumes the systems of the last run
    peak = first.peak_mb()
    first.stop(signal.SIGKILL)
    killed = time.monotonic()
    took: float | None = None
    while time.monotonic() < killed + 60:
        if second.leader():
            took = round(time.monotonic() - killed, 2)
            break
        time.sleep(0.1)
    return took, peak, second


def measure(
    c: local_cluster.Cluster, api: k8s.ApiClient, op: OperatorProcess, args: argparse.Namespace
) -> dict[str, Any]:
    sizes = args.sizes or ([1, 20] if args.quick else [1, 50, 200, *([1000] if args.large else [])])
    idle_window = args.idle_window or (15.0 if args.quick else 60.0)
    timeout = 120.0 if args.quick else 240.0
    settle_timeout = 60.0 if args.quick else 420.0
    runs = []
    for i, n in enumerate(sizes):
        op_cpu, plane_cpu = op.cpu_s(), control_plane_cpu(c)
        passes, pass_s, applies = (op.metric_sum(m) for m in OPERATOR_WORK)
        counts = api_counts(c)
        wait = max(timeout, RUN_WAIT_PER_SYSTEM_S * n)
        run = run_once(c, api, n, wait)
        run["api_per_system"] = per_system(counts, api_counts(c), n)
        run["operator_cpu_s"] = round(op.cpu_s() - op_cpu, 1)
        run["passes_per_system"] = round((op.metric_sum(OPERATOR_WORK[0]) - passes) / n, 1)
        run["pass_s_mean"] = round(
            (op.metric_sum(OPERATOR_WORK[1]) - pass_s)
            / max(1.0, op.metric_sum(OPERATOR_WORK[0]) - passes),
            3,
        )
        run["applies_per_system"] = round((op.metric_sum(OPERATOR_WORK[2]) - applies) / n, 1)
        run["control_plane_cpu_s"] = cpu_since(plane_cpu, control_plane_cpu(c))
        if i < len(sizes) - 1:  # runs stay apart; the last one is measured idle
            remove_namespaces(c, [run["namespace"]], timeout=max(180.0, wait))
        run |= run_floor(c, api, n, wait)
        ratio = (
            run["ready_s"] / run["floor_ready_s"]
            if run["ready_s"] and run["floor_ready_s"]
            else None
        )
        run["ready_to_floor_ratio"] = round(ratio, 2) if ratio else None
        print(f"N={n}: {run}", file=sys.stderr)
        runs.append(run)
    # Idle is measured once every system of the last run is Ready (or after a wait).
    all_ready = wait_all_ready(api, runs[-1]["namespace"], settle_timeout)
    time.sleep(8.0)  # let status writes of the last run settle
    before = apiserver_writes(c) + ragsystem_events(api)
    time.sleep(idle_window)
    after = apiserver_writes(c) + ragsystem_events(api)
    return {
        "sizes": sizes,
        "runs": runs,
        "idle_writes_per_min": round((after - before) * 60.0 / idle_window, 2),
        "idle_all_ready": all_ready,
        "idle_window_s": idle_window,
        "peak_rss_mb": op.peak_mb(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1 and 20, short idle window")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the N values")
    parser.add_argument(
        "--large",
        action="store_true",
        help="add N = 1000, on a cluster of four address slots (room for its pods)",
    )
    parser.add_argument("--idle-window", type=float, help="seconds of idle write counting")
    parser.add_argument(
        "--unrelated", type=int, help="unrelated objects (default 20000; quick 2000)"
    )
    args = parser.parse_args()
    unrelated = args.unrelated if args.unrelated is not None else (2000 if args.quick else 20000)
    load_at_start = round(os.getloadavg()[0], 2)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    span = LARGE_SPAN if args.large else 1
    with a_cluster(span) as c:
        c.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
        c.kubectl(
            "wait", "--for=condition=Established", "crd/ragsystems.ragops.io", "--timeout=60s"
        )
        api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(c.kubeconfig)
        )
        op = OperatorProcess(c, [], log_dir)
        survivor: OperatorProcess | None = None
        try:
            op.wait_alive()
            figures = measure(c, api, op, args)
            other = make_namespace(c, "unrelated")
            create_unrelated(api, other, unrelated)
            op.stop()
            took, peak_with, survivor = failover(c, log_dir)
            # Clean up while an operator still runs (it removes its finalizers).
            remove_namespaces(c, [r["namespace"] for r in figures["runs"]] + [other])
        finally:
            op.stop()
            if survivor is not None:
                survivor.stop()
    for run in figures["runs"]:
        run.pop("namespace", None)
    result = {
        "benchmark": "operator_scale",
        "quick": bool(args.quick),
        **figures,
        "unrelated_objects": unrelated,
        "peak_rss_mb_with_unrelated": peak_with,
        "failover_s": took,
        # The controller-manager's and scheduler's client rate (hack.cluster.CLIENT_QPS).
        "control_plane_client_qps": (
            None if os.environ.get("RAGOPS_KUBECONFIG") else local_cluster.client_qps()
        ),
        "cluster_span": None if os.environ.get("RAGOPS_KUBECONFIG") else span,
        "host_cpus": os.cpu_count(),
        "load_avg_1m_at_start": load_at_start,
        "aims": {
            "children_p95_s_at_1": 1.0,
            "ready_to_floor_ratio_at_200": 1.25,
            "ready_s_at_200": 120.0,
            "peak_rss_mb": 200.0,
            "idle_writes_per_min": 0.0,
            "failover_s": 15.0,
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
