"""Schema compatibility (expand/contract), the pure part.

Covers: a schema at head is current; one that is empty or an ancestor of head is behind; one
ahead by compatible migrations only is servable and names them; one ahead by a contract
migration is refused naming the blocking revision; one ahead by a revision the database has no
record of is unknown; every shipped migration declares its compatibility, and a migration
without a declaration (the template's default) is refused by name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag_runtime import migrate
from rag_runtime.migrate import Revision, SchemaIncompatibleError, SchemaState, judge

KNOWN = ["0003", "0002", "0001"]
APPLIED = {
    "0004": Revision("0004", "0003", True),
    "0005": Revision("0005", "0004", True),
    "0006": Revision("0006", "0005", False),
    "0007": Revision("0007", "0006", True),
}


def test_schema_at_head_is_current() -> None:
    status = judge("0003", "0003", KNOWN, APPLIED)
    assert status.state is SchemaState.CURRENT
    assert status.servable
    assert status.up_to_date


@pytest.mark.parametrize("current", [None, "0001", "0002"])
def test_empty_or_older_schema_is_behind(current: str | None) -> None:
    status = judge(current, "0003", KNOWN, APPLIED)
    assert status.state is SchemaState.BEHIND
    assert not status.servable
    assert status.message == f"schema behind: at {current or 'none'}, head is 0003"


def test_schema_ahead_by_compatible_migrations_is_servable() -> None:
    status = judge("0005", "0003", KNOWN, APPLIED)
    assert status.state is SchemaState.AHEAD
    assert status.servable
    assert not status.up_to_date
    assert status.ahead == ("0004", "0005")
    assert "compatible" in status.message


@pytest.mark.parametrize("current", ["0006", "0007"])
def test_schema_ahead_by_a_contract_migration_is_refused_naming_it(current: str) -> None:
    status = judge(current, "0003", KNOWN, APPLIED)
    assert status.state is SchemaState.INCOMPATIBLE
    assert not status.servable
    assert status.blocking == ("0006",)
    assert f"schema at {current}" in status.message
    assert "0006 cannot be run on by a runtime at 0003" in status.message


def test_schema_ahead_without_a_record_of_the_path_is_unknown() -> None:
    partial = {"0005": APPLIED["0005"]}  # 0004 was never recorded
    status = judge("0005", "0003", KNOWN, partial)
    assert status.state is SchemaState.UNKNOWN
    assert not status.servable
    assert "0005" in status.message
    assert "0003" in status.message


def test_a_runtime_ahead_of_the_recorded_line_does_not_walk_into_its_own_revisions() -> None:
    # The database records a line that forks below head: not a path to head.
    forked = {"0009": Revision("0009", "0002", True)}
    assert judge("0009", "0003", KNOWN, forked).state is SchemaState.UNKNOWN


def test_every_shipped_migration_declares_its_compatibility() -> None:
    declared = migrate.declared_revisions()
    assert migrate.head_revision() in declared
    assert all(isinstance(r.compatible_with_previous, bool) for r in declared.values())


def test_a_migration_without_a_declaration_is_refused_by_name(tmp_path: Path) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts)
    (scripts / "versions" / "0099_undecided.py").write_text(
        f'revision = "0099"\ndown_revision = "{migrate.head_revision()}"\n'
        "branch_labels = None\ndepends_on = None\ncompatible_with_previous = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    with pytest.raises(SchemaIncompatibleError, match=r"migration 0099 .* must declare"):
        migrate.declared_revisions(scripts)
