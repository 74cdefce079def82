"""The `rag-runtime` CLI in process: ingest files and folders with a progress bar, query a
collection, and one clear line for a bad setting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_runtime.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    (root / "sub").mkdir()
    (root / "tea.txt").write_text("Green tea contains catechins, which are antioxidants.")
    (root / "sub" / "coffee.md").write_text("# Coffee\n\nCaffeine blocks adenosine receptors.")
    (root / "cocoa.html").write_text("<title>Cocoa</title><p>Cocoa beans are fermented.</p>")
    (root / "ignored.bin").write_bytes(b"\x00\x01")
    return root


def invoke(database_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"RAG_DATABASE_URL": database_url})
    return result.exit_code, result.stdout, result.stderr


def test_ingest_a_folder_then_query_it(database_url: str, corpus: Path) -> None:
    code, out, err = invoke(database_url, "ingest", str(corpus), "--collection", "drinks")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ready"] == 3
    assert "3/3" in err  # the progress bar
    code, out, _ = invoke(database_url, "query", "what blocks adenosine?", "-c", "drinks", "--json")
    assert code == 0
    body = json.loads(out)
    assert body["results"][0]["document_title"] == "coffee"
    assert "adenosine" in body["answer"]
    assert body["citations"]


def test_ingesting_again_changes_nothing(database_url: str, corpus: Path) -> None:
    code, out, _ = invoke(database_url, "ingest", str(corpus / "tea.txt"), "-c", "drinks")
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["unchanged"] == 1


def test_query_prints_answer_and_sources(database_url: str) -> None:
    code, out, _ = invoke(database_url, "query", "antioxidants in tea", "-c", "drinks")
    assert code == 0
    assert "[1] tea" in out


def test_unknown_collection_is_a_clear_error(database_url: str) -> None:
    code, _, err = invoke(database_url, "query", "anything", "-c", "missing")
    assert code == 1
    assert "collection 'missing' not found" in err


def test_bad_setting_stops_with_one_line() -> None:
    result = CliRunner().invoke(app, ["migrate"], env={"RAG_TOP_K": "zero"})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "rag-runtime: invalid setting RAG_TOP_K: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]
