"""Schema compatibility against a real Postgres: a runtime on a schema ahead of it.

A newer release's migrations are simulated by a copy of the shipped ones plus EXPAND (the
revision after head: a nullable column) and CONTRACT (the next: a column renamed), applied
with that copy. Covers: each applied revision is recorded with its declared compatibility, and
a downgrade forgets it; revisions applied before the record existed are backfilled; this
runtime on a schema ahead by EXPAND is Ready and `migrate` (and `migrate --check`) exit 0 and
change nothing; on CONTRACT it is not Ready and `migrate` exits 1, each with a message naming
the revisions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from hack.services import PostgresService
from rag_runtime import migrate
from rag_runtime.cli import app
from rag_runtime.migrate import SchemaState
from tests.integration.runtime.helpers import api

pytestmark = pytest.mark.integration

HEAD = migrate.head_revision()
EXPAND, CONTRACT = f"{int(HEAD) + 1:04d}", f"{int(HEAD) + 2:04d}"
SHIPPED = {"0001": False, "0002": False, "0003": False, "0004": True}
TEMPLATE = '''"""{doc}"""

from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None
compatible_with_previous = {compatible}


def upgrade() -> None:
    op.execute("{up}")


def downgrade() -> None:
    op.execute("{down_sql}")
'''


@pytest.fixture(scope="module")
def newer_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped migrations plus an expand (EXPAND) and a contract (CONTRACT) step."""
    scripts = tmp_path_factory.mktemp("newer") / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    steps = [
        (EXPAND, HEAD, True, "ALTER TABLE documents ADD COLUMN note text",
         "ALTER TABLE documents DROP COLUMN note"),
        (CONTRACT, EXPAND, False, "ALTER TABLE documents RENAME COLUMN title TO heading",
         "ALTER TABLE documents RENAME COLUMN heading TO title"),
    ]  # fmt: skip
    for rev, down, compatible, up, down_sql in steps:
        text = TEMPLATE.format(
            doc=f"step {rev}", rev=rev, down=down, compatible=compatible, up=up, down_sql=down_sql
        )
        (scripts / "versions" / f"{rev}_step.py").write_text(text)
    return scripts


@pytest.fixture
def url(postgres: PostgresService) -> str:
    return postgres.create_database("rt_schema_compat")


def cli(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["migrate", *args], env={"RAG_DATABASE_URL": url})
    return result.exit_code, result.stdout, result.stderr


def recorded(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT revision, compatible_with_previous FROM schema_revisions"
        ).fetchall()
    return dict(rows)


def test_each_applied_revision_is_recorded_and_a_downgrade_forgets_it(
    url: str, newer_release: Path
) -> None:
    migrate.upgrade(url, migrations_dir=newer_release)
    assert recorded(url) == {**SHIPPED, EXPAND: True, CONTRACT: False}
    migrate.downgrade(url, HEAD, migrations_dir=newer_release)
    assert set(recorded(url)) == set(SHIPPED)
    assert migrate.schema_status(url).state is SchemaState.CURRENT


def test_revisions_applied_before_the_record_existed_are_backfilled(url: str) -> None:
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE schema_revisions")
    assert cli(url)[0] == 0
    assert set(recorded(url)) == set(SHIPPED)


def test_runtime_serves_a_schema_ahead_by_a_compatible_migration(
    url: str, newer_release: Path
) -> None:
    migrate.upgrade(url, EXPAND, migrations_dir=newer_release)
    status = migrate.schema_status(url)
    assert status.state is SchemaState.AHEAD
    assert status.ahead == (EXPAND,)
    for args in ((), ("--check",)):
        code, out, _ = cli(url, *args)
        assert code == 0, out
        assert f"schema at {EXPAND} is ahead of this runtime's head {HEAD}" in out
    assert migrate.schema_status(url).current == EXPAND  # migrate changed nothing
    with api(database_url=url) as client:
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 200, ready.text
        schema = ready.json()["checks"]["schema"]
        assert schema["status"] == "up"
        assert schema["state"] == "ahead"
        assert schema["ahead"] == [EXPAND]


def test_runtime_refuses_a_schema_ahead_by_an_incompatible_migration(
    url: str, newer_release: Path
) -> None:
    migrate.upgrade(url, migrations_dir=newer_release)
    for args in ((), ("--check",)):
        code, _, err = cli(url, *args)
        assert code == 1
        ahead = f"schema at {CONTRACT} is ahead of this runtime's head {HEAD}"
        assert f"{ahead} by {EXPAND}, {CONTRACT}" in err
        assert f"{CONTRACT} cannot be run on by a runtime at {HEAD}" in err
    with api(database_url=url) as client:
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 503
        schema = ready.json()["checks"]["schema"]
        assert schema["status"] == "incompatible"
        assert f"{CONTRACT} cannot be run on" in schema["reason"]
