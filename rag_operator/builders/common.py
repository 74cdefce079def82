"""Names, labels, owner references and security settings shared by every builder."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from rag_operator.models import API_PORT, API_VERSION, KIND, RagSystem
from rag_operator.models.naming import (
    APP_NAME,
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    PART_OF,
    PART_OF_LABEL,
)

Component = Literal[
    "api",
    "worker",
    "postgres",
    "redis",
    "neo4j",
    "config",
    "network",
    "migrate",
    "backup",
    "restore",
]
Store = Literal["postgres", "redis", "neo4j"]
STORES: tuple[Store, ...] = ("postgres", "redis", "neo4j")

DATA_DIR = "/var/lib/rag"
CREDENTIALS_KEYS = (
    "postgres-password",
    "postgres-superuser-password",
    "database-url",
    "redis-password",
    "redis-url",
    "redis.conf",
    "neo4j-password",
    "neo4j-auth",
)
# The runtime's Postgres role and database (the role owns the database and nothing else).
POSTGRES_ROLE = "rag"
POSTGRES_DATABASE = "rag"
REDIS_CONF_KEY = "redis.conf"
# Keys of the generated API key Secret: the admin key itself, and the runtime's RAG_API_KEYS
# (a JSON list of accepted keys).
ADMIN_KEY = "admin-key"
API_KEYS_KEY = "api-keys"
STORE_PORTS: dict[Store, dict[str, int]] = {
    "postgres": {"postgres": 5432},
    "redis": {"redis": 6379},
    "neo4j": {"bolt": 7687, "http": 7474},
}


def child_name(rs: RagSystem, suffix: str) -> str:
    return f"{rs.name}-{suffix}"


def credentials_name(rs: RagSystem) -> str:
    return child_name(rs, "credentials")


def api_keys_name(rs: RagSystem) -> str:
    """The Secret of the generated admin key (when the spec names no API keys)."""
    return child_name(rs, "api-keys")


def config_name(rs: RagSystem) -> str:
    return child_name(rs, "config")


def selector_labels(rs: RagSystem, component: str) -> dict[str, str]:
    """The stable subset used in selectors (never changes for the object's lifetime)."""
    return {**system_labels(rs), COMPONENT_LABEL: component}


def system_labels(rs: RagSystem) -> dict[str, str]:
    """Every pod of this system, whatever its component."""
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: rs.name}


def labels(rs: RagSystem, component: str) -> dict[str, str]:
    """The standard labels of every child."""
    return {
        **selector_labels(rs, component),
        PART_OF_LABEL: PART_OF,
        MANAGED_BY_LABEL: MANAGED_BY,
    }


def owner_reference(rs: RagSystem) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": rs.name,
        "uid": rs.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    rs: RagSystem, name: str, component: str, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": rs.namespace,
        "labels": labels(rs, component),
        "ownerReferences": [owner_reference(rs)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def pod_security_context(uid: int) -> dict[str, Any]:
    """Restricted pod security: non-root with a fixed uid and RuntimeDefault seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(read_only_root: bool) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def image_pull_secrets(rs: RagSystem) -> list[dict[str, str]]:
    return [{"name": ref.name} for ref in rs.spec.image.pull_secrets]


def runtime_image(rs: RagSystem, version: str | None = None) -> str:
    """The runtime image of `version` (default: spec.version)."""
    return f"{rs.spec.image.repository}:{version or rs.spec.version}"


def store_mode(rs: RagSystem, store: Store) -> Literal["managed", "external", "disabled"]:
    spec = getattr(rs.spec, store)
    if not getattr(spec, "enabled", True):
        return "disabled"
    return "external" if spec.external is not None else "managed"


def stable_hash(value: Any) -> str:
    """A short hash of a JSON-able value (sorted keys, so dict order does not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def api_endpoint(rs: RagSystem) -> str:
    return f"http://{child_name(rs, 'api')}.{rs.namespace}.svc:{API_PORT}"
