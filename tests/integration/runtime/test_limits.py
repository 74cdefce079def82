"""Request bodies are bounded before anything trusts them, over real HTTP (uvicorn).

Covers: a wrong key is answered 401 from the headers alone, before any of the body is sent
(JSON and multipart); a chunked body without Content-Length is counted as it streams and cut
with 413 long before the client has sent it all; a declared Content-Length over the limit is
refused at once; the uploads in progress at once are bounded (503 with Retry-After).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.integration.runtime.helpers import served

pytestmark = pytest.mark.integration

KEY = "limits-key"
LIMIT = 100_000


@pytest.fixture(scope="module")
def port(database_url: str) -> Iterator[int]:
    with served(
        database_url=database_url,
        api_keys=[KEY],
        max_document_bytes=LIMIT,
        max_concurrent_uploads=1,
    ) as p:
        with socket.create_connection(("127.0.0.1", p), timeout=60) as s:
            body = b'{"name": "lim"}'
            s.sendall(_head("POST", "/api/v1/collections", KEY, len(body)) + body)
            assert b" 201 " in _status_line(s)
        yield p


def _head(
    method: str,
    path: str,
    key: str,
    length: int | None,
    content_type: str = "application/json",
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {key}",
        f"Content-Type: {content_type}",
    ]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_line(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        piece = s.recv(4096)
        if not piece:
            break
        data += piece
    return data.split(b"\r\n", 1)[0]


def _response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(4096)
        if not piece:
            break
        data += piece
    return data


DOCS = "/api/v1/collections/lim/documents"
MULTIPART = "multipart/form-data; boundary=XyZ"


@pytest.mark.parametrize(
    ("path", "content_type"), [(DOCS, "application/json"), (DOCS + "/upload", MULTIPART)]
)
def test_a_wrong_key_is_401_before_the_body_is_sent(
    port: int, path: str, content_type: str
) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(_head("POST", path, "wrong", 50_000, content_type))  # and no body at all
        assert b" 401 " in _status_line(s)


def test_a_declared_length_over_the_limit_is_413_at_once(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(_head("POST", DOCS + "/upload", KEY, 50 * LIMIT, MULTIPART))
        assert b" 413 " in _status_line(s)


def _stream_chunks(s: socket.socket, total: int, sent: list[int]) -> None:
    chunk = b"a" * 16384
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    try:
        while sent[0] < total:
            s.sendall(framed)
            sent[0] += len(chunk)
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server cut the body off: what is expected


@pytest.mark.parametrize(
    ("path", "content_type", "prefix"),
    [
        (DOCS, "application/json", b'{"text": "'),
        (
            DOCS + "/upload",
            MULTIPART,
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n",
        ),
    ],
)
def test_a_chunked_body_is_cut_with_413_as_it_streams(
    port: int, path: str, content_type: str, prefix: bytes
) -> None:
    total = 2000 * LIMIT  # 200 MB: far more than the server may take in
    sent = [0]
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(_head("POST", path, KEY, None, content_type))
        s.sendall(f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n")
        sender = threading.Thread(target=_stream_chunks, args=(s, total, sent), daemon=True)
        sender.start()
        status = _status_line(s)
        assert b" 413 " in status, status
        s.shutdown(socket.SHUT_RDWR)
        sender.join(60)
    assert sent[0] < total


def test_uploads_in_progress_are_bounded(port: int) -> None:
    prefix = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nsome text"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as first:
        first.sendall(_head("POST", DOCS + "/upload", KEY, len(prefix) + 100, MULTIPART) + prefix)
        # The first upload is now in progress (its body unfinished); a second one waits.
        with socket.create_connection(("127.0.0.1", port), timeout=60) as second:
            for _ in range(600):  # until the first request has reached the limiter
                second.sendall(_head("POST", DOCS + "/upload", KEY, 10, MULTIPART) + b"0123456789")
                head = _response(second)
                if b" 503 " in head.split(b"\r\n", 1)[0]:
                    assert b"retry-after: 5" in head.lower()
                    break
                second.close()
                second = socket.create_connection(("127.0.0.1", port), timeout=60)
            else:
                raise AssertionError("a second upload was never refused while one was in progress")
