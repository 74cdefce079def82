"""Responses carry no internals: what went wrong inside stays in the logs.

Covers: `/api/v1/ready` (public) names each dependency's state but no host, port, user or
driver text when Redis and Neo4j are down; a document that failed ingestion carries a
stable message in `error`, not the raw exception (the provider's text, addresses, keys).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hack.fake_providers import (
    EMBED_DIMS,
    FakeProviders,
    start_fake_providers,
)
from tests.integration.runtime.helpers import api, free_port, wait_for_document

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    state, server = start_fake_providers()
    yield state
    server.should_exit = True


def test_readiness_names_states_not_hosts_or_errors(database_url: str) -> None:
    redis_port, neo4j_port = free_port(), free_port()
    with api(
        database_url=database_url,
        redis_url=f"redis://cacheuser:pw@127.0.0.1:{redis_port}/0",
        neo4j_uri=f"bolt://127.0.0.1:{neo4j_port}",
        neo4j_user="graphadmin",
    ) as c:
        resp = c.get("/api/v1/ready")
    assert resp.status_code == 200  # only optional dependencies are down
    checks = resp.json()["checks"]
    assert checks["cache"] == {"status": "down", "required": False}
    assert checks["graph"] == {"status": "down", "required": False}
    text = resp.text
    for secret in ("127.0.0.1", str(redis_port), str(neo4j_port), "cacheuser", "graphadmin"):
        assert secret not in text
    assert "reason" not in text


def test_a_failed_document_says_what_failed_without_the_raw_error(
    database_url: str, fake: FakeProviders
) -> None:
    fake.rejected_text = "forbidden-words"
    with api(
        database_url=database_url,
        embedding_provider="openai",
        embedding_model="text-embedding-3-small",
        embedding_dimensions=EMBED_DIMS,
        openai_api_key="sk-test",
        openai_base_url=fake.openai_base_url,
    ) as c:
        c.post("/api/v1/collections", json={"name": "safe"})
        resp = c.post(
            "/api/v1/collections/safe/documents", json={"text": "these are forbidden-words"}
        )
        doc = wait_for_document(c, "safe", resp.json()["id"])
    assert doc["status"] == "failed"
    error = doc["error"]
    assert error
    for raw in ("sk-internal", "Error code", "BadRequestError", "127.0.0.1", "{"):
        assert raw not in error
