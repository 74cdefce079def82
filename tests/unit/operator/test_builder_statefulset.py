"""StatefulSets of the managed stores.

Aspects covered: one per managed store with a volume claim of the asked size and class,
pgvector image for Postgres, passwords from the generated Secret, restricted security,
probes, claim retention following deletionPolicy, and image/resources overrides. Least
privilege: Postgres's superuser has its own password and the first-start script (mounted from
its ConfigMap) creates the runtime's role; Redis's password is in a config file from the
Secret, in neither its arguments nor its env; every store's root filesystem is read-only, with
Neo4j's conf directory a writable copy made by an init container.
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


def _container(store: str) -> dict[str, Any]:
    container: dict[str, Any] = _sts(store)["spec"]["template"]["spec"]["containers"][0]
    return container


def _secret_ref(env: dict[str, Any]) -> dict[str, str]:
    ref: dict[str, str] = env["valueFrom"]["secretKeyRef"]
    return ref


def test_postgres_superuser_and_runtime_role_have_their_own_passwords() -> None:
    container = _container("postgres")
    assert "pgvector" in container["image"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_USER"]["value"] == "postgres"
    assert "POSTGRES_DB" not in env
    assert _secret_ref(env["POSTGRES_PASSWORD"]) == {
        "name": "demo-credentials",
        "key": "postgres-superuser-password",
    }
    assert _secret_ref(env["RAG_DB_PASSWORD"]) == {
        "name": "demo-credentials",
        "key": "postgres-password",
    }
    pod = _sts("postgres")["spec"]["template"]["spec"]
    assert {"name": "init", "configMap": {"name": "demo-postgres-init"}} in pod["volumes"]
    assert {
        "name": "init",
        "mountPath": "/docker-entrypoint-initdb.d",
        "readOnly": True,
    } in container["volumeMounts"]


def test_redis_password_is_in_a_config_file_not_the_command_line() -> None:
    container = _container("redis")
    assert container["args"] == ["/etc/ragops/redis/redis.conf"]
    assert "command" not in container
    assert container["env"] == []
    pod = _sts("redis")["spec"]["template"]["spec"]
    config = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config["secret"] == {
        "secretName": "demo-credentials",
        "items": [{"key": "redis.conf", "path": "redis.conf"}],
        "defaultMode": 0o440,
    }


@pytest.mark.parametrize("store", STORES)
def test_store_root_filesystems_are_read_only(store: str) -> None:
    pod = _sts(store)["spec"]["template"]["spec"]
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounted = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert "/tmp" in mounted


def test_neo4j_writes_only_to_its_volumes() -> None:
    pod = _sts("neo4j")["spec"]["template"]["spec"]
    mounted = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounted == {"/data", "/tmp", "/logs", "/var/lib/neo4j/run", "/var/lib/neo4j/conf"}
    (init,) = pod["initContainers"]
    assert init["image"] == pod["containers"][0]["image"]
    assert init["command"] == [
        "sh",
        "-c",
        "if [ -d /var/lib/neo4j/conf ]; then cp -a /var/lib/neo4j/conf/. /conf-copy/; fi",
    ]
    assert init["volumeMounts"] == [{"name": "conf", "mountPath": "/conf-copy"}]


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
