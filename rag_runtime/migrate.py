"""Versioned schema migrations (alembic), applied under a Postgres advisory lock.

Compatibility is explicit (expand/contract). Every migration module declares
`compatible_with_previous`: True when the runtime whose head is the migration's parent can
still run on the schema it produces (an expand step: a new nullable column, a new table, an
index), False when it cannot (a contract step: a dropped or renamed column, a constraint the
old code's writes break). Each applied revision is recorded, with that flag, in the table
`schema_revisions` by the migration's own transaction, so an older runtime, which does not
have the newer migration files, can still tell from the database whether it may serve:

- schema at this runtime's head: current;
- schema behind (an ancestor of head, or empty): behind, `rag-runtime migrate` brings it up;
- schema ahead by compatible migrations only: the runtime serves (and `migrate` does nothing);
- schema ahead by an incompatible migration, or by one the database has no record of: the
  runtime refuses, naming the revisions; only a runtime at that revision, or a restore of a
  backup taken at this runtime's revision, serves it.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from rag_runtime.db import sqlalchemy_url

log = logging.getLogger(__name__)

ADVISORY_LOCK_ID = 7_261_012_345  # any constant shared by every migrator of this schema
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
REVISIONS_TABLE = "schema_revisions"
COMPATIBILITY_ATTRIBUTE = "compatible_with_previous"
_IN_PROCESS = threading.Lock()  # alembic's environment is process-global


class SchemaIncompatibleError(RuntimeError):
    """The database's schema is one this runtime cannot run on; the message names why."""


class SchemaState(enum.StrEnum):
    CURRENT = "current"
    BEHIND = "behind"
    AHEAD = "ahead"  # by compatible migrations only: servable
    INCOMPATIBLE = "incompatible"  # ahead by a contract migration
    UNKNOWN = "unknown"  # ahead by a revision the database has no record of


@dataclass(frozen=True)
class Revision:
    """One migration: its parent and whether the parent's runtime can run on its schema."""

    revision: str
    down_revision: str | None
    compatible_with_previous: bool


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str
    state: SchemaState = SchemaState.CURRENT
    ahead: tuple[str, ...] = field(default=())  # revisions past head, oldest first
    blocking: tuple[str, ...] = field(default=())  # the ones this runtime cannot run on

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def servable(self) -> bool:
        """True when this runtime can run on the schema as it is."""
        return self.state in (SchemaState.CURRENT, SchemaState.AHEAD)

    @property
    def message(self) -> str:
        at = self.current or "none"
        if self.state is SchemaState.CURRENT:
            return f"schema up to date at {self.head}"
        if self.state is SchemaState.BEHIND:
            return f"schema behind: at {at}, head is {self.head}"
        ahead = ", ".join(self.ahead)
        if self.state is SchemaState.AHEAD:
            return (
                f"schema at {at} is ahead of this runtime's head {self.head} by compatible "
                f"migrations ({ahead}); this runtime serves it"
            )
        if self.state is SchemaState.INCOMPATIBLE:
            return (
                f"schema at {at} is ahead of this runtime's head {self.head} by "
                f"{ahead}; {', '.join(self.blocking)} cannot be run on by a runtime at "
                f"{self.head} (contract migration): run a runtime at {at}, or restore a "
                f"backup taken at {self.head}"
            )
        return (
            f"schema at {at} is not a revision this runtime knows (head {self.head}) and the "
            f"database records no path from it to {self.head}: run a runtime at {at}"
        )


def judge(
    current: str | None,
    head: str,
    known: Sequence[str],
    applied: Mapping[str, Revision],
) -> SchemaStatus:
    """Whether a runtime at `head` (whose own revisions are `known`) can run on `current`.

    `applied` is what the database recorded of each revision it went through. Pure.
    """
    if current == head:
        return SchemaStatus(current, head, SchemaState.CURRENT)
    if current is None or current in known:
        return SchemaStatus(current, head, SchemaState.BEHIND)
    path: list[Revision] = []
    rev: str | None = current
    while rev is not None and rev != head:
        record = applied.get(rev)
        if record is None or rev in known:
            break
        path.append(record)
        rev = record.down_revision
    ahead = tuple(r.revision for r in reversed(path))
    if rev != head:
        missing = (rev,) if rev is not None else ()
        return SchemaStatus(current, head, SchemaState.UNKNOWN, ahead, missing)
    blocking = tuple(r.revision for r in reversed(path) if not r.compatible_with_previous)
    state = SchemaState.INCOMPATIBLE if blocking else SchemaState.AHEAD
    return SchemaStatus(current, head, state, ahead, blocking)


def _config(url: str, migrations_dir: Path = MIGRATIONS_DIR) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["url"] = sqlalchemy_url(url)
    return cfg


def _scripts(migrations_dir: Path) -> ScriptDirectory:
    return ScriptDirectory.from_config(_config("postgresql://x", migrations_dir))


def head_revision(migrations_dir: Path = MIGRATIONS_DIR) -> str:
    head = _scripts(migrations_dir).get_current_head()
    assert head is not None
    return head


def declared_revisions(migrations_dir: Path = MIGRATIONS_DIR) -> dict[str, Revision]:
    """Every migration of `migrations_dir` with its declared compatibility.

    A migration that does not declare `compatible_with_previous` (a bool) is an error: the
    question has no safe default.
    """
    found: dict[str, Revision] = {}
    for script in _scripts(migrations_dir).walk_revisions():
        flag = getattr(script.module, COMPATIBILITY_ATTRIBUTE, None)
        if not isinstance(flag, bool):
            raise SchemaIncompatibleError(
                f"migration {script.revision} ({script.path}) must declare "
                f"{COMPATIBILITY_ATTRIBUTE} = True or False"
            )
        down = script.down_revision
        if isinstance(down, tuple | list):
            raise SchemaIncompatibleError(f"migration {script.revision}: merges are not supported")
        found[script.revision] = Revision(script.revision, down, flag)
    return found


def recorded_revisions(conn: sa.Connection) -> dict[str, Revision]:
    """What the database recorded of the revisions it went through (empty before any)."""
    if not sa.inspect(conn).has_table(REVISIONS_TABLE):
        return {}
    rows = conn.execute(
        sa.text(f"SELECT revision, down_revision, compatible_with_previous FROM {REVISIONS_TABLE}")
    ).all()
    return {r[0]: Revision(r[0], r[1], bool(r[2])) for r in rows}


def schema_status(url: str, migrations_dir: Path = MIGRATIONS_DIR) -> SchemaStatus:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            applied = recorded_revisions(conn)
    finally:
        engine.dispose()
    ours = declared_revisions(migrations_dir)
    return judge(current, head_revision(migrations_dir), list(ours), applied)


# Connection failures waiting does not cure: the server answered, and said no. libpq gives
# no SQLSTATE for errors while connecting, so these are told by their text.
_FINAL_CONNECT_ERRORS = (
    "does not exist",
    "authentication failed",
    "pg_hba.conf",
    "permission denied",
)


def worth_waiting(exc: sa.exc.OperationalError) -> bool:
    """Whether a failed connection may work later: no answer (refused, no route, timeout) or
    a server still starting up; not a missing database, a wrong password or a refusal."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "57P03")  # cannot_connect_now: starting up
    text = str(exc.orig).lower()
    return not any(final in text for final in _FINAL_CONNECT_ERRORS)


def wait_for_database(url: str, seconds: float, pause_s: float = 1.0) -> None:
    """Return once the database accepts a connection; after `seconds` the last error raises
    (at once when `seconds` is 0, or for an error waiting does not cure)."""
    deadline = time.monotonic() + seconds
    while True:
        engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
        try:
            with engine.connect():
                return
        except sa.exc.OperationalError as exc:
            if not worth_waiting(exc) or time.monotonic() + pause_s > deadline:
                raise
            log.info("database not accepting connections yet; retrying")
        finally:
            engine.dispose()
        time.sleep(pause_s)


def upgrade(
    url: str, revision: str = "head", migrations_dir: Path = MIGRATIONS_DIR
) -> SchemaStatus:
    """Bring the schema to `revision`; safe to run concurrently and repeatedly.

    A schema ahead of this runtime by compatible migrations is left as it is; one ahead by an
    incompatible (or unrecorded) migration raises SchemaIncompatibleError naming them.
    """
    before = schema_status(url, migrations_dir)
    if before.state is SchemaState.AHEAD:
        return before
    if not before.servable and before.state is not SchemaState.BEHIND:
        raise SchemaIncompatibleError(before.message)
    with _IN_PROCESS:
        command.upgrade(_config(url, migrations_dir), revision)
    return schema_status(url, migrations_dir)


def downgrade(url: str, revision: str, migrations_dir: Path = MIGRATIONS_DIR) -> SchemaStatus:
    """Take the schema back to `revision`; a migration that would lose data refuses."""
    with _IN_PROCESS:
        command.downgrade(_config(url, migrations_dir), revision)
    return schema_status(url, migrations_dir)
