"""Versioned schema migrations (alembic), applied under a Postgres advisory lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from rag_runtime.db import sqlalchemy_url

ADVISORY_LOCK_ID = 7_261_012_345  # any constant shared by every migrator of this schema
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_IN_PROCESS = threading.Lock()  # alembic's environment is process-global


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = sqlalchemy_url(url)
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config("postgresql://x")).get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_status(url: str) -> SchemaStatus:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return SchemaStatus(current=current, head=head_revision())


def upgrade(url: str, revision: str = "head") -> SchemaStatus:
    """Bring the schema to `revision`; safe to run concurrently and repeatedly."""
    with _IN_PROCESS:
        command.upgrade(_config(url), revision)
    return schema_status(url)


def downgrade(url: str, revision: str) -> SchemaStatus:
    """Take the schema back to `revision`; a migration that would lose data refuses."""
    with _IN_PROCESS:
        command.downgrade(_config(url), revision)
    return schema_status(url)
