"""StatefulSets of the managed stores: Postgres (pgvector), Redis and Neo4j."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_operator.builders.common import (
    STORE_PORTS,
    Store,
    child_name,
    container_security_context,
    credentials_name,
    labels,
    metadata,
    pod_security_context,
    selector_labels,
)
from rag_operator.models import DeletionPolicy, ManagedStore, OperatorConfig, RagSystem


@dataclass(frozen=True)
class StoreShape:
    """What differs between the stores."""

    image: str
    uid: int
    data_path: str
    env: list[dict[str, Any]]
    args: list[str] = field(default_factory=list)
    read_only_root: bool = True
    scratch: tuple[str, ...] = ("/tmp",)
    probe: dict[str, Any] = field(default_factory=dict)


def _secret_env(name: str, rs: RagSystem, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": credentials_name(rs), "key": key}}}


def store_shape(rs: RagSystem, cfg: OperatorConfig, store: Store) -> StoreShape:
    if store == "postgres":
        return StoreShape(
            image=cfg.postgres_image,
            uid=999,
            data_path="/var/lib/postgresql/data",
            env=[
                {"name": "POSTGRES_USER", "value": "rag"},
                {"name": "POSTGRES_DB", "value": "rag"},
                _secret_env("POSTGRES_PASSWORD", rs, "postgres-password"),
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
            ],
            scratch=("/tmp", "/var/run/postgresql"),
            probe={"exec": {"command": ["pg_isready", "-U", "rag", "-d", "rag"]}},
        )
    if store == "redis":
        return StoreShape(
            image=cfg.redis_image,
            uid=999,
            data_path="/data",
            env=[_secret_env("REDIS_PASSWORD", rs, "redis-password")],
            args=["--requirepass", "$(REDIS_PASSWORD)", "--appendonly", "yes", "--dir", "/data"],
            probe={"tcpSocket": {"port": "redis"}},
        )
    return StoreShape(
        image=cfg.neo4j_image,
        uid=7474,
        data_path="/data",
        env=[_secret_env("NEO4J_AUTH", rs, "neo4j-auth")],
        read_only_root=False,
        scratch=("/tmp", "/logs"),
        probe={"tcpSocket": {"port": "bolt"}},
    )


def _managed(rs: RagSystem, store: Store) -> ManagedStore:
    managed: ManagedStore | None = getattr(rs.spec, store).managed
    return managed if managed is not None else ManagedStore()


def build_store_statefulset(rs: RagSystem, cfg: OperatorConfig, store: Store) -> dict[str, Any]:
    managed = _managed(rs, store)
    shape = store_shape(rs, cfg, store)
    container: dict[str, Any] = {
        "name": store,
        "image": managed.image or shape.image,
        "env": shape.env,
        "ports": [
            {"name": n, "containerPort": p, "protocol": "TCP"}
            for n, p in STORE_PORTS[store].items()
        ],
        "resources": managed.resources.wire(),
        "securityContext": container_security_context(shape.read_only_root),
        "readinessProbe": {**shape.probe, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**shape.probe, "periodSeconds": 10, "failureThreshold": 6},
        "volumeMounts": [
            {"name": "data", "mountPath": shape.data_path},
            *({"name": f"scratch-{i}", "mountPath": p} for i, p in enumerate(shape.scratch)),
        ],
    }
    if shape.args:
        container["args"] = shape.args
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": managed.storage.size}},
    }
    if managed.storage.storage_class_name:
        claim["storageClassName"] = managed.storage.storage_class_name
    policy = "Delete" if rs.spec.deletion_policy == DeletionPolicy.DELETE else "Retain"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(rs, child_name(rs, store), store),
        "spec": {
            "replicas": 1,
            "serviceName": child_name(rs, store),
            "selector": {"matchLabels": selector_labels(rs, store)},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": policy, "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels(rs, store)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(shape.uid),
                    "containers": [container],
                    "volumes": [
                        {"name": f"scratch-{i}", "emptyDir": {}} for i in range(len(shape.scratch))
                    ],
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data", "labels": labels(rs, store)}, "spec": claim}
            ],
        },
    }
