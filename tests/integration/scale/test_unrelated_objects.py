"""The operator receives only its own objects: 20,000 unrelated ConfigMaps and Secrets in the
cluster change neither its memory nor its reconcile latency.

Aspects covered (one test, before and after the objects exist):
- a running operator keeps reconciling as fast while 20,000 unrelated objects are created
  (none of them reaches it: its watches are label-selected by the API server);
- a fresh operator started with the objects present peaks at the same resident memory as a
  fresh one started without them, and holds none of them in its caches.
"""

from __future__ import annotations

import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubernetes import client as k8s

from hack.cluster import Cluster
from tests.integration.operator.conftest import Kube, Operator, rag_manifest, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

UNRELATED = 20_000
RSS_SLACK_MB = 25.0


def peak_rss_mb(op: Operator) -> float:
    """VmHWM of the operator process: its peak resident memory so far."""
    assert op.proc is not None
    for line in Path(f"/proc/{op.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def time_to_ready(cluster: Cluster, kube: Kube, ns: str, name: str) -> float:
    started = time.monotonic()
    manifest = rag_manifest(name, {})
    kube.custom.create_namespaced_custom_object("ragops.io", "v1alpha1", ns, "ragsystems", manifest)
    wait_phase(kube, ns, name, "Ready", timeout=120)
    return time.monotonic() - started


def create_unrelated(kube: Kube, namespace: str, count: int) -> None:
    """count/2 ConfigMaps and count/2 Secrets of about 600 bytes each, in parallel."""
    payload = {"blob": "x" * 512}
    labels = {"app.kubernetes.io/managed-by": "someone-else", "team": "other"}

    def make(i: int) -> None:
        meta = k8s.V1ObjectMeta(name=f"unrelated-{i}", labels=labels)
        if i % 2:
            kube.core.create_namespaced_config_map(
                namespace, k8s.V1ConfigMap(metadata=meta, data=payload)
            )
        else:
            kube.core.create_namespaced_secret(
                namespace, k8s.V1Secret(metadata=meta, string_data=payload)
            )

    with ThreadPoolExecutor(max_workers=12) as pool:
        for _ in pool.map(make, range(count)):
            pass


def cached_objects(op: Operator, kind: str) -> float:
    prefix = f'ragops_operator_watch_cache_objects{{kind="{kind}"}} '
    for line in op.metrics().splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def test_unrelated_objects_leave_memory_and_latency_unchanged(
    cluster: Cluster, crd: Path, kube: Kube, ns: str, tmp_path: Path
) -> None:
    first = Operator(cluster, tmp_path)
    first.start()
    try:
        latency_before = time_to_ready(cluster, kube, ns, "before")
        rss_before = peak_rss_mb(first)

        other = f"unrelated-{uuid.uuid4().hex[:6]}"
        kube.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=other)))
        try:
            create_unrelated(kube, other, UNRELATED)
            latency_running = time_to_ready(cluster, kube, ns, "during")
            assert cached_objects(first, "Secret") < 10
            assert cached_objects(first, "ConfigMap") < 10
            first.kill(signal.SIGKILL)

            second = Operator(cluster, tmp_path)
            second.start()
            try:
                latency_fresh = time_to_ready(cluster, kube, ns, "after")
                rss_after = peak_rss_mb(second)
                assert cached_objects(second, "Secret") < 10
            finally:
                second.kill(signal.SIGTERM)
        finally:
            kube.core.delete_namespace(other)
    finally:
        first.kill(signal.SIGTERM)

    print(
        f"peak RSS {rss_before:.1f} -> {rss_after:.1f} MB; ready "
        f"{latency_before:.1f} / {latency_running:.1f} / {latency_fresh:.1f} s"
    )
    assert rss_after <= rss_before + RSS_SLACK_MB
    # Generous bounds: the machine may be loaded; kopf-style client-side filtering would
    # make the fresh operator parse every unrelated object before its first pass.
    for latency in (latency_running, latency_fresh):
        assert latency <= max(3 * latency_before, latency_before + 20.0)
