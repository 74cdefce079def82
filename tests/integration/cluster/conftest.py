"""A fresh namespace per cluster integration test, fake (kwok) or real (node agent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import container_status, namespace_for, pod, wait_phase, wait_ready

__all__ = ["container_status", "pod", "wait_phase", "wait_ready"]


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace of its own for one test (pods on the kwok nodes), deleted afterwards."""
    yield from namespace_for(cluster, "t", real=False)


@pytest.fixture
def real_ns(cluster: Cluster) -> Iterator[str]:
    """A namespace whose pods run as real processes on the node agent's nodes."""
    if cluster.state_dir is None:
        pytest.fail("real pods need the local cluster's node agent (not an external cluster)")
    yield from namespace_for(cluster, "r", real=True)
