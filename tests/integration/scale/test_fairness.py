"""Fair reconciles: failing systems do not slow the others, and each backs off on its own.

Aspects covered:
- healthy systems become Ready as fast beside a system with a missing Secret and one whose
  store cannot be scheduled as they do alone (same test, before and after);
- the failing system's backoff grows and shows in
  `ragops_operator_reconcile_backoff_seconds{namespace,ragsystem}`; the healthy ones show 0;
- reconcile errors are counted per system and reason (SecretNotFound), none for the healthy.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import Kube, Operator, rag_manifest, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

HEALTHY = 4
MISSING_SECRET = {
    "generation": {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "apiKeySecretRef": {"name": "no-such-secret", "key": "k"},
    }
}
UNSCHEDULABLE = {"postgres": {"managed": {"storage": {"storageClassName": "no-such-class"}}}}


def sample(op: Operator, name: str, **labels: str) -> float | None:
    for line in op.metrics().splitlines():
        if line.startswith(name + "{"):
            head, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                return float(value)
    return None


def _create(kube: Kube, ns: str, name: str, spec: dict[str, Any]) -> None:
    body = rag_manifest(name, spec)
    kube.custom.create_namespaced_custom_object("ragops.io", "v1alpha1", ns, "ragsystems", body)


def all_ready(kube: Kube, ns: str, prefix: str) -> float:
    started = time.monotonic()
    for i in range(HEALTHY):
        _create(kube, ns, f"{prefix}-{i}", {})
    for i in range(HEALTHY):
        wait_phase(kube, ns, f"{prefix}-{i}", "Ready", timeout=180)
    return time.monotonic() - started


def test_failing_systems_do_not_slow_the_others(
    cluster: Cluster, crd: Path, kube: Kube, ns: str, tmp_path: Path
) -> None:
    op = Operator(cluster, tmp_path)
    op.start()
    try:
        alone = all_ready(kube, ns, "alone")
        _create(kube, ns, "bad-secret", MISSING_SECRET)
        _create(kube, ns, "stuck", UNSCHEDULABLE)
        wait_phase(kube, ns, "bad-secret", "Degraded", timeout=90)
        beside = all_ready(kube, ns, "beside")
        wait_for(
            lambda: (
                (
                    sample(
                        op,
                        "ragops_operator_reconcile_backoff_seconds",
                        namespace=ns,
                        ragsystem="bad-secret",
                    )
                    or 0
                )
                >= 10
            ),
            timeout=120,
            what="the failing system's backoff growing to 10 s",
        )
        errors = sample(
            op,
            "ragops_operator_reconcile_errors_total",
            namespace=ns,
            ragsystem="bad-secret",
            reason="SecretNotFound",
        )
        healthy_backoff = sample(
            op, "ragops_operator_reconcile_backoff_seconds", namespace=ns, ragsystem="beside-0"
        )
        healthy_errors = sample(
            op, "ragops_operator_reconcile_errors_total", namespace=ns, ragsystem="beside-0"
        )
    finally:
        op.kill(signal.SIGTERM)
    print(f"{HEALTHY} systems Ready: alone {alone:.1f}s, beside failing ones {beside:.1f}s")
    assert errors is not None
    assert errors >= 2
    assert healthy_backoff == 0
    assert healthy_errors is None
    assert beside <= max(2 * alone, alone + 20.0)
