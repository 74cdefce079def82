"""CPU-heavy work stays off the event loop: `/health` answers while a large file is parsed.

Covers: during the upload of an HTML file whose parsing takes seconds of CPU (measured in the
same test, on the same machine, as the baseline), `/health` keeps answering, each time in a
quarter of that parse time at most; the upload itself is accepted with the title found in it.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from rag_runtime.extract import extract
from tests.integration.runtime.helpers import served

pytestmark = pytest.mark.integration

UNIT = '<div class="row"><span id="a"></span><i></i><b class="c"></b></div>\n'


def _large_html(units: int) -> bytes:
    body = UNIT * units
    return (
        "<html><head><title>Big page</title></head><body><p>Some text worth indexing.</p>"
        f"{body}</body></html>"
    ).encode()


def _timed_parse(data: bytes) -> float:
    start = time.perf_counter()
    extract(data, "text/html")
    return time.perf_counter() - start


def test_health_stays_fast_while_a_large_upload_is_parsed(database_url: str) -> None:
    data = _large_html(8000)
    assert extract(data, "text/html") == ("Big page\nSome text worth indexing.", "Big page")
    with served(database_url=database_url, max_document_bytes=len(data) * 2) as port:
        base = f"http://127.0.0.1:{port}"
        httpx.post(f"{base}/api/v1/collections", json={"name": "big"}, timeout=60)
        result: dict[str, httpx.Response] = {}

        def upload() -> None:
            result["upload"] = httpx.post(
                f"{base}/api/v1/collections/big/documents/upload",
                files={"file": ("big.html", data, "text/html")},
                timeout=300,
            )

        uploader = threading.Thread(target=upload)
        latencies: list[float] = []
        with httpx.Client(base_url=base, timeout=120) as client:
            uploader.start()
            while uploader.is_alive():
                sent = time.perf_counter()
                assert client.get("/api/v1/health").status_code == 200
                latencies.append(time.perf_counter() - sent)
            uploader.join()
    # The baseline: what a blocked loop would make a probe wait (the quicker of two runs).
    parse_s = min(_timed_parse(data), _timed_parse(data))
    resp = result["upload"]
    assert resp.status_code == 202, resp.text
    assert resp.json()["title"] == "Big page"
    assert len(latencies) >= 3, (latencies, parse_s)  # polled while the upload ran
    assert max(latencies) < parse_s / 4, (max(latencies), parse_s)
