"""Starting the data plane with the cluster: CRDs, Prometheus, Traefik, the Gateway.

Called by ``hack.cluster`` while it brings a cluster up; the processes are recorded in the
cluster's state like every other component, so ``down`` stops them (after the node agent,
before the API server).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from hack.dataplane import crds, traefik
from hack.node_agent import promsd


class DataPlaneError(RuntimeError):
    """A part of the data plane did not come up; the message says which and why."""


def _kubectl(
    kubectl: str, kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 120
) -> str:
    proc = subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise DataPlaneError(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc.stdout


def install_crds(kubectl: str, kubeconfig: Path) -> list[str]:
    """Apply the Gateway API and monitoring CRDs (server-side: HTTPRoute's is too large for
    the last-applied annotation) and wait until every one is Established."""
    try:
        docs = crds.crd_documents()
    except crds.CrdError as exc:
        raise DataPlaneError(str(exc)) from exc
    text = "\n---\n".join(json.dumps(d) for d in docs)
    _kubectl(
        kubectl, kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=text
    )
    names = [f"crd/{d['metadata']['name']}" for d in docs]
    _kubectl(
        kubectl,
        kubeconfig,
        "wait",
        "--for=condition=Established",
        *names,
        "--timeout=120s",
        timeout=150,
    )
    return names


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


def start_processes(
    state_dir: Path, kubectl: str, kubeconfig: Path, pids: dict[str, int], state: dict[str, Any]
) -> dict[str, Any]:
    """CRDs, then Prometheus and Traefik; returns what the agent and callers need to know."""
    from hack.cluster import _spawn, free_ports
    from hack.services.prometheus import start_prometheus

    install_crds(kubectl, kubeconfig)
    web_port, admin_port = free_ports(2)
    metrics = f"127.0.0.1:{admin_port}"
    prom_dir = state_dir / "prometheus"
    try:
        prom = start_prometheus(prom_dir)
    except RuntimeError as exc:
        raise DataPlaneError(f"prometheus did not start: {exc}") from exc
    assert prom.process.popen is not None
    pids["prometheus"] = prom.process.popen.pid
    state["commands"]["prometheus"] = "prometheus"
    rules = prom_dir / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    promsd.write_if_changed(
        prom.config_path,
        promsd.prometheus_config([], {"traefik": [metrics]}, "1s", rules, prom_dir / "host"),
    )
    prom.reload()

    logs = state_dir / "logs"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    command = traefik.argv(web_port, admin_port, logs / "traefik-access.log")
    pids["traefik"] = _spawn("traefik", command, logs, env=env)
    state["commands"]["traefik"] = "traefik"
    deadline = time.monotonic() + 60
    while _get(f"http://{metrics}/ping") != 200:
        if time.monotonic() > deadline:
            raise DataPlaneError(f"traefik did not answer /ping; see {logs / 'traefik.log'}")
        time.sleep(0.1)
    return {
        "gateway_url": f"http://127.0.0.1:{web_port}",
        "gateway_port": web_port,
        "gateway": {"namespace": traefik.GATEWAY_NAMESPACE, "name": traefik.GATEWAY_NAME},
        "traefik_metrics": metrics,
        "prometheus_url": prom.url,
        "prometheus_dir": str(prom_dir),
    }


def create_gateway(kubectl: str, kubeconfig: Path, dp: dict[str, Any], deadline: float) -> None:
    """GatewayClass, Gateway and IngressClass; waits until Traefik programs the Gateway."""
    text = "\n---\n".join(json.dumps(o) for o in traefik.objects(int(dp["gateway_port"])))
    _kubectl(kubectl, kubeconfig, "apply", "-f", "-", stdin=text)
    left = max(5, int(deadline - time.monotonic()))
    _kubectl(
        kubectl,
        kubeconfig,
        "wait",
        "-n",
        traefik.GATEWAY_NAMESPACE,
        f"gateway/{traefik.GATEWAY_NAME}",
        "--for=condition=Programmed",
        f"--timeout={left}s",
        timeout=left + 10,
    )
