"""`make bench-retrieval_quality` ingests any BEIR-shaped dataset to the end and says what
it did with the records the service does not take as they are.

Covers: two records with identical text both become searchable documents (the second
reported with the record it duplicates, and both found again by their own ids); a record the
service rejects (empty text) is reported as skipped with the reason instead of stopping or
stalling the run.
"""

from __future__ import annotations

import httpx
import pytest

from benchmarks._runtime import Beir, api_server
from benchmarks.retrieval_quality import ingest, run_queries

pytestmark = pytest.mark.integration

SAME = "Sea otters use stones as tools to crack open shellfish."


def test_duplicate_and_empty_records_are_reported_and_the_run_finishes(
    database_url: str,
) -> None:
    data = Beir(
        corpus={
            "first": {"title": "", "text": SAME},
            "second": {"title": "", "text": SAME},
            "empty": {"title": "", "text": "   "},
            "other": {"title": "", "text": "Beavers build dams from branches and mud."},
        },
        queries={"q": "which animals use stones as tools"},
        qrels={"q": {"first": 1, "second": 1}},
    )
    with (
        api_server(database_url=database_url, worker_concurrency=4) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        ingested = ingest(client, data, "bench")
        runs = run_queries(client, data, "bench", {"strategy": "keyword"})
    assert ingested.documents == 3
    assert ingested.duplicates == {"second": "first"}
    assert list(ingested.rejected) == ["empty"]
    assert "empty" in ingested.rejected["empty"]
    assert ingested.failed == {}
    assert ingested.report()["skipped_rejected"]["count"] == 1
    assert set(runs["q"][:2]) == {"first", "second"}
