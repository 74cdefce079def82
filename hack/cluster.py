"""A real local Kubernetes control plane run as plain processes (no containers).

``python -m hack.cluster up`` starts etcd, kube-apiserver (TLS, RBAC, service-account keys),
kube-controller-manager, kube-scheduler, kwok (two fake nodes whose pods only pretend to run,
plus the ``kwok-volume`` StorageClass whose claims kwok binds) and the node agent (two real
nodes whose pods run as processes, see ``hack/node_agent``), waits until the cluster is usable
and prints the ``export KUBECONFIG=...`` line. ``down`` stops every process it started, removes
every network namespace, address and mount it made, and removes the state directory; ``env``
prints the export line of a running cluster; ``status`` reports it; ``logs POD`` prints a real
pod's container output.

Which nodes a pod lands on is decided per namespace (the PodNodeSelector admission plugin):
pods go to the fake nodes unless their namespace carries the annotation
``scheduler.alpha.kubernetes.io/node-selector: ragops.io/pods=real`` (see :func:`real_namespace`).
All addresses come from a /20 of 198.18.0.0/15 leased for this cluster alone
(``hack.node_agent.netplan``), so several clusters can run side by side on one host;
``up --span 8`` leases eight of them as one, for clusters of thousands of systems (the fake
nodes' pod ranges and the Service range are then eight times as large).

The binaries come from ``hack/k8s/build.sh`` (built from Go modules on first use, cached by
version under ``$RAGOPS_CACHE/k8s``). State, certificates and one log file per component live
in ``$RAGOPS_CLUSTER_DIR`` (default ``.state/cluster`` in the repository).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hack.node_agent import netplan
from hack.node_agent.config import FAKE, NODE_LABEL, REAL, AgentConfig, NodeSpec
from hack.paths import REPO_ROOT, cache_dir
from hack.paths import state_dir as state_root

K8S_DIR = REPO_ROOT / "hack" / "k8s"
BUILD_SCRIPT = K8S_DIR / "build.sh"
STATE_FILE = "cluster.json"
NODE_NAMES = ("kwok-node-0", "kwok-node-1")
REAL_NODE_NAMES = ("ragops-node-0", "ragops-node-1")
NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector"
REAL_SELECTOR = f"{NODE_LABEL}={REAL}"
AGENT_READY_TIMEOUT_S = 60.0
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
)
# Stage files shipped in the kwok module (copied next to the binary by build.sh).
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    "volume/fast/pv-bind.yaml",
    "volume/fast/pv-delete.yaml",
    "volume/fast/pvc-provision.yaml",
    "volume/fast/pvc-delete.yaml",
)
KWOK_STORAGE_CLASS = "volume/fast/storage-class.yaml"
# Client-side rate limits of the controller-manager's controllers and the scheduler (upstream
# defaults 20/30 and 50/100 requests per second). Clusters that run hundreds of workloads
# raise them (200/300 and more); at 20/s the StatefulSet and ReplicaSet controllers alone
# took minutes to create 200 systems' pods here. RAGOPS_CLUSTER_CLIENT_QPS overrides both
# rates (the burst is 1.5 times the rate), e.g. 20 to measure the upstream default.
CLIENT_QPS = 200.0


class ClusterError(RuntimeError):
    """The local cluster could not be built, started or reached."""


# ---------------------------------------------------------------------------------------------
# Locations and binaries


def bin_dir() -> Path:
    """Directory holding every cluster binary: etcd, kube-*, kubectl, kwok, helm."""
    return cache_dir() / "k8s" / "bin"


def default_state_dir() -> Path:
    """State directory of the local cluster (``$RAGOPS_CLUSTER_DIR`` or ``.state/cluster``)."""
    env = os.environ.get("RAGOPS_CLUSTER_DIR")
    return Path(env).resolve() if env else state_root() / "cluster"


def versions() -> dict[str, str]:
    """Component versions pinned in ``hack/k8s/versions.env``."""
    out: dict[str, str] = {}
    for line in (K8S_DIR / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _component_dirs() -> list[Path]:
    v = versions()
    root = cache_dir() / "k8s"
    return [
        root / f"kube-{v['KUBE_VERSION']}",
        root / f"etcd-{v['ETCD_VERSION']}",
        root / f"kwok-{v['KWOK_VERSION']}",
        root / f"helm-{v['HELM_VERSION']}",
    ]


def is_built() -> bool:
    """True when every pinned component is built and linked into :func:`bin_dir`."""
    if not all((d / ".complete").is_file() for d in _component_dirs()):
        return False
    bdir = bin_dir()
    return all((bdir / name).resolve().parent in _component_dirs() for name in BINARIES)


def ensure_built() -> tuple[Path, float | None]:
    """Build missing binaries (slow the first time); returns the bin dir and build seconds."""
    if is_built():
        return bin_dir(), None
    started = time.monotonic()
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], check=False)
    if proc.returncode != 0 or not is_built():
        raise ClusterError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); see its output")
    return bin_dir(), time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# The cluster handle


@dataclass
class Cluster:
    """A running cluster: where its kubeconfig is and how to talk to it."""

    kubeconfig: Path
    server: str
    bin_dir: Path
    state_dir: Path | None = None
    pids: dict[str, int] = field(default_factory=dict)
    gateway_url: str | None = None  # Traefik's entrypoint (the Gateway's listener)
    prometheus_url: str | None = None

    def env(self) -> dict[str, str]:
        """Process environment pointing kubectl/helm at this cluster."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        if self.state_dir is not None:
            helm_home = self.state_dir / "helm"
            env.setdefault("HELM_CACHE_HOME", str(helm_home / "cache"))
            env.setdefault("HELM_CONFIG_HOME", str(helm_home / "config"))
            env.setdefault("HELM_DATA_HOME", str(helm_home / "data"))
        return env

    def _run(
        self, tool: str, args: Sequence[str], *, check: bool, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        exe = self.bin_dir / tool
        cmd = [str(exe) if exe.exists() else tool, *args]
        proc = subprocess.run(
            cmd,
            env=self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster (raises on failure unless ``check=False``)."""
        return self._run("kubectl", args, check=check, input=input, timeout=timeout)

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster (raises on failure unless ``check=False``)."""
        return self._run("helm", args, check=check, input=input, timeout=timeout)

    def export_line(self) -> str:
        return f"export KUBECONFIG={self.kubeconfig}"

    def admin_key(self, namespace: str, ragsystem: str) -> str:
        """The admin API key the operator generated for a RagSystem (Secret NAME-api-keys)."""
        out = self.kubectl(
            "get",
            "secret",
            f"{ragsystem}-api-keys",
            "-n",
            namespace,
            "-o",
            "jsonpath={.data.admin-key}",
        )
        return base64.b64decode(out.stdout).decode()


# ---------------------------------------------------------------------------------------------
# Certificates (openssl CLI; EC P-256 keys are quick to make)


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()}")


def _ec_key(pki: Path, name: str) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", f"{name}.key", cwd=pki)  # fmt: skip


def _signed_cert(pki: Path, name: str, subject: str, extensions: str) -> None:
    _ec_key(pki, name)
    (pki / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr",
             cwd=pki)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "3650", "-sha256", "-extfile", f"{name}.ext",
             "-out", f"{name}.crt", cwd=pki)  # fmt: skip


def make_pki(pki: Path, kubernetes_service_ip: str) -> None:
    """CA, apiserver serving cert, admin client cert (system:masters), service-account keys."""
    pki.mkdir(parents=True, exist_ok=True)
    _ec_key(pki, "ca")
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=ragops-local-ca",
             "-days", "3650", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
             "-out", "ca.crt", cwd=pki)  # fmt: skip
    sans = ",".join(
        [
            "IP:127.0.0.1",
            f"IP:{kubernetes_service_ip}",  # the kubernetes Service (pods reach it)
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
    )
    _signed_cert(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n",
    )
    _signed_cert(
        pki,
        "admin",
        "/O=system:masters/CN=kubernetes-admin",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n",
    )
    _ec_key(pki, "sa")
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: ragops-local
  cluster:
    server: {server}
    certificate-authority-data: {b64("ca.crt")}
users:
- name: ragops-admin
  user:
    client-certificate-data: {b64("admin.crt")}
    client-key-data: {b64("admin.key")}
contexts:
- name: ragops-local
  context:
    cluster: ragops-local
    user: ragops-admin
    namespace: default
current-context: ragops-local
"""
    )
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# Processes


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _spawn(name: str, cmd: list[str], logs: Path, env: dict[str, str] | None = None) -> int:
    log = (logs / f"{name}.log").open("ab")
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    finally:
        log.close()
    return proc.pid


def _alive(pid: int, exe_hint: str | None = None) -> bool:
    """True if ``pid`` runs (and, when given, its command line contains ``exe_hint``)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # zombie: exited, not yet reaped
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return exe_hint is None or exe_hint.encode() in cmdline


def _stop(pids: dict[str, int], commands: dict[str, str], timeout: float = 10.0) -> None:
    """SIGTERM each process group we started, then SIGKILL what is left after ``timeout``."""
    live = {n: p for n, p in pids.items() if _alive(p, commands.get(n))}
    for pid in live.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        live = {n: p for n, p in live.items() if _alive(p)}
        if live:
            time.sleep(0.05)
    for pid in live.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for pid in live.values():
        while _alive(pid):
            time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# Talking to the API server without a client library (fast, no extra process)


class _Api:
    def __init__(self, port: int, pki: Path) -> None:
        self.port = port
        self.pki = pki
        self._ctx: ssl.SSLContext | None = None

    @property
    def ctx(self) -> ssl.SSLContext:
        if self._ctx is None:
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
            self._ctx = ctx
        return self._ctx

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.ctx, timeout=timeout
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get_json(self, path: str) -> dict[str, Any] | None:
        try:
            status, body = self.get(path)
        except OSError:
            return None
        if status != 200:
            return None
        data: dict[str, Any] = json.loads(body)
        return data


def _insecure_healthz(port: int) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _nodes_ready(api: _Api) -> bool:
    nodes = api.get_json("/api/v1/nodes")
    if nodes is None:
        return False
    ready = set()
    for node in nodes.get("items", []):
        for cond in node.get("status", {}).get("conditions", []) or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                ready.add(node["metadata"]["name"])
    return ready >= {*NODE_NAMES, *REAL_NODE_NAMES}


# ---------------------------------------------------------------------------------------------
# Up / down


def _load_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _cluster_from_state(state_dir: Path, state: dict[str, Any]) -> Cluster:
    dp = state.get("dataplane") or {}
    return Cluster(
        kubeconfig=Path(state["kubeconfig"]),
        server=state["server"],
        bin_dir=Path(state["bin_dir"]),
        state_dir=state_dir,
        pids={k: int(v) for k, v in state["pids"].items()},
        gateway_url=dp.get("gateway_url"),
        prometheus_url=dp.get("prometheus_url"),
    )


def running(state_dir: Path | None = None) -> Cluster | None:
    """The cluster recorded in ``state_dir`` if its API server answers, else None."""
    state_dir = state_dir or default_state_dir()
    state = _load_state(state_dir)
    if state is None:
        return None
    if not all(_alive(pid, state["commands"].get(n)) for n, pid in state["pids"].items()):
        return None
    api = _Api(int(state["ports"]["apiserver"]), state_dir / "pki")
    try:
        status, _ = api.get("/readyz", timeout=2)
    except OSError:
        return None
    return _cluster_from_state(state_dir, state) if status == 200 else None


def log_tails(state_dir: Path, names: Sequence[str], lines: int = 15) -> str:
    """The last ``lines`` lines of each named component's log, for error messages."""
    parts = []
    for name in names:
        path = state_dir / "logs" / f"{name}.log"
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            tail = ["(no log)"]
        parts.append(f"--- {path} (last {lines} lines)\n" + "\n".join(tail))
    return "\n".join(parts)


def _wait(what: str, check: Any, deadline: float, state_dir: Path, pids: dict[str, int]) -> None:
    while True:
        if check():
            return
        dead = [n for n, p in pids.items() if not _alive(p)]
        if dead:
            raise ClusterError(
                f"{', '.join(dead)} exited while waiting for {what}\n" + log_tails(state_dir, dead)
            )
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}\n" + log_tails(state_dir, list(pids)))
        time.sleep(0.1)


def client_qps() -> float:
    """The control plane's client rate (CLIENT_QPS unless RAGOPS_CLUSTER_CLIENT_QPS says)."""
    text = os.environ.get("RAGOPS_CLUSTER_CLIENT_QPS", "")
    try:
        qps = float(text) if text else CLIENT_QPS
    except ValueError as exc:
        raise ClusterError(f"RAGOPS_CLUSTER_CLIENT_QPS={text!r}: not a number") from exc
    if qps <= 0:
        raise ClusterError(f"RAGOPS_CLUSTER_CLIENT_QPS={text!r}: must be above 0")
    return qps


def client_rate_flags() -> list[str]:
    qps = client_qps()
    return [f"--kube-api-qps={qps:g}", f"--kube-api-burst={max(1, round(qps * 1.5))}"]


def _kwok_config(stages: Path) -> str:
    docs = [(stages / rel).read_text().strip() for rel in KWOK_STAGES]
    return "\n---\n".join(docs) + "\n"


def _bootstrap_objects(stages: Path, plan: netplan.NetPlan) -> str:
    nodes = []
    for name, cidr in zip(NODE_NAMES, plan.fake_node_cidrs, strict=True):
        nodes.append(
            f"""apiVersion: v1
kind: Node
metadata:
  name: {name}
  annotations:
    {NODE_ANNOTATION}: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
    {NODE_LABEL}: {FAKE}
spec:
  podCIDR: {cidr}
  podCIDRs: [{cidr}]"""
        )
    storage_class = (stages / KWOK_STORAGE_CLASS).read_text().strip()
    return "\n---\n".join([*nodes, storage_class]) + "\n"


def _admission_config(path: Path) -> None:
    """PodNodeSelector: pods go to the fake nodes unless their namespace says otherwise."""
    path.write_text(
        f"""apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodNodeSelector
  configuration:
    podNodeSelectorPluginConfig:
      clusterDefaultNodeSelector: "{NODE_LABEL}={FAKE}"
"""
    )


def _agent_config(
    state_dir: Path,
    server: str,
    plan: netplan.NetPlan,
    apiserver_port: int,
    lock_fds: tuple[int, ...],
    dataplane: dict[str, Any],
) -> Path:
    pki = state_dir / "pki"
    prom_dir = dataplane.get("prometheus_dir")
    cfg = AgentConfig(
        work_dir=state_dir / "agent",
        hide=(str(state_dir),),
        server=server,
        ca=pki / "ca.crt",
        cert=pki / "admin.crt",
        key=pki / "admin.key",
        plan=plan,
        nodes=tuple(
            NodeSpec(name, str(cidr))
            for name, cidr in zip(REAL_NODE_NAMES, plan.real_node_cidrs, strict=True)
        ),
        apiserver_port=apiserver_port,
        lock_fds=lock_fds,
        prometheus_url=dataplane.get("prometheus_url", ""),
        prometheus_dir=Path(prom_dir) if prom_dir else None,
        scrape_static={"traefik": [dataplane["traefik_metrics"]]} if dataplane else {},
    )
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "agent.json"
    path.write_text(cfg.to_json())
    return path


def _spawn_agent(config: Path, logs: Path, lock_fds: tuple[int, ...]) -> int:
    """The node agent, holding the cluster's address-slot locks for as long as it runs."""
    log = (logs / "node-agent.log").open("ab")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hack.node_agent", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=REPO_ROOT,
            pass_fds=lock_fds,
        )
    finally:
        log.close()
    return proc.pid


def set_images(c: Cluster, entries: Sequence[dict[str, Any]]) -> None:
    """Extra image mappings for the node agent (see ``hack.node_agent.images``); the agent
    reads them before each container start."""
    from hack.node_agent.images import builtin_table

    builtin_table().with_extras(entries)  # refuse a bad entry here, with its message
    if c.state_dir is None:
        raise ClusterError("image mappings need the local cluster's node agent")
    path = c.state_dir / "agent" / "images.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(entries), indent=2) + "\n")
    tmp.replace(path)


def install_crds(c: Cluster, timeout_s: int = 180) -> None:
    """Apply ragops' CRDs (server-side) and wait until the API server serves both kinds.

    Establishing a CRD takes the API server longer on a busy machine than kubectl's default
    30 s wait, so the wait is generous; while the new kinds' storage initializes the API
    server answers 429 ("storage is (re)initializing"), which is waited out too.
    """
    c.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        served = [
            c.kubectl("get", plural, "-A", "-o", "name", check=False, timeout=30)
            for plural in ("ragsystems.ragops.io", "ragbackups.ragops.io")
        ]
        if all(out.returncode == 0 for out in served):
            return
        last = "; ".join(out.stderr.strip() for out in served if out.returncode != 0)
        time.sleep(0.5)
    raise RuntimeError(f"ragops' CRDs not served after {timeout_s}s: {last}")


def real_namespace(c: Cluster, name: str) -> None:
    """Create (or mark) namespace ``name`` so that its pods run for real on the agent's nodes."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "annotations": {NODE_SELECTOR_ANNOTATION: REAL_SELECTOR}},
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def up(
    state_dir: Path | None = None,
    *,
    timeout: float = 120.0,
    real_namespaces: Sequence[str] = (),
    data_plane: bool = False,
    span: int = 1,
) -> Cluster:
    """Start the cluster (or return the one already running there) and wait until usable.

    ``real_namespaces`` are created (or annotated) so that their pods run as real processes.
    ``data_plane`` adds Traefik, Prometheus and their CRDs (``hack.dataplane``). ``span`` is
    the number of address slots the cluster leases (``hack.node_agent.netplan``).
    """
    state_dir = (state_dir or default_state_dir()).resolve()
    existing = running(state_dir)
    if existing is not None:
        for name in real_namespaces:
            real_namespace(existing, name)
        return existing
    if state_dir.exists():
        down(state_dir)
    bdir, _ = ensure_built()
    try:
        lease = netplan.lease_slot(owner=str(state_dir), span=span)
    except (netplan.NetPlanError, OSError) as exc:
        raise ClusterError(f"cannot lease an address slot for the cluster: {exc}") from exc
    try:
        c = _start(state_dir, bdir, lease, timeout, data_plane)
    finally:
        lease.release()  # the node agent holds its own copy of the lock from now on
    for name in real_namespaces:
        real_namespace(c, name)
    return c


def _start(
    state_dir: Path, bdir: Path, lease: netplan.SlotLease, timeout: float, data_plane: bool
) -> Cluster:
    plan = lease.plan
    bins = {name: str((bdir / name).resolve()) for name in BINARIES}
    stages = (bdir / "kwok-stages").resolve()

    pki, logs, etcd_data = state_dir / "pki", state_dir / "logs", state_dir / "etcd"
    for d in (pki, logs, etcd_data):
        d.mkdir(parents=True, exist_ok=True)
    etcd_data.chmod(0o700)
    state_dir.mkdir(parents=True, exist_ok=True)
    names = ["etcd-client", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    server = f"https://127.0.0.1:{ports['apiserver']}"
    kubeconfig = state_dir / "kubeconfig"
    (state_dir / "kwok.yaml").write_text(_kwok_config(stages))

    etcd_url = f"http://127.0.0.1:{ports['etcd-client']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    commands: dict[str, list[str]] = {
        "etcd": [
            bins["etcd"],
            "--name=ragops",
            f"--data-dir={etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=ragops={peer_url}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            bins["kube-apiserver"],
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # Loopback may not back the kubernetes Service; no pod really connects to it here.
            "--endpoint-reconciler-type=none",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            # Front-proxy settings, published for the controller-manager's and scheduler's
            # delegated authentication (only a "front-proxy-client" cert may use them).
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={plan.service_cidr}",
            "--enable-admission-plugins=PodNodeSelector",
            f"--admission-control-config-file={state_dir / 'admission.yaml'}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
        "kube-controller-manager": [
            bins["kube-controller-manager"],
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            "--leader-elect=false",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            *client_rate_flags(),
            "--profiling=false",
            "--v=1",
        ],
        "kube-scheduler": [
            bins["kube-scheduler"],
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            "--leader-elect=false",
            *client_rate_flags(),
            "--profiling=false",
            "--v=1",
        ],
        "kwok": [
            bins["kwok"],
            f"--kubeconfig={kubeconfig}",
            f"--config={state_dir / 'kwok.yaml'}",
            f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            f"--cidr={plan.fake_node_cidrs[0]}",
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
            "--v=1",
        ],
    }
    pids: dict[str, int] = {}
    state: dict[str, Any] = {
        "plan": plan.to_json(),
        "server": server,
        "kubeconfig": str(kubeconfig),
        "bin_dir": str(bdir),
        "ports": ports,
        "pids": pids,
        "commands": {n: c[0] for n, c in commands.items()},
        "argv": commands,
    }

    def save() -> None:
        (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    deadline = time.monotonic() + timeout
    api = _Api(ports["apiserver"], pki)

    def api_healthy() -> bool:
        try:
            return api.get("/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    def api_ready() -> bool:
        try:
            return api.get("/readyz", timeout=2)[0] == 200
        except OSError:
            return False

    try:
        # etcd needs no certificates: start it first and make the PKI while it comes up.
        pids["etcd"] = _spawn("etcd", commands["etcd"], logs)
        save()
        make_pki(pki, str(plan.kubernetes_service_ip))
        write_kubeconfig(kubeconfig, server, pki)
        _admission_config(state_dir / "admission.yaml")
        pids["kube-apiserver"] = _spawn("kube-apiserver", commands["kube-apiserver"], logs)
        save()
        # The clients start once /healthz passes (every post-start hook done): the
        # controller-manager gives the API server only 10 s to become healthy and exits after,
        # which a loaded machine exceeds while the RBAC bootstrap roles are still being written.
        _wait("kube-apiserver /healthz", api_healthy, deadline, state_dir, pids)
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            pids[name] = _spawn(name, commands[name], logs)
            save()
        _wait("kube-apiserver /readyz", api_ready, deadline, state_dir, pids)
        apply = subprocess.run(
            [bins["kubectl"], f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
            input=_bootstrap_objects(stages, plan),
            capture_output=True,
            text=True,
            check=False,
        )
        if apply.returncode != 0:
            raise ClusterError(f"creating nodes and StorageClass failed: {apply.stderr.strip()}")
        dp: dict[str, Any] = {}
        if data_plane:
            from hack.dataplane import start as dataplane

            dp = dataplane.start_processes(state_dir, bins["kubectl"], kubeconfig, pids, state)
            state["dataplane"] = dp
            save()
        agent_cfg = _agent_config(state_dir, server, plan, ports["apiserver"], lease.fds, dp)
        pids["node-agent"] = _spawn_agent(agent_cfg, logs, lease.fds)
        state["commands"]["node-agent"] = "hack.node_agent"
        save()
        ready_file = state_dir / "agent" / "agent.ready"
        _wait("node agent ready", ready_file.exists, deadline, state_dir, pids)
        if data_plane:
            dataplane.create_gateway(bins["kubectl"], kubeconfig, dp, deadline)
        _wait(
            "ServiceAccount default/default",
            lambda: api.get_json("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            deadline,
            state_dir,
            pids,
        )
        _wait("nodes Ready", lambda: _nodes_ready(api), deadline, state_dir, pids)
        _wait(
            "kube-scheduler /healthz",
            lambda: _insecure_healthz(ports["scheduler"]),
            deadline,
            state_dir,
            pids,
        )
    except BaseException:
        _stop_all(state_dir, state)
        raise
    return _cluster_from_state(state_dir, state)


RESTARTABLE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def restart_component(c: Cluster, name: str, *, down_s: float = 0.0, timeout: float = 120) -> float:
    """Stop one control-plane process of the running local cluster (SIGTERM, as a rollout of
    it does), wait ``down_s``, start it again with the same command line, and wait until the
    API server is ready again; returns the seconds the API server was not ready."""
    if name not in RESTARTABLE:
        raise ClusterError(f"cannot restart {name!r}: one of {', '.join(RESTARTABLE)}")
    if c.state_dir is None or (state := _load_state(c.state_dir)) is None:
        raise ClusterError("restarting a component needs the local cluster's state")
    argv = (state.get("argv") or {}).get(name)
    if not argv:
        raise ClusterError(f"the cluster's state has no command line for {name}")
    started = time.monotonic()
    _stop({name: int(state["pids"][name])}, state["commands"])
    time.sleep(down_s)
    state["pids"][name] = _spawn(name, argv, c.state_dir / "logs")
    (c.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    api = _Api(int(state["ports"]["apiserver"]), c.state_dir / "pki")

    def ready() -> bool:
        try:
            return api.get("/readyz", timeout=2)[0] == 200
        except OSError:
            return False

    pids = {k: int(v) for k, v in state["pids"].items()}
    _wait(f"{name} back after a restart", ready, time.monotonic() + timeout, c.state_dir, pids)
    return time.monotonic() - started


def _stop_all(state_dir: Path, state: dict[str, Any]) -> list[str]:
    """Stop the cluster's processes in order and clean the host; returns what was left over."""
    pids = {k: int(v) for k, v in state.get("pids", {}).items()}
    commands = state.get("commands", {})
    # The agent first (it stops every pod), then the clients, then the API server, then etcd:
    # an API server whose etcd is gone keeps retrying instead of exiting.
    groups = [
        ["node-agent"],
        ["traefik", "prometheus", "kwok", "kube-scheduler", "kube-controller-manager"],
        ["kube-apiserver"],
    ]
    groups.append([n for n in pids if not any(n in g for g in groups)])
    for group in groups:
        timeout = 45.0 if group == ["node-agent"] else 10.0
        _stop({n: pids[n] for n in group if n in pids}, commands, timeout=timeout)
    left: list[str] = []
    if "plan" in state:
        from hack.node_agent.agent import cgroup2_mount, cleanup_host

        plan = netplan.NetPlan.from_json(state["plan"])
        cg = cgroup2_mount()
        left = cleanup_host(plan, cg / "ragops" / plan.prefix if cg else None, state_dir)
    return left


def down(state_dir: Path | None = None) -> bool:
    """Stop every process of the cluster in ``state_dir`` and remove it; False if none was."""
    state_dir = (state_dir or default_state_dir()).resolve()
    if not state_dir.exists():
        return False
    state = _load_state(state_dir)
    if state is not None:
        left = _stop_all(state_dir, state)
        if left:
            print(f"cluster-down: removed leftovers {left}", file=sys.stderr)
    shutil.rmtree(state_dir, ignore_errors=True)
    return True


@contextlib.contextmanager
def cluster(
    state_dir: Path | None = None, *, timeout: float = 120.0, span: int = 1
) -> Iterator[Cluster]:
    """Context manager: a cluster for the duration of the block, stopped afterwards."""
    c = up(state_dir, timeout=timeout, span=span)
    try:
        yield c
    finally:
        down(c.state_dir)


# ---------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.cluster", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the cluster (builds binaries on first use)")
    p_up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for usable")
    p_up.add_argument(
        "--real-namespace",
        action="append",
        default=None,
        help="namespace whose pods run for real (repeatable; default: default)",
    )
    p_up.add_argument(
        "--no-data-plane",
        action="store_true",
        help="without Traefik, Prometheus and their CRDs (control plane and nodes only)",
    )
    p_up.add_argument(
        "--span",
        type=int,
        choices=netplan.spans(),
        default=1,
        help="address slots to lease as one (8: room for two thousand systems' pods)",
    )
    sub.add_parser("down", help="stop the cluster and remove its state")
    sub.add_parser("env", help="print the KUBECONFIG export line of the running cluster")
    sub.add_parser("status", help="say whether the cluster is running")
    p_logs = sub.add_parser("logs", help="print a real pod's container output")
    p_logs.add_argument("pod", help="pod name")
    p_logs.add_argument("-n", "--namespace", default=None, help="namespace (when ambiguous)")
    p_logs.add_argument("-c", "--container", default=None, help="container (when several)")
    p_logs.add_argument("-p", "--previous", action="store_true", help="the run before this one")
    sub.add_parser("build", help="build the binaries only")
    sub.add_parser("bin-dir", help="print the directory holding the binaries")
    args = parser.parse_args(argv)
    state_dir = default_state_dir()

    if args.command == "up":
        started = time.monotonic()
        try:
            real = args.real_namespace if args.real_namespace is not None else ["default"]
            c = up(
                state_dir,
                timeout=args.timeout,
                real_namespaces=real,
                data_plane=not args.no_data_plane,
                span=args.span,
            )
        except ClusterError as exc:
            print(f"cluster-up failed: {exc}", file=sys.stderr)
            return 1
        print(
            f"Local cluster usable in {time.monotonic() - started:.1f}s: {c.server}",
            file=sys.stderr,
        )
        print(f"  state and logs: {state_dir}", file=sys.stderr)
        print(f"  binaries (kubectl, helm): {c.bin_dir}", file=sys.stderr)
        if c.gateway_url:
            print(f"  gateway (Traefik): {c.gateway_url}", file=sys.stderr)
            print(f"  prometheus: {c.prometheus_url}", file=sys.stderr)
        print("  use it with:", file=sys.stderr)
        print(c.export_line())
        print(f'export PATH="{c.bin_dir}:$PATH"')
        return 0
    if args.command == "down":
        print("stopped local cluster" if down(state_dir) else "no local cluster", file=sys.stderr)
        return 0
    if args.command in ("env", "status"):
        found = running(state_dir)
        if found is None:
            print(f"no running local cluster in {state_dir}", file=sys.stderr)
            return 1
        if args.command == "env":
            print(found.export_line())
        else:
            print(f"running: {found.server} (pids {found.pids})")
        return 0
    if args.command == "logs":
        from hack.node_agent.logs import LogsError, read_logs

        try:
            text = read_logs(state_dir / "agent" / "pods", args.pod, args.namespace,
                             args.container, args.previous)  # fmt: skip
        except LogsError as exc:
            print(f"cluster-logs: {exc}", file=sys.stderr)
            return 1
        sys.stdout.write(text)
        return 0
    if args.command == "build":
        try:
            ensure_built()
        except ClusterError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    print(bin_dir())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
