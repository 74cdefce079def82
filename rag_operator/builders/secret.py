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
    api_keys_name,
    child_name,
    credentials_name,
    metadata,
)
from rag_operator.models import RagSystem

PASSWORD_KEYS = ("postgres-password", "redis-password", "neo4j-password")


def build_credentials_secret(rs: RagSystem, passwords: Mapping[str, str]) -> dict[str, Any]:
    """`passwords` maps each of PASSWORD_KEYS to a random URL-safe string."""
    pg, rd, nj = (passwords[key] for key in PASSWORD_KEYS)
    data = {
        "postgres-password": pg,
        "database-url": f"postgresql://rag:{pg}@{child_name(rs, 'postgres')}:5432/rag",
        "redis-password": rd,
        "redis-url": f"redis://:{rd}@{child_name(rs, 'redis')}:6379/0",
        "neo4j-password": nj,
        "neo4j-auth": f"neo4j/{nj}",
    }
    assert set(data) == set(CREDENTIALS_KEYS)
    meta = metadata(rs, credentials_name(rs), "config")
    # No owner reference: with deletionPolicy Retain the Secret outlives the RagSystem, so
    # the retained volumes stay usable; the finalizer removes it for Delete.
    del meta["ownerReferences"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "stringData": data,
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
