"""A small S3 client (path-style, AWS Signature Version 4) over httpx.

Only what backups need: put, get (streamed), head, list (ListObjectsV2), delete, and multipart
uploads (create, upload part, complete, abort). Works against AWS S3 and S3-compatible servers
(S3Proxy, Ceph RGW, SeaweedFS, Garage) that accept path-style requests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"


class S3Error(RuntimeError):
    """A request the server refused; the message names the operation, key and S3 error code."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _encode(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    payload_sha256: str,
    access_key: str,
    secret_key: str,
    region: str,
    now: dt.datetime,
) -> dict[str, str]:
    """The headers (with Authorization) that sign this request; pure."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed.update({"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256})
    names = sorted(signed)
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical = "\n".join(
        [
            method,
            _encode(path, safe="/-_.~"),
            canonical_query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in signed.items() if k != "host"}
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


@dataclass(frozen=True)
class Listing:
    keys: list[tuple[str, int]]  # (key, size)
    prefixes: list[str]


class S3Client:
    """One bucket's objects; every call raises S3Error with the server's code on refusal."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        timeout: float = 120.0,
        sign_payload: bool = True,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.host = httpx.URL(self.endpoint).netloc.decode()
        self.http = httpx.Client(timeout=timeout)
        self.sign_payload = sign_payload

    def close(self) -> None:
        self.http.close()

    def _build(
        self,
        method: str,
        key: str,
        query: dict[str, str] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> httpx.Request:
        path = f"/{self.bucket}/{key}" if key else f"/{self.bucket}"
        q = query or {}
        signed = sign(
            method=method,
            host=self.host,
            path=path,
            query=q,
            headers=headers or {},
            payload_sha256=self._payload_hash(body),
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            now=dt.datetime.now(dt.UTC),
        )
        url = self.endpoint + _encode(path, safe="/-_.~")
        if q:
            url += "?" + "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(q.items()))
        return self.http.build_request(method, url, content=body or None, headers=signed)

    def _payload_hash(self, body: bytes) -> str:
        if not body:
            return EMPTY_SHA256
        return hashlib.sha256(body).hexdigest() if self.sign_payload else UNSIGNED

    def _send(self, what: str, key: str, request: httpx.Request) -> httpx.Response:
        try:
            resp = self.http.send(request)
        except httpx.HTTPError as exc:
            raise S3Error(f"{what} {self.bucket}/{key}: {exc}") from exc
        if resp.status_code >= 300:
            raise _error(what, f"{self.bucket}/{key}", resp.status_code, resp.read())
        return resp

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._send("put", key, self._build("PUT", key, body=data,
                                             headers={"content-type": content_type}))  # fmt: skip

    def get(self, key: str) -> bytes:
        return self._send("get", key, self._build("GET", key)).content

    @contextlib.contextmanager
    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[Iterator[bytes]]:
        """The object's bytes, as they arrive."""
        request = self._build("GET", key)
        try:
            resp = self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise S3Error(f"get {self.bucket}/{key}: {exc}") from exc
        try:
            if resp.status_code >= 300:
                raise _error("get", f"{self.bucket}/{key}", resp.status_code, resp.read())
            yield resp.iter_bytes(chunk_size)
        finally:
            resp.close()

    def size(self, key: str) -> int | None:
        """The object's size, or None when there is none."""
        try:
            resp = self._send("head", key, self._build("HEAD", key))
        except S3Error as exc:
            if exc.status == 404:
                return None
            raise
        return int(resp.headers.get("content-length", "0"))

    def delete(self, key: str) -> None:
        self._send("delete", key, self._build("DELETE", key))

    def list_objects(
        self, prefix: str = "", delimiter: str | None = None, page_size: int = 1000
    ) -> Listing:
        """Every key under `prefix` (all pages); with a delimiter, the common prefixes too.

        Folder markers (keys ending in "/", which some servers list for directories) are left
        out: backups never write such keys.
        """
        keys: list[tuple[str, int]] = []
        prefixes: list[str] = []
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size)}
            if delimiter:
                query["delimiter"] = delimiter
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self._send("list", prefix, self._build("GET", "", query)).content)
            for item in root.iter(f"{NS}Contents"):
                key = _text(item, "Key")
                if not key.endswith("/"):
                    keys.append((key, int(_text(item, "Size") or 0)))
            prefixes += [_text(p, "Prefix") for p in root.iter(f"{NS}CommonPrefixes")]
            token = _text(root, "NextContinuationToken") or None
            if _text(root, "IsTruncated") != "true" or token is None:
                return Listing(keys, prefixes)

    def create_multipart(self, key: str) -> str:
        resp = self._send("create multipart upload", key,
                          self._build("POST", key, {"uploads": ""}))  # fmt: skip
        upload_id = _text(ET.fromstring(resp.content), "UploadId")
        if not upload_id:
            raise S3Error(f"create multipart upload {self.bucket}/{key}: no UploadId")
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        query = {"partNumber": str(number), "uploadId": upload_id}
        resp = self._send(f"upload part {number}", key, self._build("PUT", key, query, data))
        return resp.headers["etag"]

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
            for n, etag in enumerate(etags, start=1)
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        resp = self._send("complete multipart upload", key,
                          self._build("POST", key, {"uploadId": upload_id}, body))  # fmt: skip
        if b"<Error>" in resp.content:  # S3 may report a failure inside a 200
            raise _error("complete multipart upload", f"{self.bucket}/{key}", 500, resp.content)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._send("abort multipart upload", key,
                   self._build("DELETE", key, {"uploadId": upload_id}))  # fmt: skip


def _text(node: ET.Element, name: str) -> str:
    found = node.find(f"{NS}{name}")
    if found is None:
        found = node.find(name)
    return (found.text or "") if found is not None else ""


def _error(what: str, where: str, status: int, body: bytes) -> S3Error:
    code = message = ""
    with contextlib.suppress(ET.ParseError):
        root = ET.fromstring(body)
        code, message = _text(root, "Code"), _text(root, "Message")
    detail = f"{code}: {message}" if code else f"HTTP {status}"
    return S3Error(f"{what} {where}: {detail}", status=status, code=code)
