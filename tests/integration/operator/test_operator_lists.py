"""Lists in the spec that get shorter reach the children (the real cluster, the operator as its
own process).

Aspects covered: removing a namespace from networkPolicy.apiAllowedNamespaces narrows the
API's NetworkPolicy; removing a pull secret takes it off both Deployments' pod templates; in
both cases the system is Ready again and then costs no API writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import RESYNC_S, Kube, Operator, rag_manifest, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def _allowed_namespaces(kube: Kube, ns: str) -> list[str]:
    policy = kube.get("NetworkPolicy", ns, "lists-api") or {}
    rule = policy["spec"]["ingress"][0]
    selector = next(p for p in rule["from"] if "namespaceSelector" in p)["namespaceSelector"]
    return list(selector["matchExpressions"][0]["values"])


def _pull_secrets(kube: Kube, ns: str) -> list[str]:
    names = []
    for component in ("api", "worker"):
        dep = kube.get("Deployment", ns, f"lists-{component}") or {}
        pod = dep["spec"]["template"]["spec"]
        names.append(",".join(s["name"] for s in pod.get("imagePullSecrets") or []))
    return names


CASES: list[tuple[str, dict[str, Any], dict[str, Any], Callable[[Kube, str], Any], Any, Any]] = [
    (
        "api-allowed-namespaces",
        {"networkPolicy": {"apiAllowedNamespaces": ["team-a", "team-b"]}},
        {"networkPolicy": {"apiAllowedNamespaces": ["team-a"]}},
        _allowed_namespaces,
        ["team-a", "team-b"],
        ["team-a"],
    ),
    (
        "pull-secrets",
        {"image": {"pullSecrets": [{"name": "reg-one"}, {"name": "reg-two"}]}},
        {"image": {"pullSecrets": [{"name": "reg-one"}]}},
        _pull_secrets,
        ["reg-one,reg-two", "reg-one,reg-two"],
        ["reg-one", "reg-one"],
    ),
]


def _secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": '{"auths": {}}'},
    }


def _versions(kube: Kube, ns: str) -> dict[str, str]:
    out = {}
    for kind, name in (("NetworkPolicy", "lists-api"), ("ConfigMap", "lists-config")):
        obj = kube.get(kind, ns, name) or {}
        out[f"{kind}/{name}"] = obj["metadata"]["resourceVersion"]
    for name in ("lists-api", "lists-worker"):
        dep = kube.get("Deployment", ns, name) or {}
        out[f"Deployment/{name}"] = str(dep["metadata"]["generation"])
    return out


@pytest.mark.parametrize(
    ("wide", "narrow", "read", "before", "after"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_narrowed_list_reaches_the_children(
    cluster: Cluster,
    operator: Operator,
    kube: Kube,
    ns: str,
    wide: dict[str, Any],
    narrow: dict[str, Any],
    read: Callable[[Kube, str], Any],
    before: Any,
    after: Any,
) -> None:
    text = "\n---\n".join(json.dumps(o) for o in (_secret("reg-one"), _secret("reg-two")))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(rag_manifest("lists", wide)))
    wait_phase(kube, ns, "lists", "Ready")
    assert read(kube, ns) == before
    cluster.kubectl(
        "patch", "rag", "lists", "-n", ns, "--type", "merge", "-p", json.dumps({"spec": narrow})
    )
    wait_for(lambda: read(kube, ns) == after, timeout=30, what=f"children narrowed to {after}")
    wait_phase(kube, ns, "lists", "Ready")
    # Narrowed and Ready: the comparison with what was applied is stable again.
    time.sleep(1.0)
    settled = _versions(kube, ns)
    time.sleep(3 * RESYNC_S + 1)
    assert _versions(kube, ns) == settled
