"""The Helm chart of the operator, against the real cluster.

Aspects covered: `helm lint` passes; the CRD template matches crds/, sits behind
`crds.create` and carries `helm.sh/resource-policy: keep`; the values schema rejects bad
values; an install (without the CRD, which the session already has) gives a Deployment that
becomes available and a ServiceAccount whose RBAC allows everything the operator does.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from hack.cluster import Cluster
from tests.fixtures.cluster import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

CHART = Path(__file__).resolve().parents[3] / "charts" / "ragops"
KUBE_VERSION = "--kube-version=1.37.0"


def test_chart_lints(cluster: Cluster) -> None:
    cluster.helm("lint", str(CHART), KUBE_VERSION)


def test_crd_is_optional_and_kept_on_uninstall(cluster: Cluster) -> None:
    rendered = cluster.helm("template", "r", str(CHART), KUBE_VERSION).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert {c["metadata"]["name"] for c in crds} == {"ragsystems.ragops.io", "ragbackups.ragops.io"}
    without = cluster.helm(
        "template", "r", str(CHART), KUBE_VERSION, "--set", "crds.create=false"
    ).stdout
    assert "CustomResourceDefinition" not in without


@pytest.mark.parametrize(
    "bad",
    [
        "replicaCount=3,leaderElection.enabled=false",
        "replicaCount=9",
        "image.pullPolicy=Sometimes",
        "operator.metricsPort=0",
        "unknownValue=1",
    ],
)
def test_values_schema_rejects_bad_values(cluster: Cluster, bad: str) -> None:
    proc = cluster.helm("template", "r", str(CHART), KUBE_VERSION, "--set", bad, check=False)
    assert proc.returncode != 0
    assert "schema" in proc.stderr.lower() or "values" in proc.stderr.lower()


def test_install_runs_the_operator_with_enough_rbac(cluster: Cluster, crd: Path) -> None:
    ns = f"chart-{uuid.uuid4().hex[:6]}"
    release = f"r{uuid.uuid4().hex[:5]}"
    cluster.helm(
        "install",
        release,
        str(CHART),
        "-n",
        ns,
        "--create-namespace",
        "--set",
        "crds.create=false",
        "--wait",
        "--timeout",
        "90s",
    )
    try:
        sa = f"system:serviceaccount:{ns}:{release}-ragops"
        checks = [
            ("watch", "ragsystems.ragops.io"),
            ("patch", "ragsystems.ragops.io/status"),
            ("patch", "ragsystems.ragops.io"),
            ("create", "deployments.apps"),
            ("patch", "statefulsets.apps"),
            ("delete", "persistentvolumeclaims"),
            ("create", "secrets"),
            ("watch", "pods"),
            ("create", "events"),
            ("patch", "networkpolicies.networking.k8s.io"),
            ("patch", "poddisruptionbudgets.policy"),
            ("patch", "horizontalpodautoscalers.autoscaling"),
            ("list", "customresourcedefinitions"),
        ]
        for verb, resource in checks:
            proc = cluster.kubectl("auth", "can-i", verb, resource, "--as", sa, "-A", check=False)
            assert proc.stdout.strip() == "yes", (verb, resource, proc.stdout, proc.stderr)
        wait_for(
            lambda: (
                cluster.kubectl(
                    "get", "deploy", "-n", ns, "-o", "jsonpath={.items[0].status.availableReplicas}"
                ).stdout
                == "1"
            ),
            timeout=60,
            what="operator Deployment available",
        )
    finally:
        cluster.helm("uninstall", release, "-n", ns, check=False)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_namespaced_install_grants_secrets_only_in_watched_namespaces(
    cluster: Cluster, crd: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    ns, watched, other = f"chart-{suffix}", f"team-a-{suffix}", f"team-b-{suffix}"
    release = f"r{uuid.uuid4().hex[:5]}"
    for name in (watched, other):
        cluster.kubectl("create", "namespace", name)
    cluster.helm(
        "install",
        release,
        str(CHART),
        "-n",
        ns,
        "--create-namespace",
        "--set",
        "crds.create=false",
        "--set",
        "rbac.scope=namespaced",
        "--set",
        f"operator.watchNamespaces[0]={watched}",
        "--wait",
        "--timeout",
        "90s",
    )
    try:
        sa = f"system:serviceaccount:{ns}:{release}-ragops"

        def can(verb: str, resource: str, *where: str) -> str:
            proc = cluster.kubectl("auth", "can-i", verb, resource, "--as", sa, *where, check=False)
            return proc.stdout.strip()

        assert can("get", "secrets", "-n", watched) == "yes"
        assert can("patch", "statefulsets.apps", "-n", watched) == "yes"
        assert can("patch", "ragsystems.ragops.io/status", "-n", watched) == "yes"
        assert can("get", "secrets", "-n", other) == "no"
        assert can("get", "secrets", "-n", ns) == "no"
        assert can("list", "secrets", "-A") == "no"
        assert can("create", "deployments.apps", "-n", other) == "no"
        assert can("list", "customresourcedefinitions") == "yes"
        assert can("update", "deployments.apps", "-n", watched) == "no"  # trimmed verbs
    finally:
        cluster.helm("uninstall", release, "-n", ns, check=False)
        for name in (ns, watched, other):
            cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
