"""The runtime serves only an embedding model it really loads.

Covers: another model name than the bundled all-MiniLM-L6-v2 without a model path, a model
path that is no directory or no model, and a dimension other than the loaded model's each
stop `rag-runtime serve` (and the worker) with one line before anything listens; a model
path that is given is the model that runs, and collections are labelled with its name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_runtime.cli import app
from rag_runtime.embedding import bundled_model_path, sentence_transformer_embedder
from tests.integration.runtime.helpers import api, settings

pytestmark = pytest.mark.integration


def stderr_lines(*args: str, **env: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stderr.strip().splitlines()


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled weights under another name, with 128 tokens per text instead of 256: a
    model that differs from the bundled one in a way the runtime shows (`max_tokens`)."""
    path = tmp_path_factory.mktemp("models") / "minilm-128"
    shutil.copytree(bundled_model_path(), path)
    config = path / "sentence_bert_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "max_seq_length": 128}))
    return path


def test_another_model_without_weights_stops_with_one_line() -> None:
    code, lines = stderr_lines("serve", RAG_EMBEDDING_MODEL="all-mpnet-base-v2")
    assert code == 2
    assert lines == [
        "rag-runtime: invalid settings: RAG_EMBEDDING_MODEL='all-mpnet-base-v2' needs "
        "RAG_EMBEDDING_MODEL_PATH (a sentence-transformers model directory): only "
        "all-MiniLM-L6-v2 is bundled"
    ]


def test_another_dimension_than_the_models_stops_with_one_line() -> None:
    for command in ("serve", "worker"):
        code, lines = stderr_lines(
            command, RAG_EMBEDDING_DIMENSIONS="768", RAG_REDIS_URL="redis://127.0.0.1:1"
        )
        assert code == 2
        assert lines == [
            "rag-runtime: RAG_EMBEDDING_DIMENSIONS=768, but all-MiniLM-L6-v2 (bundled) makes "
            "384-dimensional embeddings"
        ]


def test_a_model_path_that_is_no_model_stops_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    code, lines = stderr_lines(
        "serve", RAG_EMBEDDING_MODEL="mine", RAG_EMBEDDING_MODEL_PATH=str(missing)
    )
    assert code == 2
    assert lines == [f"rag-runtime: RAG_EMBEDDING_MODEL_PATH={missing}: no such directory"]
    code, lines = stderr_lines(
        "serve", RAG_EMBEDDING_MODEL="mine", RAG_EMBEDDING_MODEL_PATH=str(tmp_path)
    )
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(
        f"rag-runtime: RAG_EMBEDDING_MODEL_PATH={tmp_path}: not a sentence-transformers model"
    )


def test_the_model_at_the_given_path_is_the_one_that_runs(
    model_copy: Path, database_url: str
) -> None:
    chosen = settings(embedding_model="minilm-128", embedding_model_path=model_copy)
    embedder = sentence_transformer_embedder(chosen)
    assert embedder.max_tokens == 128  # the copy's setting, not the bundled 256
    assert sentence_transformer_embedder(settings()).max_tokens == 256
    with api(
        database_url=database_url, embedding_model="minilm-128", embedding_model_path=model_copy
    ) as client:
        created = client.post("/api/v1/collections", json={"name": "own-model"}).json()
        ready = client.get("/api/v1/ready").json()["checks"]["embedding_model"]
    assert created["embedding_model"] == "minilm-128"
    assert ready["model"] == "minilm-128"


@pytest.mark.parametrize("keys", [None, "[]"])
def test_serve_without_keys_stops_unless_anonymous_is_asked_for(keys: str | None) -> None:
    env = {"RAG_API_KEYS": keys} if keys is not None else {}
    code, lines = stderr_lines("serve", **env)
    assert code == 2
    assert lines == [
        "rag-runtime: no RAG_API_KEYS: set API keys, or RAG_ALLOW_ANONYMOUS=true to serve "
        "without them"
    ]


def test_serve_with_an_unreadable_key_entry_stops_with_one_line() -> None:
    code, lines = stderr_lines("serve", RAG_API_KEYS='["admin", "k:"]')
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("rag-runtime: invalid setting RAG_API_KEYS: ")
    assert "entry 2: no collections after ':'" in lines[0]
