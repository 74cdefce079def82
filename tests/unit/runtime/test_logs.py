"""Log setup: RAG_LOG_FORMAT=json gives one JSON object per line; text stays readable.

Aspects covered: the JSON line's fields (time, level, logger, message, exception); the level
applies; text lines carry the level and logger.
"""

from __future__ import annotations

import json
import logging

import pytest

from rag_runtime.domain import LogFormat
from rag_runtime.logs import setup_logging


def test_json_format_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", LogFormat.JSON)
    logging.getLogger("rag_runtime.test").info("hello %s", "world")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("rag_runtime.test").exception("failed")
    lines = capsys.readouterr().err.strip().splitlines()
    first = json.loads(lines[0])
    assert first["level"] == "info"
    assert first["logger"] == "rag_runtime.test"
    assert first["message"] == "hello world"
    assert first["time"].endswith("+00:00")
    second = json.loads(lines[1])
    assert second["level"] == "error"
    assert "ValueError: boom" in second["exception"]
    assert len(lines) == 2


def test_level_filters_and_text_format_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("warning", LogFormat.TEXT)
    logging.getLogger("rag_runtime.test").info("hidden")
    logging.getLogger("rag_runtime.test").warning("shown")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "WARNING rag_runtime.test: shown" in err
