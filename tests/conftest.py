"""Shared fixtures (real backing services and the local Kubernetes cluster) and test lanes.

`make test` runs the suite on several pytest-xdist workers with ``--dist loadscope``, whose
scopes are this file's lanes, in collection order. Each test directory that starts expensive
shared state is one lane, so that state starts once, on one worker: the end-to-end tier with
its data-plane cluster, and the integration tests on the plain cluster. The canary modules,
the longest of the end-to-end tier, are a lane of their own with a data-plane cluster of its
own (clusters run side by side in their own network slots), so the tier is not one long
serial lane. The runtime's
integration tests start only cheap services (Postgres, Redis, Neo4j, S3) but keep a database
per module, so each of their modules is a lane of its own and the modules spread over the
workers. Unit tests need no shared state: each is its own scope and fills in wherever a worker
is free.

(The lanes are computed by the scheduler from the test's path, not through ``xdist_group``
marks: pytest 9 names nodes by ``_id``, and pytest-xdist 3.8's loadgroup still rewrites
``_nodeid``, so its groups are silently ignored.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.cluster"]

TESTS = Path(__file__).parent
LANES = {
    "e2e/test_canary_exposures.py": "platform-canary",
    "e2e/test_canary_real.py": "platform-canary",
    "e2e": "platform",
    "integration/cluster": "cluster",
    "integration/operator": "cluster",
    "integration/scale": "cluster",
    "integration/ecosystem": "cluster",
    "integration/release": "cluster",
}
MODULE_LANES = ("integration/runtime", "integration/services")


def lane_of(path: Path) -> str | None:
    """The lane of a test file (None for unit tests, which need no shared state)."""
    try:
        parts = path.relative_to(TESTS).parts
    except ValueError:
        return None
    for depth in (2, 1):
        prefix = "/".join(parts[:depth])
        if prefix in MODULE_LANES:
            return "/".join(parts)
        lane = LANES.get(prefix)
        if lane is not None:
            return lane
    return None


def scope_of(rootpath: Path, nodeid: str) -> str:
    """The xdist scope of a test: its lane, or the test itself when it has none."""
    lane = lane_of(rootpath / nodeid.split("::", 1)[0])
    return lane if lane is not None else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(config.rootpath, nodeid)

    return LaneScheduling(config, log)
