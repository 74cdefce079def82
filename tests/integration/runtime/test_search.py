"""Retrieval through `POST /api/v1/search` on real Postgres + pgvector and Redis.

Covers: vector, keyword (BM25 on full text) and hybrid (RRF and weighted) strategies; the
evidence each returns; metadata filters; top-k; the similarity threshold; filtered HNSW
searches that still fill top-k (iterative scans); cached results and their invalidation when
the collection changes or a document is deleted; and a clear error for a collection built with
another embedding model.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from hack.services import RedisService
from tests.integration.runtime.helpers import WorkerThread, add_documents, api, wait_for_document

pytestmark = pytest.mark.integration

CORPUS = [
    {
        "title": "heart",
        "text": "Aspirin lowers the risk of heart attacks and strokes.",
        "metadata": {"field": "medicine", "year": 2019},
    },
    {
        "title": "insulin",
        "text": "Insulin regulates blood glucose; diabetes follows when it fails.",
        "metadata": {"field": "medicine", "year": 2021},
    },
    {
        "title": "volcano",
        "text": "Volcanic eruptions eject ash and lava from the mantle.",
        "metadata": {"field": "geology", "year": 2020},
    },
    {
        "title": "glacier",
        "text": "Glaciers carve U-shaped valleys as they slowly move downhill.",
        "metadata": {"field": "geology", "year": 2018},
    },
    {
        "title": "python",
        "text": "Python uses indentation to delimit blocks of code.",
        "metadata": {"field": "computing", "year": 2022},
    },
    {
        "title": "postgres",
        "text": "PostgreSQL indexes with GIN support full-text search.",
        "metadata": {"field": "computing", "year": 2023},
    },
    {
        "title": "zyxase",
        "text": "The enzyme zyxase was isolated from deep-sea bacteria.",
        "metadata": {"field": "biology", "year": 2024},
    },
]


@pytest.fixture(scope="module")
def client(database_url: str, redis: RedisService) -> Iterator[TestClient]:
    with (
        api(database_url=database_url, redis_url=redis.url) as c,
        WorkerThread(database_url=database_url, redis_url=redis.url),
    ):
        yield c


@pytest.fixture(scope="module")
def inline_client(database_url: str) -> Iterator[TestClient]:
    """Same database, no Redis: ingestion runs in the API process."""
    with api(database_url=database_url) as c:
        add_documents(c, "science", CORPUS)
        yield c


def search(client: TestClient, **body: object) -> dict:  # type: ignore[type-arg]
    resp = client.post("/api/v1/search", json={"collection": "science", **body})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def titles(result: dict) -> list[str]:  # type: ignore[type-arg]
    return [h["document_title"] for h in result["results"]]


@pytest.mark.parametrize("strategy", ["vector", "keyword", "hybrid"])
def test_each_strategy_finds_the_relevant_document_first(
    inline_client: TestClient, strategy: str
) -> None:
    result = search(inline_client, query="aspirin and heart attack risk", strategy=strategy)
    assert result["strategy"] == strategy
    assert titles(result)[0] == "heart"


def test_vector_evidence_is_cosine_similarity(inline_client: TestClient) -> None:
    hit = search(inline_client, query="blood sugar hormone", strategy="vector")["results"][0]
    assert hit["document_title"] == "insulin"
    assert hit["evidence"]["cosine_similarity"] == pytest.approx(hit["score"], abs=1e-5)
    assert set(hit) >= {"chunk_id", "document_id", "text", "metadata", "score"}


def test_keyword_uses_stemming_and_reports_matched_terms(inline_client: TestClient) -> None:
    hit = search(inline_client, query="erupting volcanoes", strategy="keyword")["results"][0]
    assert hit["document_title"] == "volcano"
    assert "erupt" in hit["evidence"]["matched_terms"]


def test_keyword_ranks_rare_terms_above_common_ones(inline_client: TestClient) -> None:
    result = search(inline_client, query="zyxase enzyme from the sea", strategy="keyword")
    assert titles(result)[0] == "zyxase"


@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_hybrid_fusion_is_choosable_and_explained(inline_client: TestClient, fusion: str) -> None:
    hit = search(inline_client, query="glacier valleys", strategy="hybrid", fusion=fusion)[
        "results"
    ][0]
    assert hit["document_title"] == "glacier"
    assert hit["evidence"]["fusion"] == fusion
    assert {"vector", "keyword"} <= set(hit["evidence"])


def test_metadata_filters_restrict_results(inline_client: TestClient) -> None:
    result = search(
        inline_client, query="science", strategy="vector", filters={"field": "geology"}, top_k=10
    )
    assert set(titles(result)) == {"volcano", "glacier"}
    result = search(
        inline_client,
        query="science",
        strategy="hybrid",
        filters={"year": {"$in": [2022, 2023]}},
        top_k=10,
    )
    assert set(titles(result)) == {"python", "postgres"}


def test_top_k_and_threshold(inline_client: TestClient) -> None:
    assert len(search(inline_client, query="science", strategy="vector", top_k=3)["results"]) == 3
    strict = search(
        inline_client,
        query="aspirin heart attack",
        strategy="vector",
        similarity_threshold=0.5,
        top_k=10,
    )
    assert titles(strict) == ["heart"]
    assert all(h["score"] >= 0.5 for h in strict["results"])


def test_filtered_hnsw_search_still_returns_top_k(database_url: str) -> None:
    """ef_search=10 finds about 10 candidates; iterative scans keep going past the filter."""
    docs = [
        {
            "text": f"Note {i} about topic {i % 17} and item {i * 7}.",
            "metadata": {"bucket": "rare" if i % 20 == 0 else "common"},
        }
        for i in range(240)
    ]
    with api(database_url=database_url, hnsw_ef_search=10) as c:
        c.post("/api/v1/collections", json={"name": "many"})
        add_documents(c, "many", docs)
        resp = c.post(
            "/api/v1/search",
            json={
                "collection": "many",
                "query": "note about topic",
                "strategy": "vector",
                "top_k": 10,
                "filters": {"bucket": "rare"},
            },
        )
        hits = resp.json()["results"]
    assert len(hits) == 10
    assert all(h["metadata"]["bucket"] == "rare" for h in hits)


def test_results_are_cached_and_invalidated_on_change(client: TestClient) -> None:
    add_documents(client, "cached", [{"text": "Comets are icy bodies of the outer solar system."}])
    body = {"collection": "cached", "query": "icy comets", "strategy": "hybrid"}
    first = client.post("/api/v1/search", json=body).json()
    second = client.post("/api/v1/search", json=body).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["results"] == second["results"]
    new = add_documents(client, "cached", [{"text": "Asteroids are rocky bodies near Mars."}])
    third = client.post("/api/v1/search", json=body).json()
    assert third["cached"] is False
    assert len(third["results"]) == 2
    assert client.delete(f"/api/v1/collections/cached/documents/{new[0]}").status_code == 204
    fourth = client.post("/api/v1/search", json=body).json()
    assert fourth["cached"] is False
    assert len(fourth["results"]) == 1


def test_collection_with_another_model_is_a_clear_error(
    client: TestClient, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO collections (name, embedding_model, embedding_dimensions) "
            "VALUES ('legacy', 'text-embedding-3-small', 1536)"
        )
    resp = client.post(
        "/api/v1/search", json={"collection": "legacy", "query": "x", "strategy": "vector"}
    )
    assert resp.status_code == 409
    assert "text-embedding-3-small" in resp.json()["detail"]
    assert "all-MiniLM-L6-v2" in resp.json()["detail"]
    doc = client.post("/api/v1/collections/legacy/documents", json={"text": "some text"}).json()
    assert doc["status"] == "queued"


def test_mismatched_collection_fails_ingestion_with_the_reason(database_url: str) -> None:
    with api(database_url=database_url) as c:
        docs = c.get("/api/v1/collections/legacy/documents").json()["items"]
        failed = wait_for_document(c, "legacy", docs[0]["id"])
    assert failed["status"] == "failed"
    assert "1536" in failed["error"]
