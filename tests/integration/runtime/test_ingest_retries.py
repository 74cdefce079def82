"""Ingestion against an embedding server that fails (a local server speaking OpenAI's API).

Covers: 429 and 5xx answers are transient (the document is retried with backoff and ends
ready); a 400 is permanent (the document fails at once, with a stable message); a document
that fails transiently every time is failed for good after `document_max_attempts`, the
attempts are stored, the sweeper does not queue it again; the retry endpoint and a re-send
start its attempts afresh.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from hack.fake_providers import (
    EMBED_DIMS,
    FakeProviders,
    start_fake_providers,
)
from tests.integration.runtime.helpers import api, wait_for_document

pytestmark = pytest.mark.integration
MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    state, server = start_fake_providers()
    yield state
    server.should_exit = True


@pytest.fixture
def client(database_url: str, fake: FakeProviders) -> Iterator[TestClient]:
    fake.embedding_failures.clear()
    fake.rejected_text = None
    with api(
        database_url=database_url,
        embedding_provider="openai",
        embedding_model="text-embedding-3-small",
        embedding_dimensions=EMBED_DIMS,
        openai_api_key="sk-test",
        openai_base_url=fake.openai_base_url,
        document_max_attempts=MAX_ATTEMPTS,
    ) as c:
        c.post("/api/v1/collections", json={"name": "flaky"})
        yield c


def _send(c: TestClient, text: str) -> dict[str, Any]:
    resp = c.post("/api/v1/collections/flaky/documents", json={"text": text})
    assert resp.status_code in (200, 202), resp.text
    body: dict[str, Any] = resp.json()
    return body


def _wait(c: TestClient, doc_id: str) -> dict[str, Any]:
    return wait_for_document(c, "flaky", doc_id, timeout=120)


def test_rate_limits_and_server_errors_are_retried(client: TestClient, fake: FakeProviders) -> None:
    fake.embedding_failures.extend([429, 503, 500, 502])  # more than the SDK retries itself
    doc = _wait(client, _send(client, "Glaciers carve valleys over many centuries.")["id"])
    assert doc["status"] == "ready", doc
    assert doc["error"] is None
    assert 2 <= doc["attempts"] <= MAX_ATTEMPTS


def test_a_refused_document_fails_at_once_and_a_resend_retries_it(
    client: TestClient, fake: FakeProviders
) -> None:
    fake.rejected_text = "refuse-me"
    sent = _send(client, "Text the provider will refuse-me for.")
    doc = _wait(client, sent["id"])
    assert doc["status"] == "failed"
    assert doc["error"] == "the embedding provider refused the input (HTTP 400)"
    assert doc["attempts"] == 1
    fake.rejected_text = None
    again = client.post(
        "/api/v1/collections/flaky/documents",
        json={"text": "Text the provider will refuse-me for."},
    )
    assert again.status_code == 202
    assert again.json()["id"] == sent["id"]
    assert _wait(client, sent["id"])["status"] == "ready"


def test_a_poison_document_stops_after_its_attempts_and_the_retry_endpoint_restarts_it(
    client: TestClient, fake: FakeProviders, database_url: str
) -> None:
    fake.rejected_text, fake.rejected_status = "poison-pill", 500
    try:
        doc_id = _send(client, "A poison-pill document the server always fails on.")["id"]
        doc = _wait(client, doc_id)
    finally:
        fake.rejected_text, fake.rejected_status = None, 400
    assert doc["status"] == "failed"
    assert doc["attempts"] == MAX_ATTEMPTS
    assert doc["error"] == (
        f"gave up after {MAX_ATTEMPTS} attempts (last: embedding provider error (HTTP 500))"
    )
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    pending = functools.partial(store.pending_documents, older_than_s=0, max_attempts=MAX_ATTEMPTS)
    assert client.portal is not None
    assert doc_id not in {str(d) for d in client.portal.call(pending)}
    retried = client.post(f"/api/v1/collections/flaky/documents/{doc_id}/retry")
    assert retried.status_code == 202
    assert retried.json()["attempts"] == 0
    doc = _wait(client, doc_id)
    assert (doc["status"], doc["attempts"]) == ("ready", 1)


def test_the_sweeper_fails_an_interrupted_document_out_of_attempts(
    client: TestClient, database_url: str
) -> None:
    doc_id = _send(client, "Interrupted again and again, say by a worker that is killed.")["id"]
    assert _wait(client, doc_id)["status"] == "ready"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE documents SET status = 'processing', attempts = %s WHERE id = %s",
            (MAX_ATTEMPTS, doc_id),
        )
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    pending = functools.partial(store.pending_documents, older_than_s=0, max_attempts=MAX_ATTEMPTS)
    assert client.portal is not None
    assert doc_id not in {str(d) for d in client.portal.call(pending)}
    doc = client.get(f"/api/v1/collections/flaky/documents/{doc_id}").json()
    assert doc["status"] == "failed"
    assert doc["error"] == f"gave up after {MAX_ATTEMPTS} attempts"
