"""A fresh namespace per cluster integration test, fake (kwok) or real (node agent)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from hack import cluster as local_cluster
from hack.cluster import Cluster
from hack.node_agent.logs import LogsError, read_logs
from tests.fixtures.cluster import wait_for


def _namespace(cluster: Cluster, prefix: str, real: bool) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    if real:
        local_cluster.real_namespace(cluster, name)
    else:
        cluster.kubectl("create", "namespace", name)
    # Pods need the namespace's default ServiceAccount, which the controller-manager creates.
    wait_for(
        lambda: cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        what=f"ServiceAccount {name}/default",
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace of its own for one test (pods on the kwok nodes), deleted afterwards."""
    yield from _namespace(cluster, "t", real=False)


@pytest.fixture
def real_ns(cluster: Cluster) -> Iterator[str]:
    """A namespace whose pods run as real processes on the node agent's nodes."""
    if cluster.state_dir is None:
        pytest.fail("real pods need the local cluster's node agent (not an external cluster)")
    yield from _namespace(cluster, "r", real=True)


def pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def container_status(p: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    for cs in (p.get("status") or {}).get("containerStatuses") or []:
        if name is None or cs["name"] == name:
            return dict(cs)
    return {}


def condition(p: dict[str, Any], kind: str) -> str:
    for cond in (p.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return str(cond["status"])
    return ""


def logs(cluster: Cluster, namespace: str, name: str, container: str | None = None) -> str:
    assert cluster.state_dir is not None
    try:
        return read_logs(cluster.state_dir / "agent" / "pods", name, namespace, container)
    except LogsError:
        return ""


def wait_phase(
    cluster: Cluster, namespace: str, name: str, *phases: str, timeout: float = 90
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        nonlocal seen
        seen = pod(cluster, namespace, name)
        return (seen.get("status") or {}).get("phase") in phases

    wait_for(done, timeout=timeout, what=f"pod {namespace}/{name} in phase {phases}")
    return seen


def wait_ready(cluster: Cluster, namespace: str, name: str, timeout: float = 90) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def ready() -> bool:
        nonlocal seen
        seen = pod(cluster, namespace, name)
        return condition(seen, "Ready") == "True"

    wait_for(ready, timeout=timeout, what=f"pod {namespace}/{name} Ready")
    return seen
