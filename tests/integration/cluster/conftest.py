"""A fresh namespace per cluster integration test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import wait_for


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace of its own for one test, deleted (without waiting) afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    # Pods need the namespace's default ServiceAccount, which the controller-manager creates.
    wait_for(
        lambda: cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        what=f"ServiceAccount {name}/default",
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
