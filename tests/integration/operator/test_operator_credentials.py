"""Generated credentials against the real local cluster: never drawn again over existing data.

Aspects covered:
- the credentials Secret deleted while the stores run: the operator draws no new passwords,
  the system is Degraded (CredentialsLost) with the way back, and re-creating the Secret with
  its old contents makes it Ready again;
- the Secret's managed-by label removed: the operator keeps using it and draws nothing new;
- deletionPolicy Delete removes the volume claims but not a `<name>-credentials` Secret the
  operator did not create;
- the admin API key Secret is generated once and survives later passes unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import Kube, Operator, condition, rag_manifest, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def apply(cluster: Cluster, ns: str, *objs: dict[str, Any]) -> None:
    text = "\n---\n".join(json.dumps(o) for o in objs)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)


def _secret(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    secret = kube.get("Secret", ns, name)
    assert secret is not None, f"Secret {ns}/{name} missing"
    return secret


def _degraded_reason(kube: Kube, ns: str, name: str) -> str:
    return str(condition(kube.rag(ns, name), "Degraded").get("reason", ""))


def test_deleted_credentials_are_never_regenerated_over_existing_data(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    apply(cluster, ns, rag_manifest("creds", {}))
    wait_phase(kube, ns, "creds", "Ready")
    wait_for(lambda: len(kube.pvcs(ns)) == 2, timeout=30, what="2 volume claims")
    old = _secret(kube, ns, "creds-credentials")

    cluster.kubectl("delete", "secret", "creds-credentials", "-n", ns)
    wait_for(
        lambda: _degraded_reason(kube, ns, "creds") == "CredentialsLost",
        timeout=60,
        what="Degraded with reason CredentialsLost",
    )
    rag = kube.rag(ns, "creds")
    assert rag["status"]["phase"] == "Degraded"
    message = condition(rag, "Degraded")["message"]
    assert "re-create Secret 'creds-credentials'" in message
    assert "postgres, redis" in message
    assert kube.get("Secret", ns, "creds-credentials") is None
    wait_for(
        lambda: "CredentialsLost" in kube.events(ns, "creds"), timeout=30, what="Warning Event"
    )

    # The way back: the old Secret (from a backup) makes the system whole again.
    restored = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds-credentials", "labels": old["metadata"]["labels"]},
        "type": "Opaque",
        "data": old["data"],
    }
    apply(cluster, ns, restored)
    wait_phase(kube, ns, "creds", "Ready")
    assert _secret(kube, ns, "creds-credentials")["data"] == old["data"]


def test_credentials_that_lost_their_label_are_kept(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    apply(cluster, ns, rag_manifest("unlabelled", {}))
    wait_phase(kube, ns, "unlabelled", "Ready")
    old = _secret(kube, ns, "unlabelled-credentials")
    keys = _secret(kube, ns, "unlabelled-api-keys")
    cluster.kubectl(
        "label", "secret", "unlabelled-credentials", "-n", ns, "app.kubernetes.io/managed-by-"
    )
    # A spec change makes the operator run full passes; wait until it has handled it.
    cluster.kubectl(
        "patch",
        "rag",
        "unlabelled",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"api":{"replicas":1}}}',
    )
    wait_phase(kube, ns, "unlabelled", "Ready")
    now = _secret(kube, ns, "unlabelled-credentials")
    assert now["metadata"]["uid"] == old["metadata"]["uid"]
    assert now["data"] == old["data"]
    assert _secret(kube, ns, "unlabelled-api-keys")["data"] == keys["data"]


def test_delete_policy_keeps_credentials_the_operator_did_not_create(
    cluster: Cluster, operator: Operator, kube: Kube, ns: str
) -> None:
    theirs = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "mine-credentials", "labels": {"owner": "team-a"}},
        "type": "Opaque",
        "stringData": {
            "postgres-password": "chosen-pg",
            "database-url": "postgresql://rag:chosen-pg@mine-postgres:5432/rag",
            "redis-password": "chosen-rd",
            "redis-url": "redis://:chosen-rd@mine-redis:6379/0",
            "neo4j-password": "chosen-nj",
            "neo4j-auth": "neo4j/chosen-nj",
        },
    }
    apply(cluster, ns, theirs)
    apply(cluster, ns, rag_manifest("mine", {"deletionPolicy": "Delete"}))
    wait_phase(kube, ns, "mine", "Ready")
    wait_for(lambda: len(kube.pvcs(ns)) == 2, timeout=30, what="2 volume claims")
    cluster.kubectl("delete", "ragsystem", "mine", "-n", ns, "--timeout=60s")
    wait_for(lambda: kube.pvcs(ns) == [], timeout=30, what="claims removed")
    kept = _secret(kube, ns, "mine-credentials")
    assert kept["metadata"]["labels"] == {"owner": "team-a"}
