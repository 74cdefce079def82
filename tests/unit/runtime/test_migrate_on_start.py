"""Who migrates the schema at start.

- `rag-runtime serve` (role api) and the local CLI migrate by default;
- `RAG_MIGRATE_ON_START=false` (set by the operator on its pods) turns that off;
- the worker never migrates, whatever the setting.
"""

from __future__ import annotations

import pytest

from rag_runtime.runtime import Role, migrates_at_start
from rag_runtime.settings import Settings


@pytest.mark.parametrize(
    ("env", "role", "expected"),
    [
        (None, "api", True),
        (None, "cli", True),
        (None, "worker", False),
        ("true", "api", True),
        ("false", "api", False),
        ("false", "cli", False),
        ("true", "worker", False),
    ],
)
def test_migrate_on_start_decides_who_migrates(
    env: str | None, role: Role, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env is None:
        monkeypatch.delenv("RAG_MIGRATE_ON_START", raising=False)
    else:
        monkeypatch.setenv("RAG_MIGRATE_ON_START", env)
    assert migrates_at_start(Settings(), role) is expected


def test_migrate_on_start_refuses_a_non_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MIGRATE_ON_START", "sometimes")
    with pytest.raises(ValueError, match="migrate_on_start"):
        Settings()
