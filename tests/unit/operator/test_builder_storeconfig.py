"""Postgres's first-start script (ConfigMap <name>-postgres-init).

Aspects covered: the ConfigMap carries the standard labels and an owner reference; the script
creates a login role without superuser, database, role or replication rights that owns the
runtime's database, takes the password from the env (never written into the ConfigMap), stops
at the first error, and creates pgvector as the superuser. Its effect on a real Postgres is
tested in tests/integration/services/test_postgres_init.py.
"""

from __future__ import annotations

from rag_operator.builders.storeconfig import (
    INIT_SCRIPT_KEY,
    build_postgres_init_configmap,
    postgres_init_script,
)
from tests.unit.operator.helpers import make_rs


def test_configmap_is_a_child_of_the_system() -> None:
    cm = build_postgres_init_configmap(make_rs())
    assert cm["metadata"]["name"] == "demo-postgres-init"
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ragops-operator"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "0000-uid"
    assert list(cm["data"]) == [INIT_SCRIPT_KEY]


def test_role_owns_its_database_and_nothing_else() -> None:
    script = postgres_init_script()
    assert "CREATE ROLE rag LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION" in script
    assert "CREATE DATABASE rag OWNER rag;" in script
    assert "REVOKE ALL ON DATABASE rag FROM PUBLIC;" in script
    assert "CREATE EXTENSION IF NOT EXISTS vector;" in script
    assert "ON_ERROR_STOP=1" in script


def test_password_comes_from_the_env_not_the_configmap() -> None:
    script = postgres_init_script()
    assert '--set pw="$RAG_DB_PASSWORD"' in script
    assert "PASSWORD :'pw'" in script
