"""Alembic environment: one connection, a session advisory lock around every upgrade.

Each applied migration is recorded in `schema_revisions` (revision, parent, whether the
parent's runtime can run on it) inside the migration's own transaction; a downgrade removes
its row. Revisions applied before the table existed are backfilled from the scripts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script.revision import ResolutionError
from sqlalchemy.pool import NullPool

from rag_runtime.migrate import ADVISORY_LOCK_ID, COMPATIBILITY_ATTRIBUTE, REVISIONS_TABLE

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {REVISIONS_TABLE} (
    revision text PRIMARY KEY,
    down_revision text,
    compatible_with_previous boolean NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
RECORD = sa.text(
    f"INSERT INTO {REVISIONS_TABLE} (revision, down_revision, compatible_with_previous) "
    "VALUES (:revision, :down, :compatible) ON CONFLICT (revision) DO UPDATE SET "
    "down_revision = EXCLUDED.down_revision, "
    "compatible_with_previous = EXCLUDED.compatible_with_previous, applied_at = now()"
)
FORGET = sa.text(f"DELETE FROM {REVISIONS_TABLE} WHERE revision = :revision")


def _record(conn: sa.Connection, script: Any) -> None:
    flag = getattr(script.module, COMPATIBILITY_ATTRIBUTE, None)
    if not isinstance(flag, bool):
        raise RuntimeError(
            f"migration {script.revision} must declare {COMPATIBILITY_ATTRIBUTE} = True or False"
        )
    conn.execute(
        RECORD, {"revision": script.revision, "down": script.down_revision, "compatible": flag}
    )


def _on_version_apply(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    conn = ctx.connection
    assert conn is not None
    if step.is_upgrade:
        _record(conn, step.up_revision)
    else:
        conn.execute(FORGET, {"revision": step.up_revision_id})


def _backfill(conn: sa.Connection) -> None:
    """Record the applied revisions that predate the table (an older runtime migrated)."""
    current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        return
    scripts = context.script
    try:
        scripts.get_revision(current)
    except ResolutionError:  # ahead of these scripts: nothing to add
        return
    for script in scripts.iterate_revisions(current, "base"):
        _record(conn, script)


url = context.config.attributes["url"]
engine = sa.create_engine(url, poolclass=NullPool)
with engine.connect() as connection:
    # Two migrators (e.g. an init job and an API pod) serialize here; the second finds the
    # schema current and does nothing.
    connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
    connection.commit()
    try:
        connection.execute(sa.text(CREATE_TABLE))
        _backfill(connection)
        connection.commit()
        context.configure(
            connection=connection,
            transaction_per_migration=True,
            on_version_apply=_on_version_apply,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
        connection.commit()
engine.dispose()
