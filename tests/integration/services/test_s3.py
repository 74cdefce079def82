"""The S3-compatible test server (S3Proxy) and the runtime's SigV4 client, together.

Covers: the server refuses an unsigned request and a wrong secret; the client puts, reads,
streams, lists (with pages and common prefixes), sizes and deletes objects; a multipart upload
appears only when completed and not at all when aborted; a destination streams a file of
several parts with the right size and sha256; a server that cannot start fails (not skips).
"""

from __future__ import annotations

import hashlib
import http.client
import os
from pathlib import Path

import pytest

from hack.services import S3Service, ServiceStartError, start_s3
from rag_runtime.backup import s3 as s3client
from rag_runtime.backup.s3 import S3Client, S3Error
from rag_runtime.backup.storage import S3Destination, open_destination

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(s3: S3Service) -> S3Client:
    s3.create_bucket("objects")
    return S3Client(s3.endpoint, "objects", access_key=s3.access_key, secret_key=s3.secret_key)


def test_unsigned_and_wrongly_signed_requests_are_refused(s3: S3Service, client: S3Client) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", s3.port, timeout=10)
    conn.request("GET", "/objects")
    assert conn.getresponse().status == 403
    wrong = S3Client(s3.endpoint, "objects", access_key=s3.access_key, secret_key="nope")
    with pytest.raises(S3Error) as err:
        wrong.put("x", b"y")
    assert err.value.status == 403


def test_objects_round_trip(client: S3Client) -> None:
    client.put("dir/a b+c.txt", b"hello")
    assert client.get("dir/a b+c.txt") == b"hello"
    with client.stream("dir/a b+c.txt") as chunks:
        assert b"".join(chunks) == b"hello"
    assert client.size("dir/a b+c.txt") == 5
    assert client.size("dir/missing") is None
    client.delete("dir/a b+c.txt")
    assert client.size("dir/a b+c.txt") is None


def test_listing_pages_and_prefixes(client: S3Client) -> None:
    for i in range(3):
        client.put(f"list/b{i}/file", b"x")
    client.put("list/top", b"x")
    listing = client.list_objects("list/", delimiter="/")
    assert listing.prefixes == ["list/b0/", "list/b1/", "list/b2/"]
    expected = ["list/b0/file", "list/b1/file", "list/b2/file", "list/top"]
    assert [k for k, _ in client.list_objects("list/").keys] == expected
    assert [k for k, _ in client.list_objects("list/", page_size=1).keys] == expected


def test_multipart_upload_appears_only_when_completed(client: S3Client) -> None:
    part = os.urandom(5 * 1024 * 1024)
    upload = client.create_multipart("mp/whole")
    etags = [client.upload_part("mp/whole", upload, n, part) for n in (1, 2)]
    etags.append(client.upload_part("mp/whole", upload, 3, b"tail"))
    assert client.size("mp/whole") is None
    client.complete_multipart("mp/whole", upload, etags)
    assert client.get("mp/whole") == part + part + b"tail"
    aborted = client.create_multipart("mp/aborted")
    client.upload_part("mp/aborted", aborted, 1, part)
    client.abort_multipart("mp/aborted", aborted)
    assert client.size("mp/aborted") is None


def test_destination_streams_a_file_of_several_parts(s3: S3Service) -> None:
    s3.create_bucket("dest")
    dest = open_destination("s3://dest/some/prefix", s3.env())
    assert isinstance(dest, S3Destination)
    blocks = [os.urandom(1 << 20) for _ in range(40)]  # 40 MiB: three parts
    written = dest.write_stream("b1/data", iter(blocks))
    assert written.size == 40 << 20
    assert written.sha256 == hashlib.sha256(b"".join(blocks)).hexdigest()
    with dest.stream("b1/data") as chunks:
        assert hashlib.sha256(b"".join(chunks)).hexdigest() == written.sha256
    assert dest.names() == ["b1"]
    dest.close()


def test_signing_is_deterministic() -> None:
    import datetime as dt

    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    def sign() -> dict[str, str]:
        return s3client.sign(method="GET", host="h:1", path="/b/k", query={"a": "1"},
                             headers={}, payload_sha256=s3client.EMPTY_SHA256, access_key="A",
                             secret_key="S", region="us-east-1", now=now)  # fmt: skip

    first = sign()
    assert first == sign()
    assert first["x-amz-date"] == "20260102T030405Z"
    assert first["authorization"].startswith("AWS4-HMAC-SHA256 Credential=A/20260102/us-east-1/")


def test_a_server_that_cannot_start_fails(tmp_path: Path) -> None:
    with pytest.raises(ServiceStartError, match="not resolved"):
        start_s3(tmp_path / "s3", tmp_path / "empty-cache")
