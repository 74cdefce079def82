"""Answers through `POST /api/v1/query`: extractive (no provider), OpenAI and Anthropic.

Provider paths run against local servers that speak each provider's HTTP API (see
fake_providers.py), through the official SDKs with `base_url` pointed at them. Covers JSON and
server-sent-event answers, citations that point to returned chunks (invalid ones dropped), the
key sent to the provider, OpenAI embeddings as the embedding provider, and a provider outage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hack.fake_providers import (
    EMBED_DIMS,
    FakeProviders,
    start_fake_providers,
)
from tests.integration.runtime.helpers import add_documents, api, free_port

pytestmark = pytest.mark.integration

DOCS = [
    {
        "title": "bees",
        "text": "Honey bees communicate the direction of flowers with a waggle dance.",
    },
    {"title": "ants", "text": "Ants follow pheromone trails laid by foragers to reach food."},
    {"title": "birds", "text": "Migratory birds navigate using the earth's magnetic field."},
]
QUESTION = {"collection": "insects", "query": "How do bees tell others where flowers are?"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    state, server = start_fake_providers()
    yield state
    server.should_exit = True


@pytest.fixture(scope="module")
def seeded(database_url: str) -> str:
    with api(database_url=database_url) as c:
        add_documents(c, "insects", DOCS)
    return database_url


def read_sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def check_citations(body: dict[str, Any]) -> None:
    ids = [h["chunk_id"] for h in body["results"]]
    assert body["citations"], body
    for citation in body["citations"]:
        assert ids[citation["index"] - 1] == citation["chunk_id"]


def test_extractive_answer_without_a_provider(seeded: str) -> None:
    with api(database_url=seeded) as c:
        body = c.post("/api/v1/query", json=QUESTION).json()
    assert body["provider"] == "extractive"
    assert "waggle dance" in body["answer"]
    check_citations(body)
    assert body["results"][body["citations"][0]["index"] - 1]["document_title"] == "bees"


def test_extractive_answer_streams_as_server_sent_events(seeded: str) -> None:
    with api(database_url=seeded) as c:
        resp = c.post("/api/v1/query", json={**QUESTION, "stream": True})
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = read_sse(resp.text)
    names = [name for name, _ in events]
    assert names[0] == "results"
    assert names[-1] == "done"
    assert "token" in names
    tokens = "".join(data["text"] for name, data in events if name == "token")
    assert tokens == events[-1][1]["answer"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_provider_answers_cite_returned_chunks(
    seeded: str, fake: FakeProviders, provider: str
) -> None:
    fake.requests.clear()
    with api(
        database_url=seeded,
        generation_provider=provider,
        generation_model="fake-model",
        openai_api_key="sk-test",
        openai_base_url=fake.openai_base_url,
        anthropic_api_key="ak-test",
        anthropic_base_url=fake.anthropic_base_url,
    ) as c:
        body = c.post("/api/v1/query", json=QUESTION).json()
        streamed = read_sse(c.post("/api/v1/query", json={**QUESTION, "stream": True}).text)
    assert body["provider"] == provider
    assert body["model"] == "fake-model"
    assert body["answer"].startswith("According to the passages")
    check_citations(body)
    assert [c["index"] for c in body["citations"]] == [1]  # [99] points nowhere: dropped
    done = streamed[-1]
    assert done[0] == "done"
    assert done[1]["answer"] == body["answer"]
    assert sum(1 for name, _ in streamed if name == "token") > 3
    sent = fake.requests[0]
    assert sent["body"]["model"] == "fake-model"
    if provider == "openai":
        assert sent["path"] == "/v1/chat/completions"
        assert sent["headers"]["authorization"] == "Bearer sk-test"
    else:
        assert sent["path"] == "/v1/messages"
        # Older SDKs send x-api-key, newer ones a Bearer token; either carries the key.
        headers = sent["headers"]
        assert "ak-test" in (headers.get("x-api-key") or headers.get("authorization", ""))
        assert "anthropic-version" in headers
    assert "waggle dance" in json.dumps(sent["body"])


def test_provider_outage_is_503(seeded: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with api(
        database_url=seeded, generation_provider="openai", openai_api_key="sk", openai_base_url=dead
    ) as c:
        resp = c.post("/api/v1/query", json=QUESTION)
    assert resp.status_code == 503
    assert "unreachable" in resp.json()["detail"]


def test_openai_embeddings_as_the_embedding_provider(
    database_url: str, fake: FakeProviders
) -> None:
    with api(
        database_url=database_url,
        embedding_provider="openai",
        embedding_model="text-embedding-3-small",
        embedding_dimensions=EMBED_DIMS,
        openai_api_key="sk-test",
        openai_base_url=fake.openai_base_url,
    ) as c:
        add_documents(c, "openai-emb", DOCS)
        meta = c.get("/api/v1/collections/openai-emb").json()
        hits = c.post(
            "/api/v1/search",
            json={
                "collection": "openai-emb",
                "strategy": "vector",
                "query": "ants pheromone trails",
            },
        ).json()
        # A MiniLM collection cannot be searched with these embeddings.
        mismatch = c.post("/api/v1/search", json={**QUESTION, "strategy": "vector"})
    assert (meta["embedding_model"], meta["embedding_dimensions"]) == (
        "text-embedding-3-small",
        EMBED_DIMS,
    )
    assert hits["results"][0]["document_title"] == "ants"
    assert any(r["path"] == "/v1/embeddings" for r in fake.requests)
    assert mismatch.status_code == 409
