"""The `rag-runtime` CLI in process: ingest files and folders with a progress bar, query a
collection, retry failed documents (all of a collection, or by id; ingesting a failed file
again retries it too), and one clear line for a bad setting or a bad document id.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
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


def _label(database_url: str, collection: str, model: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE collections SET embedding_model = %s WHERE name = %s", (model, collection)
        )


def _summary(out: str) -> dict[str, object]:
    summary: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return summary


def test_retry_ingests_the_failed_documents_once_the_cause_is_gone(
    database_url: str, corpus: Path
) -> None:
    assert invoke(database_url, "ingest", str(corpus / "tea.txt"), "-c", "relabel")[0] == 0
    _label(database_url, "relabel", "another-model")  # ingestion into it fails from now on
    code, out, err = invoke(database_url, "ingest", str(corpus / "cocoa.html"), "-c", "relabel")
    assert code == 1
    assert _summary(out)["failed"] == 1
    code, out, err = invoke(database_url, "retry", "-c", "relabel")
    assert code == 1  # the cause is still there
    assert _summary(out) == {
        "collection": "relabel", "requeued": 1, "ready": 0, "failed": 1, "skipped": 0
    }  # fmt: skip
    assert "another-model" in err
    _label(database_url, "relabel", "all-MiniLM-L6-v2")
    code, out, err = invoke(database_url, "retry", "-c", "relabel")
    assert code == 0, err
    assert _summary(out)["ready"] == 1
    code, out, _ = invoke(database_url, "retry", "-c", "relabel")
    assert _summary(out)["requeued"] == 0


def test_ingesting_a_failed_file_again_retries_it(
    database_url: str, corpus: Path, tmp_path: Path
) -> None:
    coffee = str(corpus / "sub" / "coffee.md")
    assert invoke(database_url, "ingest", coffee, "-c", "again")[0] == 0
    _label(database_url, "again", "another-model")
    (tmp_path / "decaf.md").write_text("# Decaf\n\nDecaffeinated coffee keeps flavour.")
    decaf = str(tmp_path / "decaf.md")
    assert invoke(database_url, "ingest", decaf, "-c", "again")[0] == 1
    _label(database_url, "again", "all-MiniLM-L6-v2")
    code, out, err = invoke(database_url, "ingest", decaf, "-c", "again")
    assert code == 0, err
    assert _summary(out)["ready"] == 1


def test_retry_by_id_names_what_it_skipped(database_url: str) -> None:
    code, _, err = invoke(database_url, "retry", "not-an-id", "-c", "relabel")
    assert code == 2
    assert err.strip().splitlines() == ["rag-runtime: not a document id: 'not-an-id'"]
    unknown = "00000000-0000-0000-0000-000000000001"
    code, out, err = invoke(database_url, "retry", unknown, "-c", "relabel")
    assert code == 0
    assert _summary(out)["skipped"] == 1
    assert f"{unknown}: not a failed document of 'relabel'" in err


def test_bad_setting_stops_with_one_line() -> None:
    result = CliRunner().invoke(app, ["migrate"], env={"RAG_TOP_K": "zero"})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "rag-runtime: invalid setting RAG_TOP_K: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]
