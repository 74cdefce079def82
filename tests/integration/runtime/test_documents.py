"""Collections and documents through the API, against a real Postgres (inline ingestion).

Covers: collection create/list/get/delete; documents from JSON text and from uploads (txt,
md, html, pdf); ingestion status; paging; idempotent re-sends; identical text under another
title or metadata kept as a document of its own that names the earlier one (`duplicate_of`);
retrying failed documents (one, every failed one of a collection, or by re-sending them);
delete removing chunks and vectors; and the bad-input statuses (404, 409, 413, 415, 422
naming the field).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.runtime.helpers import api, wait_for_document

pytestmark = pytest.mark.integration


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (enough for a text extractor)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    with api(database_url=database_url, max_document_bytes=20_000) as c:
        assert c.post("/api/v1/collections", json={"name": "docs"}).status_code == 201
        yield c


def test_collection_records_model_and_dimension(client: TestClient) -> None:
    body = client.get("/api/v1/collections/docs").json()
    assert body["embedding_model"] == "all-MiniLM-L6-v2"
    assert body["embedding_dimensions"] == 384
    assert "docs" in [c["name"] for c in client.get("/api/v1/collections").json()]


def test_duplicate_collection_is_a_conflict(client: TestClient) -> None:
    assert client.post("/api/v1/collections", json={"name": "docs"}).status_code == 409


def test_json_document_is_queued_then_ready_with_chunks(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/collections/docs/documents",
        json={
            "text": "Photosynthesis turns light into chemical energy.",
            "title": "plants",
            "metadata": {"topic": "biology"},
        },
    )
    assert resp.status_code == 202
    assert resp.json()["status"] in ("queued", "processing", "ready")
    doc = wait_for_document(client, "docs", resp.json()["id"])
    assert doc["status"] == "ready"
    assert doc["chunks"] == 1
    assert doc["metadata"] == {"topic": "biology"}


def test_identical_content_is_idempotent(client: TestClient) -> None:
    body = {"text": "Identical content is stored once.", "title": "once"}
    first = client.post("/api/v1/collections/docs/documents", json=body)
    second = client.post("/api/v1/collections/docs/documents", json=body)
    assert first.status_code == 202
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["duplicate_of"] is None


def test_identical_text_under_another_id_is_a_document_of_its_own(client: TestClient) -> None:
    """Two records of a corpus with the same text: each keeps its metadata and is found."""
    text = "Tardigrades survive the vacuum of space by drying out."
    first = client.post(
        "/api/v1/collections/docs/documents",
        json={"text": text, "title": "t1", "metadata": {"corpus_id": "t1"}},
    )
    second = client.post(
        "/api/v1/collections/docs/documents",
        json={"text": text, "title": "t2", "metadata": {"corpus_id": "t2"}},
    )
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["duplicate_of"] == first.json()["id"]
    assert second.json()["metadata"] == {"corpus_id": "t2"}
    for doc in (first.json(), second.json()):
        assert wait_for_document(client, "docs", doc["id"])["status"] == "ready"
    got = client.get(f"/api/v1/collections/docs/documents/{second.json()['id']}").json()
    assert got["duplicate_of"] == first.json()["id"]
    assert (
        client.get(f"/api/v1/collections/docs/documents/{first.json()['id']}").json()[
            "duplicate_of"
        ]
        is None
    )
    hits = client.post(
        "/api/v1/search",
        json={"collection": "docs", "query": "tardigrades in space", "strategy": "keyword"},
    ).json()["results"]
    assert {h["metadata"].get("corpus_id") for h in hits[:2]} == {"t1", "t2"}
    again = client.post(
        "/api/v1/collections/docs/documents",
        json={"text": text, "title": "t2", "metadata": {"corpus_id": "t2"}},
    )
    assert again.status_code == 200
    assert again.json()["id"] == second.json()["id"]


@dataclass
class Mislabelled:
    """A collection whose recorded embedding model is not the one this runtime runs, so
    ingestion into it fails, until `relabel()` fixes the record."""

    name: str
    database_url: str

    def label(self, model: str) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE collections SET embedding_model = %s WHERE name = %s", (model, self.name)
            )

    def relabel(self) -> None:
        self.label("all-MiniLM-L6-v2")


@pytest.fixture
def mislabelled(client: TestClient, database_url: str) -> Iterator[Mislabelled]:
    collection = Mislabelled(f"mislabelled-{uuid.uuid4().hex[:8]}", database_url)
    assert client.post("/api/v1/collections", json={"name": collection.name}).status_code == 201
    collection.label("another-model")
    yield collection
    client.delete(f"/api/v1/collections/{collection.name}")


def _failed_document(client: TestClient, collection: str, text: str) -> dict[str, Any]:
    resp = client.post(f"/api/v1/collections/{collection}/documents", json={"text": text})
    assert resp.status_code == 202, resp.text
    doc = wait_for_document(client, collection, resp.json()["id"])
    assert doc["status"] == "failed"
    assert "another-model" in doc["error"]
    return doc


def test_a_failed_document_is_retried_once_the_cause_is_gone(
    client: TestClient, mislabelled: Mislabelled
) -> None:
    name = mislabelled.name
    doc = _failed_document(client, name, "Lichens are fungi living with algae.")
    mislabelled.relabel()
    resp = client.post(f"/api/v1/collections/{name}/documents/{doc['id']}/retry")
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] in ("queued", "processing", "ready")
    assert resp.json()["error"] is None
    ready = wait_for_document(client, name, doc["id"])
    assert ready["status"] == "ready"
    assert ready["chunks"] == 1
    again = client.post(f"/api/v1/collections/{name}/documents/{doc['id']}/retry")
    assert again.status_code == 409
    assert "ready" in again.json()["detail"]
    missing = client.post(f"/api/v1/collections/{name}/documents/{uuid.uuid4()}/retry")
    assert missing.status_code == 404


def test_every_failed_document_of_a_collection_is_retried_at_once(
    client: TestClient, mislabelled: Mislabelled
) -> None:
    name = mislabelled.name
    failed = [_failed_document(client, name, f"Failed document number {i}.") for i in range(3)]
    mislabelled.relabel()
    resp = client.post(f"/api/v1/collections/{name}/documents/retry")
    assert resp.status_code == 202
    assert resp.json()["requeued"] == 3
    assert set(resp.json()["documents"]) == {d["id"] for d in failed}
    for doc in failed:
        assert wait_for_document(client, name, doc["id"])["status"] == "ready"
    assert client.post(f"/api/v1/collections/{name}/documents/retry").json()["requeued"] == 0


def test_resending_a_failed_document_queues_it_again(
    client: TestClient, mislabelled: Mislabelled
) -> None:
    name = mislabelled.name
    text = "Mycorrhizae link the roots of trees."
    doc = _failed_document(client, name, text)
    mislabelled.relabel()
    resp = client.post(f"/api/v1/collections/{name}/documents", json={"text": text})
    assert resp.status_code == 202
    assert resp.json()["id"] == doc["id"]
    assert resp.json()["status"] in ("queued", "processing", "ready")
    assert wait_for_document(client, name, doc["id"])["status"] == "ready"


@pytest.mark.parametrize(
    ("filename", "content_type", "data", "needle"),
    [
        ("notes.txt", "text/plain", b"Plain text about glaciers.", "glaciers"),
        ("readme.md", "text/markdown", b"# Volcanoes\n\nMagma rises.", "Magma"),
        (
            "page.html",
            "text/html",
            b"<html><head><title>Tides</title><script>var x=1;</script></head>"
            b"<body><p>The moon pulls the oceans.</p></body></html>",
            "moon pulls",
        ),
        ("paper.pdf", "application/pdf", minimal_pdf("Comets have icy nuclei."), "icy nuclei"),
    ],
)
def test_uploaded_files_are_extracted_and_ingested(
    client: TestClient,
    database_url: str,
    filename: str,
    content_type: str,
    data: bytes,
    needle: str,
) -> None:
    resp = client.post(
        "/api/v1/collections/docs/documents/upload",
        files={"file": (filename, data, content_type)},
        data={"metadata": '{"kind": "upload"}'},
    )
    assert resp.status_code == 202, resp.text
    doc = wait_for_document(client, "docs", resp.json()["id"])
    assert doc["status"] == "ready"
    assert doc["content_type"] == content_type
    with psycopg.connect(database_url) as conn:
        texts = [
            r[0]
            for r in conn.execute("SELECT text FROM chunks WHERE document_id = %s", (doc["id"],))
        ]
    assert any(needle in t for t in texts)
    assert not any("var x" in t for t in texts)


@pytest.mark.parametrize("field", ["metadata", "title", "file"])
def test_a_form_field_sent_twice_is_refused_naming_it(client: TestClient, field: str) -> None:
    parts: list[tuple[str, tuple[str | None, bytes, str | None]]] = [
        ("file", ("a.txt", b"Glaciers carve valleys.", "text/plain")),
        ("title", (None, b"Glaciers", None)),
        ("metadata", (None, b'{"kind": "upload"}', None)),
    ]
    parts += [p for p in parts if p[0] == field]
    resp = client.post("/api/v1/collections/docs/documents/upload", files=parts)
    assert resp.status_code == 422, resp.text
    assert resp.json()["fields"] == [field]
    assert resp.json()["message"] == f"{field}: given 2 times; send it once"


def test_html_title_becomes_document_title(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/collections/docs/documents/upload",
        files={
            "file": ("t.html", b"<title>Rivers</title><p>Water flows downhill.</p>", "text/html")
        },
    )
    assert resp.json()["title"] == "Rivers"


def test_documents_are_listed_in_pages(client: TestClient) -> None:
    for i in range(3):
        client.post("/api/v1/collections/docs/documents", json={"text": f"Paging document {i}."})
    first = client.get("/api/v1/collections/docs/documents", params={"limit": 2}).json()
    second = client.get(
        "/api/v1/collections/docs/documents", params={"limit": 2, "offset": 2}
    ).json()
    assert len(first["items"]) == 2
    assert first["total"] >= 3
    assert {d["id"] for d in first["items"]}.isdisjoint({d["id"] for d in second["items"]})


def test_delete_removes_document_chunks_and_vectors(client: TestClient, database_url: str) -> None:
    resp = client.post(
        "/api/v1/collections/docs/documents", json={"text": "A document about to be deleted. " * 40}
    )
    doc = wait_for_document(client, "docs", resp.json()["id"])
    with psycopg.connect(database_url) as conn:
        before = conn.execute(
            "SELECT count(*) FROM chunks WHERE document_id = %s", (doc["id"],)
        ).fetchone()
        assert before is not None
        assert before[0] >= 1
    assert client.delete(f"/api/v1/collections/docs/documents/{doc['id']}").status_code == 204
    with psycopg.connect(database_url) as conn:
        after = conn.execute(
            "SELECT count(*) FROM chunks WHERE document_id = %s", (doc["id"],)
        ).fetchone()
    assert after == (0,)
    assert client.get(f"/api/v1/collections/docs/documents/{doc['id']}").status_code == 404


def test_long_documents_are_chunked_within_the_token_limit(client: TestClient) -> None:
    text = " ".join(f"Sentence number {i} talks about enzymes and catalysis." for i in range(200))
    resp = client.post("/api/v1/collections/docs/documents", json={"text": text})
    doc = wait_for_document(client, "docs", resp.json()["id"])
    assert doc["chunks"] > 5


def test_unknown_collection_and_document_are_404(client: TestClient) -> None:
    assert client.get("/api/v1/collections/nope").status_code == 404
    resp = client.post("/api/v1/collections/nope/documents", json={"text": "x"})
    assert resp.status_code == 404
    missing = uuid.uuid4()
    assert client.get(f"/api/v1/collections/docs/documents/{missing}").status_code == 404
    assert client.delete(f"/api/v1/collections/docs/documents/{missing}").status_code == 404


def test_oversized_document_is_413(client: TestClient) -> None:
    resp = client.post("/api/v1/collections/docs/documents", json={"text": "x" * 20_001})
    assert resp.status_code == 413
    upload = client.post(
        "/api/v1/collections/docs/documents/upload",
        files={"file": ("big.txt", b"y" * 20_001, "text/plain")},
    )
    assert upload.status_code == 413


def test_empty_document_is_rejected_naming_the_field(client: TestClient) -> None:
    resp = client.post("/api/v1/collections/docs/documents", json={"text": "   "})
    assert resp.status_code == 422
    assert resp.json()["fields"] == ["text"]  # every 422 has this one shape
    empty = client.post(
        "/api/v1/collections/docs/documents/upload", files={"file": ("e.txt", b"  ", "text/plain")}
    )
    assert empty.status_code == 422
    assert empty.json()["fields"] == ["file"]


@pytest.mark.parametrize(
    "body",
    [
        {"text": "fine", "metadata": {"k": "nul\u0000here"}},
        {"text": "fine", "metadata": {"lone\ud800": 1}},
        {"text": "nul\u0000here"},
        {"text": "fine", "title": "\udfff"},
    ],
)
def test_text_postgres_cannot_store_is_422_not_500(
    client: TestClient, body: dict[str, object]
) -> None:
    resp = client.post(
        "/api/v1/collections/docs/documents",
        content=json.dumps(body).encode(),  # \u escapes: lone surrogates travel as JSON has them
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    assert "NUL" in resp.json()["message"] or "surrogate" in resp.json()["message"]


def test_unsupported_type_is_415(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/collections/docs/documents/upload",
        files={"file": ("sheet.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")},
    )
    assert resp.status_code == 415


def test_malformed_request_is_422_naming_the_field(client: TestClient) -> None:
    resp = client.post("/api/v1/collections/docs/documents", json={"title": "no text"})
    assert resp.status_code == 422
    assert "text" in resp.json()["fields"]
    bad_page = client.get("/api/v1/collections/docs/documents", params={"limit": 0})
    assert bad_page.status_code == 422
    assert "limit" in bad_page.json()["fields"]


def test_collection_delete_removes_its_documents(client: TestClient) -> None:
    client.post("/api/v1/collections", json={"name": "temp"})
    doc = client.post("/api/v1/collections/temp/documents", json={"text": "short lived"}).json()
    wait_for_document(client, "temp", doc["id"])
    assert client.delete("/api/v1/collections/temp").status_code == 204
    assert client.get("/api/v1/collections/temp").status_code == 404
