"""Configuration of the managed stores that is not secret: Postgres's first-start script.

The Postgres image runs `/docker-entrypoint-initdb.d/*.sh` once, on an empty data directory,
as its superuser. The script creates the runtime's role, a login without any privilege but
owning its one database, with the password of the credentials Secret's `postgres-password`
(passed in as env `RAG_DB_PASSWORD`), and the pgvector extension in that database (creating
an extension needs the superuser; the runtime's `CREATE EXTENSION IF NOT EXISTS` then does
nothing). The runtime never connects as the superuser.
"""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import POSTGRES_DATABASE, POSTGRES_ROLE, child_name, metadata
from rag_operator.models import RagSystem

INIT_SCRIPT_KEY = "10-ragops-role.sh"
INIT_DIR = "/docker-entrypoint-initdb.d"


def postgres_init_name(rs: RagSystem) -> str:
    return child_name(rs, "postgres-init")


def postgres_init_script() -> str:
    role, db = POSTGRES_ROLE, POSTGRES_DATABASE
    return f"""# ragops: the runtime's role owns database {db} and nothing else (no superuser).
psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" \\
  --dbname postgres --set pw="$RAG_DB_PASSWORD" <<'SQL'
CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'pw';
CREATE DATABASE {db} OWNER {role};
REVOKE ALL ON DATABASE {db} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role};
\\connect {db}
CREATE EXTENSION IF NOT EXISTS vector;
ALTER SCHEMA public OWNER TO {role};
SQL
"""


def build_postgres_init_configmap(rs: RagSystem) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(rs, postgres_init_name(rs), "postgres"),
        "data": {INIT_SCRIPT_KEY: postgres_init_script()},
    }
