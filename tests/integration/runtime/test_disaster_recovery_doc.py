"""docs/disaster-recovery.md runs as written: every `sh` block, in order, in one shell.

Covers: the page's blocks exist and use each command it documents (backup create, list,
verify, prune, restore, migrate --check); run against a real Postgres (a system holding ready
documents) and a real S3-compatible server, every block exits 0; the restore into a new
database and the roll-back restore over the upgraded one give the source's counts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hack.paths import REPO_ROOT
from hack.services import PostgresService, S3Service
from tests.integration.runtime.helpers import add_documents, api

pytestmark = pytest.mark.integration

DOC = REPO_ROOT / "docs" / "disaster-recovery.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCUMENTED = [
    "rag-runtime backup create",
    "rag-runtime backup list",
    "rag-runtime backup verify",
    "rag-runtime backup prune",
    "rag-runtime restore",
    "rag-runtime migrate --check",
]


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_the_page_runs_each_command_it_documents() -> None:
    text = "\n".join(blocks())
    assert len(blocks()) >= 6
    for command in DOCUMENTED:
        assert command in text, f"{command} is documented but no block runs it"


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)")
        found = row.fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def test_every_block_runs_as_written(
    postgres: PostgresService, s3: S3Service, tmp_path: Path
) -> None:
    source = postgres.create_database("rt_dr_doc_source")
    target = postgres.create_database("rt_dr_doc_target")
    with api(database_url=source) as client:
        texts = ["Backups are tested by running them.", "Restores are tested by running them."]
        add_documents(client, "runbook", [{"text": t} for t in texts])
    before = counts(source)
    s3.create_bucket("backups")
    script = ["set -euo pipefail"]
    for i, block in enumerate(blocks()):
        script += [f"echo '--- block {i}' >&2", block]
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, **s3.env(), "RAG_DATABASE_URL": source, "NEW_DATABASE_URL": target,
           "RAG_LOG_LEVEL": "warning", "PATH": f"{venv_bin}:{os.environ['PATH']}"}  # fmt: skip
    result = subprocess.run(["bash", "-c", "\n".join(script)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stderr.count("--- block") == len(blocks())
    assert counts(target) == before
    assert counts(source) == before
    assert '"name": "pre-upgrade"' in result.stdout
