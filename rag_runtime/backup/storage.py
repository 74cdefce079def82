"""Where backups live: a directory (`file:///path`) or S3-compatible storage (`s3://bucket/prefix`).

A backup named N is a folder `N/` holding its data files and, written last, `N/manifest.json`.
Files are streamed (S3: multipart, parts uploaded by a thread while the next one fills);
a failed upload is aborted, so no object appears. Only a folder with a manifest is a backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from rag_runtime.backup.s3 import S3Client, S3Error

MANIFEST = "manifest.json"
PART_BYTES = 8 * 1024 * 1024  # S3's minimum is 5 MiB; smaller parts overlap more
READ_BYTES = 1024 * 1024


class DestinationError(RuntimeError):
    """A destination that cannot be used; the message names the URL or setting."""


@dataclass(frozen=True)
class Written:
    size: int
    sha256: str


class Destination(Protocol):
    url: str

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> Written: ...

    def write(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> bytes | None: ...

    def stream(self, key: str) -> contextlib.AbstractContextManager[Iterator[bytes]]: ...

    def names(self) -> list[str]: ...

    def remove(self, name: str) -> None: ...

    def close(self) -> None: ...


class FileDestination:
    """Backups as folders under a directory (a mounted volume)."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def _path(self, key: str) -> Path:
        return self.root / key

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> Written:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with path.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        return Written(size, digest.hexdigest())

    def write(self, key: str, data: bytes) -> None:
        """Atomic: the file appears whole or not at all."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".partial")
        with staging.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        staging.replace(path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def stream(self, key: str) -> Iterator[Iterator[bytes]]:
        path = self._path(key)
        if not path.exists():
            raise DestinationError(f"{self.url}: no file {key}")
        with path.open("rb") as src:
            yield iter(lambda: src.read(READ_BYTES), b"")

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def remove(self, name: str) -> None:
        folder = self._path(name)
        manifest = folder / MANIFEST
        manifest.unlink(missing_ok=True)  # first: the backup stops being listed at once
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        folder.rmdir()

    def close(self) -> None:
        pass


class S3Destination:
    """Backups as object prefixes in a bucket."""

    def __init__(self, client: S3Client, prefix: str, url: str) -> None:
        self.client = client
        self.prefix = prefix.strip("/")
        self.url = url

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> Written:
        full = self._key(key)
        digest, size = hashlib.sha256(), 0
        buffer = bytearray()
        upload: _Uploader | None = None
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                if len(buffer) >= PART_BYTES:
                    if upload is None:
                        upload = _Uploader(self.client, full)
                    upload.add(bytes(buffer))
                    buffer.clear()
            if upload is None:
                self.client.put(full, bytes(buffer))
            else:
                if buffer:
                    upload.add(bytes(buffer))
                upload.complete()
        except BaseException:
            if upload is not None:
                upload.abort()
            raise
        return Written(size, digest.hexdigest())

    def write(self, key: str, data: bytes) -> None:
        self.client.put(self._key(key), data, "application/json")  # an S3 PUT is atomic

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get(self._key(key))
        except S3Error as exc:
            if exc.status == 404:
                return None
            raise

    def stream(self, key: str) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        return self.client.stream(self._key(key))

    def names(self) -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        listing = self.client.list_objects(base, delimiter="/")
        return sorted(p[len(base) :].rstrip("/") for p in listing.prefixes)

    def remove(self, name: str) -> None:
        folder = self._key(name) + "/"
        self.client.delete(folder + MANIFEST)  # first: the backup stops being listed at once
        for key, _ in self.client.list_objects(folder).keys:
            self.client.delete(key)

    def close(self) -> None:
        self.client.close()


class _Uploader:
    """A multipart upload whose parts go up in a thread while the caller fills the next."""

    def __init__(self, client: S3Client, key: str) -> None:
        self.client = client
        self.key = key
        self.upload_id = client.create_multipart(key)
        self.etags: list[str] = []
        self.parts: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="s3-upload", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (part := self.parts.get()) is not None:
            if self.error is not None:
                continue  # drain: the caller sees the error at its next add
            try:
                self.etags.append(
                    self.client.upload_part(self.key, self.upload_id, len(self.etags) + 1, part)
                )
            except BaseException as exc:
                self.error = exc

    def add(self, part: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.parts.put(part)

    def complete(self) -> None:
        self.parts.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.client.complete_multipart(self.key, self.upload_id, self.etags)

    def abort(self) -> None:
        if self.thread.is_alive():
            self.error = self.error or RuntimeError("aborted")
            self.parts.put(None)
            self.thread.join()
        with contextlib.suppress(S3Error):
            self.client.abort_multipart(self.key, self.upload_id)


def open_destination(
    url: str, env: Mapping[str, str] | None = None, endpoint: str | None = None
) -> Destination:
    """The destination a `--to`/`--from` URL names; a bad URL or missing setting is named.

    The S3 endpoint is `endpoint` (the runtime's RAG_BACKUP_S3_ENDPOINT setting), else that
    variable in `env`; credentials and region come from `env` (default: the process's).
    """
    environ = os.environ if env is None else env
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise DestinationError(f"--to/--from {url!r}: a file URL is file:///absolute/path")
        return FileDestination(Path(unquote(parsed.path)), url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise DestinationError(f"--to/--from {url!r}: an S3 URL is s3://bucket/prefix")
        access = environ.get("AWS_ACCESS_KEY_ID", "")
        secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
        missing = [n for n, v in (("AWS_ACCESS_KEY_ID", access),
                                  ("AWS_SECRET_ACCESS_KEY", secret)) if not v]  # fmt: skip
        if missing:
            raise DestinationError(f"{url}: credentials missing: set {' and '.join(missing)}")
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = (
            endpoint
            or environ.get("RAG_BACKUP_S3_ENDPOINT")
            or f"https://s3.{region}.amazonaws.com"
        )
        if urlparse(endpoint).scheme not in ("http", "https"):
            raise DestinationError(f"RAG_BACKUP_S3_ENDPOINT {endpoint!r}: not an http(s) URL")
        # Over TLS the transport protects the body; over plain http each payload is signed.
        # Either way the manifest's sha256 covers the data (`backup verify`).
        client = S3Client(endpoint, parsed.netloc, access_key=access, secret_key=secret,
                          region=region, sign_payload=endpoint.startswith("http:"))  # fmt: skip
        return S3Destination(client, unquote(parsed.path), url)
    raise DestinationError(f"--to/--from {url!r}: use s3://bucket/prefix or file:///path")
