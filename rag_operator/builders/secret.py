"""The generated credentials Secret: store passwords and the URLs built from them.

The passwords come in as an argument (the reconcile layer draws them once), so the builder
stays pure. The Secret is created once and never overwritten.

"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag_operator.builders.common import CREDENTIALS_KEYS, child_name, credentials_name, metadata
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
