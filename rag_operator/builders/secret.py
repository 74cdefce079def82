"""The generated Secrets: store passwords and the URLs built from them, and the admin key.

The passwords and the key come in as arguments (the reconcile layer draws them once), so the
builders stay pure. Both Secrets are created once and never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rag_operator.builders.common import (
    ADMIN_KEY,
    API_KEYS_KEY,
    CREDENTIALS_KEYS,
    POSTGRES_DATABASE,
    POSTGRES_ROLE,
    REDIS_CONF_KEY,
    api_keys_name,
    child_name,
    credentials_name,
    metadata,
)
from rag_operator.models import RagSystem

PASSWORD_KEYS = (
    "postgres-password",
    "postgres-superuser-password",
    "redis-password",
    "neo4j-password",
)


def redis_conf(password: str) -> str:
    """Redis's configuration: the password in a file, never on the command line."""
    return f"requirepass {password}\nappendonly yes\ndir /data\nport 6379\n"


def credentials_data(rs: RagSystem, passwords: Mapping[str, str]) -> dict[str, str]:
    """Every key of the credentials Secret, from the passwords (one per PASSWORD_KEYS)."""
    pg, rd, nj = (passwords[k] for k in ("postgres-password", "redis-password", "neo4j-password"))
    host = child_name(rs, "postgres")
    data = {
        "postgres-password": pg,
        "postgres-superuser-password": passwords["postgres-superuser-password"],
        "database-url": f"postgresql://{POSTGRES_ROLE}:{pg}@{host}:5432/{POSTGRES_DATABASE}",
        "redis-password": rd,
        "redis-url": f"redis://:{rd}@{child_name(rs, 'redis')}:6379/0",
        REDIS_CONF_KEY: redis_conf(rd),
        "neo4j-password": nj,
        "neo4j-auth": f"neo4j/{nj}",
    }
    assert set(data) == set(CREDENTIALS_KEYS)
    return data


def missing_credentials(
    rs: RagSystem, existing: Mapping[str, str], fresh: Mapping[str, str]
) -> dict[str, str]:
    """The keys a credentials Secret from an older operator lacks, and only those.

    Existing passwords are kept (derived keys are built from them); `fresh` passwords are
    used only for password keys that do not exist yet.
    """
    passwords = {k: existing.get(k) or fresh[k] for k in PASSWORD_KEYS}
    full = credentials_data(rs, passwords)
    return {k: v for k, v in full.items() if k not in existing}


def build_credentials_secret(rs: RagSystem, passwords: Mapping[str, str]) -> dict[str, Any]:
    """`passwords` maps each of PASSWORD_KEYS to a random URL-safe string."""
    meta = metadata(rs, credentials_name(rs), "config")
    # No owner reference: with deletionPolicy Retain the Secret outlives the RagSystem, so
    # the retained volumes stay usable; the finalizer removes it for Delete.
    del meta["ownerReferences"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "stringData": credentials_data(rs, passwords),
    }


def build_api_keys_secret(rs: RagSystem, admin_key: str) -> dict[str, Any]:
    """The generated admin key, and the runtime's RAG_API_KEYS that accepts it.

    `admin_key` is URL-safe (no ':' or ','), so the runtime reads it as one key that grants
    every collection. Owned by the RagSystem: no data depends on it, and deleting it makes
    the operator draw a new key (pods pick it up when they restart).
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(rs, api_keys_name(rs), "config"),
        "type": "Opaque",
        "stringData": {ADMIN_KEY: admin_key, API_KEYS_KEY: json.dumps([admin_key])},
    }
