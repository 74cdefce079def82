"""Clusters side by side on one host, and ``down`` leaves nothing behind.

Aspects covered:
- a second cluster started next to the session's leases another address slot: its Service
  range, pod network and host object names differ, and none overlaps a private range;
- a pod of the second cluster really runs (process, namespace, address, mounts);
- ``down`` stops every process, removes the cluster's network namespaces, veths, bridge,
  routes, cgroups and mounts, releases the slot, and leaves the session's cluster untouched.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from hack import cluster as local_cluster
from hack.cluster import Cluster
from hack.node_agent import network
from hack.node_agent.agent import cgroup2_mount, mounts_under
from hack.node_agent.netplan import LOCK_DIR
from tests.fixtures.cluster import apply, net_plan, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def _processes_under(path: Path) -> list[int]:
    """Processes whose command line or cwd mentions ``path`` (the cluster's own)."""
    found = []
    needle = str(path).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_second_cluster_runs_beside_and_down_leaves_nothing(cluster: Cluster) -> None:
    state_dir = Path(tempfile.mkdtemp(prefix="ragops-cluster-second-"))
    try:
        second = local_cluster.up(state_dir, timeout=180, real_namespaces=["work"])
        mine, theirs = net_plan(second), net_plan(cluster)
        assert mine.slot != theirs.slot
        assert mine.prefix != theirs.prefix
        assert not mine.network.overlaps(theirs.network)
        for net in (mine.network, mine.service_cidr, mine.pod_network):
            assert net.subnet_of(ipaddress.IPv4Network("198.18.0.0/15"))
            assert not any(net.overlaps(p) for p in PRIVATE)

        apply(
            second,
            "work",
            """
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "exec sleep 1000"]
    volumeMounts: [{name: mem, mountPath: /scratch}]
  volumes: [{name: mem, emptyDir: {medium: Memory}}]
""",
        )

        def running() -> bool:
            out = second.kubectl(
                "get", "pod", "sleeper", "-n", "work", "-o", "jsonpath={.status.phase}", check=False
            )
            return out.stdout == "Running"

        wait_for(running, timeout=90, what="the second cluster's pod running")
        assert network.own_netns(mine), "the pod has a network namespace"
        assert mounts_under(state_dir), "the Memory emptyDir is a tmpfs"
        cg = cgroup2_mount()
        their_netns = network.own_netns(theirs)
    finally:
        local_cluster.down(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)

    assert not state_dir.exists()
    assert network.own_netns(mine) == []
    assert network.own_links(mine) == []
    assert network.own_routes(mine) == []
    assert mounts_under(state_dir) == []
    assert _processes_under(state_dir) == []
    if cg is not None:
        assert not (cg / "ragops" / mine.prefix).exists()
    with (LOCK_DIR / f"slot-{mine.slot:02d}.lock").open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the slot is free again
    # The session's cluster is untouched.
    assert network.own_netns(theirs) == their_netns
    assert network.own_links(theirs)
    ready = cluster.kubectl("get", "--raw", "/readyz", check=False)
    assert ready.returncode == 0
