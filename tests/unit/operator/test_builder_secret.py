"""Generated Secrets: the store credentials and the admin API key.

Aspects covered: every key present, URLs point at the managed Services, the passwords given
are used verbatim (the builder draws no randomness), and the Secret has no owner reference
(it must outlive the RagSystem with deletionPolicy Retain). The admin key Secret holds the
key and a RAG_API_KEYS value that the runtime's own settings parse into one key granting
every collection; it is owned by the RagSystem.
"""

from __future__ import annotations

import pytest

from rag_operator.builders.common import ADMIN_KEY, API_KEYS_KEY, CREDENTIALS_KEYS
from rag_operator.builders.secret import (
    PASSWORD_KEYS,
    build_api_keys_secret,
    build_credentials_secret,
    missing_credentials,
)
from rag_runtime.auth import parse_api_keys
from rag_runtime.settings import Settings
from tests.unit.operator.helpers import make_rs

PASSWORDS = {
    "postgres-password": "pw-0",
    "redis-password": "pw-1",
    "neo4j-password": "pw-2",
    "postgres-superuser-password": "pw-3",
}


def test_secret_has_every_credentials_key() -> None:
    secret = build_credentials_secret(make_rs(), PASSWORDS)
    assert set(secret["stringData"]) == set(CREDENTIALS_KEYS)
    assert secret["metadata"]["name"] == "demo-credentials"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("database-url", "postgresql://rag:pw-0@demo-postgres:5432/rag"),
        ("redis-url", "redis://:pw-1@demo-redis:6379/0"),
        ("neo4j-auth", "neo4j/pw-2"),
        ("postgres-password", "pw-0"),
        ("postgres-superuser-password", "pw-3"),
        ("redis.conf", "requirepass pw-1\nappendonly yes\ndir /data\nport 6379\n"),
    ],
)
def test_secret_values_are_built_from_given_passwords(key: str, expected: str) -> None:
    assert build_credentials_secret(make_rs(), PASSWORDS)["stringData"][key] == expected


def test_secret_outlives_the_ragsystem() -> None:
    secret = build_credentials_secret(make_rs(), PASSWORDS)
    assert "ownerReferences" not in secret["metadata"]
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ragops-operator"


def test_builder_is_deterministic() -> None:
    rs = make_rs()
    assert build_credentials_secret(rs, PASSWORDS) == build_credentials_secret(rs, PASSWORDS)


def test_admin_key_secret_is_what_the_runtime_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = build_api_keys_secret(make_rs(), "Zk3_-abcDEF012")
    assert secret["metadata"]["name"] == "demo-api-keys"
    data = secret["stringData"]
    assert data[ADMIN_KEY] == "Zk3_-abcDEF012"
    monkeypatch.setenv("RAG_API_KEYS", data[API_KEYS_KEY])
    keys = parse_api_keys(Settings().api_keys)
    assert keys == {"Zk3_-abcDEF012": None}  # None: every collection


def test_admin_key_secret_goes_with_the_ragsystem() -> None:
    secret = build_api_keys_secret(make_rs(), "k")
    assert [o["uid"] for o in secret["metadata"]["ownerReferences"]] == ["0000-uid"]


def test_passwords_cover_every_password_key() -> None:
    assert set(PASSWORDS) == set(PASSWORD_KEYS)


def test_an_older_secret_gets_only_its_missing_keys_built_from_its_passwords() -> None:
    rs = make_rs()
    old = {
        "postgres-password": "old-pg",
        "database-url": "postgresql://rag:old-pg@demo-postgres:5432/rag",
        "redis-password": "old-rd",
        "redis-url": "redis://:old-rd@demo-redis:6379/0",
        "neo4j-password": "old-nj",
        "neo4j-auth": "neo4j/old-nj",
    }
    added = missing_credentials(rs, old, PASSWORDS)
    assert added == {
        "postgres-superuser-password": "pw-3",
        "redis.conf": "requirepass old-rd\nappendonly yes\ndir /data\nport 6379\n",
    }
    complete = build_credentials_secret(rs, PASSWORDS)["stringData"]
    assert missing_credentials(rs, complete, {k: "x" for k in PASSWORD_KEYS}) == {}
