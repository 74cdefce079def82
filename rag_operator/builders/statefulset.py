"""StatefulSets of the managed stores: Postgres (pgvector), Redis and Neo4j.

Least privilege for each: Postgres's superuser password is its own Secret key and the
runtime's role is created by the first-start script (`storeconfig`); Redis reads its password
from a config file mounted from the credentials Secret (never on the command line); every
store runs with a read-only root filesystem, its writable directories as volumes (Neo4j's
conf directory is a copy of the image's, made by an init container, because the image's
entrypoint writes its settings there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_operator.builders.common import (
    POSTGRES_DATABASE,
    POSTGRES_ROLE,
    REDIS_CONF_KEY,
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
from rag_operator.builders.storeconfig import INIT_DIR, postgres_init_name
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
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    init: list[dict[str, Any]] = field(default_factory=list)


NEO4J_CONF = "/var/lib/neo4j/conf"
REDIS_CONF_DIR = "/etc/ragops/redis"
COPY_CONF = f"if [ -d {NEO4J_CONF} ]; then cp -a {NEO4J_CONF}/. /conf-copy/; fi"


def _secret_env(name: str, rs: RagSystem, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": credentials_name(rs), "key": key}}}


def store_shape(rs: RagSystem, cfg: OperatorConfig, store: Store) -> StoreShape:
    if store == "postgres":
        return StoreShape(
            image=cfg.postgres_image,
            uid=999,
            data_path="/var/lib/postgresql/data",
            env=[
                {"name": "POSTGRES_USER", "value": "postgres"},
                _secret_env("POSTGRES_PASSWORD", rs, "postgres-superuser-password"),
                _secret_env("RAG_DB_PASSWORD", rs, "postgres-password"),
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
            ],
            scratch=("/tmp", "/var/run/postgresql"),
            probe={
                "exec": {"command": ["pg_isready", "-U", POSTGRES_ROLE, "-d", POSTGRES_DATABASE]}
            },
            volumes=[{"name": "init", "configMap": {"name": postgres_init_name(rs)}}],
            mounts=[{"name": "init", "mountPath": INIT_DIR, "readOnly": True}],
        )
    if store == "redis":
        items = [{"key": REDIS_CONF_KEY, "path": "redis.conf"}]
        secret = {"secretName": credentials_name(rs), "items": items, "defaultMode": 0o440}
        return StoreShape(
            image=cfg.redis_image,
            uid=999,
            data_path="/data",
            env=[],
            args=[f"{REDIS_CONF_DIR}/redis.conf"],
            probe={"tcpSocket": {"port": "redis"}},
            volumes=[{"name": "config", "secret": secret}],
            mounts=[{"name": "config", "mountPath": REDIS_CONF_DIR, "readOnly": True}],
        )
    image = _managed(rs, store).image or cfg.neo4j_image
    copy_conf = {
        "name": "conf",
        "image": image,
        # The image's defaults (JVM flags among them) into the writable conf directory.
        "command": ["sh", "-c", COPY_CONF],
        "securityContext": container_security_context(True),
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "volumeMounts": [{"name": "conf", "mountPath": "/conf-copy"}],
    }
    return StoreShape(
        image=cfg.neo4j_image,
        uid=7474,
        data_path="/data",
        env=[_secret_env("NEO4J_AUTH", rs, "neo4j-auth")],
        scratch=("/tmp", "/logs", "/var/lib/neo4j/run"),
        probe={"tcpSocket": {"port": "bolt"}},
        volumes=[{"name": "conf", "emptyDir": {}}],
        mounts=[{"name": "conf", "mountPath": NEO4J_CONF}],
        init=[copy_conf],
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
            *shape.mounts,
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
                    **({"initContainers": shape.init} if shape.init else {}),
                    "containers": [container],
                    "volumes": [
                        *(
                            {"name": f"scratch-{i}", "emptyDir": {}}
                            for i in range(len(shape.scratch))
                        ),
                        *shape.volumes,
                    ],
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data", "labels": labels(rs, store)}, "spec": claim}
            ],
        },
    }
