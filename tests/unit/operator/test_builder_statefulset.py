"""StatefulSets of the managed stores.

Aspects covered: one per managed store with a volume claim of the asked size and class,
pgvector image for Postgres, passwords from the generated Secret, restricted security,
probes, claim retention following deletionPolicy, and image/resources overrides.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.builders.statefulset import build_store_statefulset
from tests.unit.operator.helpers import CFG, make_rs

STORES = ["postgres", "redis", "neo4j"]


def _sts(store: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"neo4j": {"enabled": True, "managed": {}}}
    if extra:
        spec[store] = {**spec.get(store, {}), "managed": extra}
    return build_store_statefulset(make_rs(spec), CFG, store)  # type: ignore[arg-type]


@pytest.mark.parametrize("store", STORES)
def test_store_has_one_replica_and_headless_service_name(store: str) -> None:
    sts = _sts(store)
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == f"demo-{store}"
    assert sts["metadata"]["labels"]["app.kubernetes.io/component"] == store


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(("size", "klass"), [("1Gi", None), ("20Gi", "fast"), ("500Mi", "slow")])
def test_volume_claim_size_and_class(store: str, size: str, klass: str | None) -> None:
    storage: dict[str, Any] = {"size": size}
    if klass:
        storage["storageClassName"] = klass
    claim = _sts(store, {"storage": storage})["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == size
    assert claim["spec"].get("storageClassName") == klass
    assert claim["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"


def test_postgres_runs_pgvector_with_generated_password() -> None:
    container = _sts("postgres")["spec"]["template"]["spec"]["containers"][0]
    assert "pgvector" in container["image"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-credentials",
        "key": "postgres-password",
    }


@pytest.mark.parametrize("store", STORES)
def test_store_pods_are_restricted(store: str) -> None:
    pod = _sts(store)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "readinessProbe" in pod["containers"][0]
    assert "livenessProbe" in pod["containers"][0]
    assert pod["containers"][0]["resources"]["requests"]


@pytest.mark.parametrize(("policy", "expected"), [("Retain", "Retain"), ("Delete", "Delete")])
def test_claim_retention_follows_deletion_policy(policy: str, expected: str) -> None:
    sts = build_store_statefulset(make_rs({"deletionPolicy": policy}), CFG, "postgres")
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == expected


def test_image_and_resources_can_be_overridden() -> None:
    sts = _sts("redis", {"image": "valkey/valkey:8", "resources": {"requests": {"cpu": "1"}}})
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "valkey/valkey:8"
    assert container["resources"] == {"requests": {"cpu": "1"}}
