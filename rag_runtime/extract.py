"""Turn an uploaded file (txt, md, html, pdf) into plain text."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import PurePath

from rag_runtime.errors import (
    InvalidInputError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
)

CONTENT_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
SUPPORTED = frozenset(CONTENT_TYPES.values())


def detect_content_type(filename: str | None, declared: str | None) -> str:
    """The supported content type of an upload, from its declared type or its extension."""
    base = (declared or "").split(";")[0].strip().lower()
    if base in SUPPORTED:
        return base
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    raise UnsupportedMediaTypeError(
        f"unsupported document type {base or suffix or 'unknown'!r}; "
        "send text/plain, text/markdown, text/html or application/pdf (.txt, .md, .html, .pdf)"
    )


def extract_text(data: bytes, content_type: str) -> str:
    return extract(data, content_type)[0]


def extract(data: bytes, content_type: str) -> tuple[str, str | None]:
    """The plain text of a document and its title, if it has one (HTML parsed once).

    CPU-bound (seconds for a large PDF or HTML file): callers on an event loop use `Parser`,
    which runs it in another process, so the loop keeps answering while it runs.
    """
    if content_type == "application/pdf":
        return _pdf_text(data), None
    text = _decode(data)
    if content_type == "text/html":
        return _html(text)
    return text, None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _html(html: str) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else None
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line), title


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InvalidInputError(
            "file: cannot read the PDF (damaged, encrypted or not a PDF)", field="file", cause=exc
        ) from exc
    return "\n\n".join(p.strip() for p in pages if p.strip())


class Parser:
    """Runs `extract` in a child process: parsing holds the GIL for seconds on a large file,
    and in a thread that still starves the event loop (probes time out). The process starts
    on first use; a child that dies is replaced by the next call."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the child now (it takes seconds on a busy machine), not with the first file."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
            self._pool.submit(extract, b"<p>warm</p>", "text/html")

    async def extract(self, data: bytes, content_type: str) -> tuple[str, str | None]:
        if content_type not in {"text/html", "application/pdf"}:
            return extract(data, content_type)  # decoding only: quick
        self.start()
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, extract, data, content_type)
        except BrokenProcessPool as exc:
            self._pool = None
            raise ServiceUnavailableError("document parser unavailable", cause=exc) from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
