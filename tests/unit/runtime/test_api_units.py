"""Pieces of the API that need no services: API key parsing and access, upload type
detection, text extraction, citation parsing, the extractive answer, backoff and settings."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import ValidationError

from rag_runtime.app import check_access_settings
from rag_runtime.auth import KeyFormatError, KeyRing, Principal, parse_api_keys
from rag_runtime.errors import ConfigurationError, InvalidInputError, UnsupportedMediaTypeError
from rag_runtime.extract import detect_content_type, extract_text
from rag_runtime.generation import ExtractiveGenerator, build_prompt, citations_in
from rag_runtime.ingest import backoff_s
from rag_runtime.schemas import SearchHit
from rag_runtime.settings import Settings, env_names


def hit(i: int, text: str) -> SearchHit:
    return SearchHit(
        chunk_id=i,
        document_id=uuid.uuid4(),
        document_title=f"d{i}",
        ordinal=0,
        text=text,
        metadata={},
        score=1.0,
        evidence={},
    )


def test_api_keys_grant_all_or_listed_collections() -> None:
    keys = parse_api_keys(["admin", "t1:a, b", " t2 : c", "root:*"])
    assert keys == {
        "admin": None,
        "t1": frozenset({"a", "b"}),
        "t2": frozenset({"c"}),
        "root": None,
    }
    assert Principal("x", keys["t1"]).can_access("a")
    assert not Principal("x", keys["t1"]).can_access("c")
    assert Principal("x", None).can_access("anything")


@pytest.mark.parametrize("entry", ["k:", "k: , ", ":a", "", "   ", "k:bad name", "k:*x"])
def test_an_unreadable_key_entry_grants_nothing_and_stops_the_process(entry: str) -> None:
    with pytest.raises(KeyFormatError) as caught:
        parse_api_keys([entry])
    assert "entry 1" in str(caught.value)
    with pytest.raises(ValidationError, match="api_keys"):
        Settings(api_keys=["good", entry])


def test_errors_about_a_key_entry_never_show_the_key() -> None:
    for entries in (["s3cr3t-key:"], ["s3cr3t-key", "s3cr3t-key"], ["s3cr3t key"]):
        with pytest.raises(KeyFormatError) as caught:
            parse_api_keys(entries)
        assert "s3cr3t" not in str(caught.value)


def test_a_key_holding_colons_keeps_them_when_its_scope_is_written() -> None:
    assert parse_api_keys(["ab:cd:*", "x:y:z:col"]) == {
        "ab:cd": None,
        "x:y:z": frozenset({"col"}),
    }
    ring = KeyRing(parse_api_keys(["ab:cd:*"]))
    assert ring.identify("ab:cd") is not None
    assert ring.identify("ab") is None


def test_the_key_ring_finds_the_principal_of_a_token() -> None:
    ring = KeyRing(parse_api_keys(["admin", "t1:a"]))
    admin, tenant = ring.identify("admin"), ring.identify("t1")
    assert admin is not None
    assert admin.collections is None
    assert tenant is not None
    assert tenant.collections == frozenset({"a"})
    assert "t1" not in tenant.key_id
    assert ring.identify("t1:a") is None
    assert ring.identify("") is None
    assert ring.identify("\udcff") is None  # a lone surrogate is just a wrong key


def test_no_keys_means_no_api_unless_anonymous_is_asked_for() -> None:
    with pytest.raises(ConfigurationError, match="RAG_ALLOW_ANONYMOUS"):
        check_access_settings(Settings(api_keys=[]))
    with pytest.raises(ConfigurationError, match="choose one"):
        check_access_settings(Settings(api_keys=["k"], allow_anonymous=True))
    check_access_settings(Settings(allow_anonymous=True))
    check_access_settings(Settings(api_keys=["k"]))


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("a.txt", None, "text/plain"),
        ("a.MD", "application/octet-stream", "text/markdown"),
        ("x", "text/html; charset=utf-8", "text/html"),
        ("p.pdf", None, "application/pdf"),
    ],
)
def test_content_type_from_declared_type_or_extension(
    name: str, declared: str | None, expected: str
) -> None:
    assert detect_content_type(name, declared) == expected


def test_unsupported_type_names_the_accepted_ones() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="text/plain"):
        detect_content_type("a.docx", "application/msword")


def test_html_text_drops_scripts_and_styles() -> None:
    html = b"<style>p{}</style><p>Hello</p><script>evil()</script><p>World</p>"
    assert extract_text(html, "text/html") == "Hello\nWorld"


def test_an_unreadable_pdf_is_refused_with_a_stable_message() -> None:
    with pytest.raises(InvalidInputError) as caught:
        extract_text(b"%PDF-1.4 not really", "application/pdf")
    assert caught.value.message == "file: cannot read the PDF (damaged, encrypted or not a PDF)"
    assert caught.value.field == "file"


def test_citations_point_to_results_and_drop_unknown_markers() -> None:
    hits = [hit(10, "a"), hit(20, "b")]
    cited = citations_in("Yes [2], also [1] and [2] but not [3] or [0].", hits)
    assert [(c.index, c.chunk_id) for c in cited] == [(2, 20), (1, 10)]


def test_prompt_numbers_passages() -> None:
    prompt = build_prompt("q?", [hit(1, "alpha"), hit(2, "beta")])
    assert "[1] d1: alpha" in prompt
    assert "[2] d2: beta" in prompt
    assert prompt.endswith("Question: q?")


def test_extractive_answer_cites_matching_sentences() -> None:
    hits = [hit(1, "Cats sleep a lot. Dogs bark."), hit(2, "Birds sing at dawn.")]
    gen = ExtractiveGenerator()

    async def collect() -> str:
        return "".join([t async for t in gen.stream("when do birds sing", hits, 100)])

    answer = asyncio.run(collect())
    assert answer == "Birds sing at dawn. [2]"


def test_extractive_answer_without_matches_says_so() -> None:
    async def collect() -> str:
        return "".join([t async for t in ExtractiveGenerator().stream("zzz", [], 10)])

    assert "could not find" in asyncio.run(collect())


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_s(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_s(50) == 30.0


def test_settings_declare_their_env_names() -> None:
    names = env_names()
    assert {
        "RAG_DATABASE_URL",
        "RAG_REDIS_URL",
        "RAG_NEO4J_URI",
        "RAG_API_KEYS",
        "RAG_FUSION",
        "RAG_JOB_TIMEOUT_SECONDS",
    } <= names
    assert all(n.startswith("RAG_") for n in names)


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "0")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("RAG_TOP_K", "5")
    monkeypatch.setenv("RAG_API_KEYS", '["k1", "k2:a"]')
    assert Settings().api_keys == ["k1", "k2:a"]
