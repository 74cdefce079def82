"""Collections and documents through the API, against a real Postgres (inline ingestion).

Covers: collection create/list/get/delete; documents from JSON text and from uploads (txt,
md, html, pdf); ingestion status; paging; idempotent re-sends; delete removing chunks and
vectors; and the bad-input statuses (404, 409, 413, 415, 422 naming the field).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
    assert resp.json()["field"] == "text"


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
