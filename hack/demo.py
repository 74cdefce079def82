"""`make demo`: the main job, end to end on this machine.

1. Brings up the local Kubernetes cluster (real apiserver, controllers, kwok nodes).
2. Installs the RagSystem CRD and runs the ragops operator as its own process.
3. Applies `examples/minimal.yaml`, waits until the RagSystem is Ready and prints
   `kubectl get ragsystems` and the children the operator made.
The cluster stays up afterwards (`make cluster-down` stops it); the operator is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hack import cluster as local_cluster
from hack.paths import REPO_ROOT, state_dir
from hack.services._process import ManagedProcess, free_port, log_tail

EXAMPLE = REPO_ROOT / "examples" / "minimal.yaml"
CHILD_KINDS = "statefulsets,deployments,services,configmaps,secrets,pvc,hpa,pdb,networkpolicies"


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


@contextlib.contextmanager
def operator_process(kube: local_cluster.Cluster, workdir: Path) -> Iterator[ManagedProcess]:
    """The operator as a separate process, the way it runs in its Deployment."""
    env = {**kube.env(), "PYTHONUNBUFFERED": "1"}
    argv = [
        str(Path(sys.executable).parent / "ragops-operator"),
        "--metrics-port", str(free_port()),
        "--liveness-port", str(free_port()),
    ]  # fmt: skip
    process = ManagedProcess("ragops-operator", argv, workdir / "operator.log", env=env)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def wait_ready(kube: local_cluster.Cluster, name: str, timeout: float) -> float:
    started = time.monotonic()
    kube.kubectl(
        "wait", f"ragsystem/{name}", "--for=condition=Ready", f"--timeout={int(timeout)}s",
        timeout=timeout + 10,
    )  # fmt: skip
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for Ready")
    args = parser.parse_args(argv)
    workdir = state_dir() / "demo"
    workdir.mkdir(parents=True, exist_ok=True)

    step("Starting the local Kubernetes cluster")
    started = time.monotonic()
    try:
        kube = local_cluster.up()
    except local_cluster.ClusterError as exc:
        print(f"error: the local cluster did not start: {exc}", file=sys.stderr)
        return 1
    print(f"cluster usable after {time.monotonic() - started:.1f} s at {kube.server}")
    print(kube.kubectl("get", "nodes").stdout)

    step("Installing the RagSystem CRD")
    print(kube.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds")).stdout)
    kube.kubectl("wait", "--for=condition=Established", "crd/ragsystems.ragops.io")

    step("Running the ragops operator")
    with operator_process(kube, workdir) as operator:
        print(f"operator log: {operator.log_path}")
        step(f"Applying {EXAMPLE.relative_to(REPO_ROOT)}")
        print(kube.kubectl("apply", "-f", str(EXAMPLE)).stdout)
        try:
            seconds = wait_ready(kube, "minimal", args.timeout)
        except subprocess.CalledProcessError as exc:
            print(f"error: RagSystem did not become Ready: {exc.stderr}", file=sys.stderr)
            print(kube.kubectl("get", "ragsystem", "minimal", "-o", "yaml").stdout)
            print(log_tail(operator.log_path, 40), file=sys.stderr)
            return 1
        print(f"RagSystem minimal Ready {seconds:.1f} s after apply")
        step("kubectl get ragsystems -o wide")
        print(kube.kubectl("get", "ragsystems", "-o", "wide").stdout)
        step("The children the operator made")
        selector = "app.kubernetes.io/instance=minimal"
        print(kube.kubectl("get", CHILD_KINDS, "-l", selector).stdout)
        conditions = kube.kubectl(
            "get", "ragsystem", "minimal", "-o",
            "jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}){'\\n'}{end}",
        )  # fmt: skip
        step("Conditions")
        print(conditions.stdout)

    step("Done")
    print("The cluster is still running. Use it with:")
    print(f"  {kube.export_line()}")
    print(f'  export PATH="{kube.bin_dir}:$PATH"')
    print("  kubectl get ragsystems")
    print("Stop it with: make cluster-down")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
