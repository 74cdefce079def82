"""Generated credentials Secret.

Aspects covered: every key present, URLs point at the managed Services, the passwords given
are used verbatim (the builder draws no randomness), and the Secret has no owner reference
(it must outlive the RagSystem with deletionPolicy Retain).
"""

from __future__ import annotations

import pytest

from rag_operator.builders.common import CREDENTIALS_KEYS
from rag_operator.builders.secret import PASSWORD_KEYS, build_credentials_secret
from tests.unit.operator.helpers import make_rs

PASSWORDS = {key: f"pw-{i}" for i, key in enumerate(PASSWORD_KEYS)}


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
