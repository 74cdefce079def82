"""`rag-runtime`: serve, worker, migrate, backup, restore, ingest, retry and query."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from rag_runtime.domain import RetrievalStrategy
from rag_runtime.logs import setup_logging, uvicorn_log_config
from rag_runtime.settings import ENV_PREFIX, Settings

app = typer.Typer(
    name="rag-runtime",
    help="The ragops RAG service: API, ingestion worker, migrations, backups and a local CLI.",
    no_args_is_help=True,
    add_completion=False,
)

INGEST_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"}


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value stops the process with one clear line."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a rule across settings: its message names them
            message = err["msg"].removeprefix("Value error, ")
            typer.echo(f"rag-runtime: invalid settings: {message}", err=True)
            raise typer.Exit(2) from None
        name = ENV_PREFIX + "_".join(str(p) for p in err["loc"][:1]).upper()
        typer.echo(f"rag-runtime: invalid setting {name}: {err['msg']}", err=True)
        raise typer.Exit(2) from None


def check_embedding_model(settings: Settings) -> None:
    """Load the embedding model now; one it cannot serve stops the process with one line.

    The model stays loaded (once per process) for the runtime that starts next.
    """
    from rag_runtime.domain import EmbeddingProvider
    from rag_runtime.embedding import sentence_transformer_embedder
    from rag_runtime.errors import ConfigurationError

    if settings.embedding_provider is not EmbeddingProvider.SENTENCE_TRANSFORMERS:
        return  # a remote model: its dimension shows with the first embedding
    try:
        sentence_transformer_embedder(settings)
    except ConfigurationError as exc:
        typer.echo(f"rag-runtime: {exc.log_text}", err=True)
        raise typer.Exit(2) from None


def drain_over(elapsed: float, quiet_for: float, delay: float, quiet: float, most: float) -> bool:
    """Whether a draining server may stop: `delay` seconds after SIGTERM once no request has
    come for `quiet` seconds (the load balancers have let the endpoint go), or at `most`."""
    return elapsed >= most or (elapsed >= delay and quiet_for >= quiet)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM keeps serving at least `delay` seconds, and then
    until no request has come for `quiet` seconds (at most `most` in all), before it stops
    accepting: the pod's endpoint leaves every load balancer first, even one that is slow
    to see it go, so a rollout fails no request (a 502 from a proxy that still sent to it)."""

    def __init__(
        self, config: uvicorn.Config, delay: float, quiet: float = 1.0, most: float = 0.0
    ) -> None:
        super().__init__(config)
        self.delay = delay
        self.quiet = quiet
        self.most = max(most, delay)
        self.draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.delay <= 0 or self.draining or sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        self.draining = True
        drain = threading.Thread(target=self._drain, args=(sig, frame), daemon=True)
        drain.start()

    def _drain(self, sig: int, frame: FrameType | None) -> None:
        start = last_change = time.monotonic()
        seen = self.server_state.total_requests
        while True:
            now = time.monotonic()
            if self.server_state.total_requests != seen:
                seen, last_change = self.server_state.total_requests, now
            if drain_over(now - start, now - last_change, self.delay, self.quiet, self.most):
                break
            time.sleep(0.05)
        uvicorn.Server.handle_exit(self, sig, frame)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (RAG_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (RAG_PORT).")] = None,
) -> None:
    """Serve the HTTP API. With no configuration: embedded Postgres, inline ingestion."""
    from rag_runtime.app import create_app
    from rag_runtime.embedding import sleeping_compute_threads
    from rag_runtime.errors import ConfigurationError

    sleeping_compute_threads()  # before the model (and torch) loads, as in the worker
    settings = load_settings(host=host, port=port)
    setup_logging(settings.log_level, settings.log_format)
    check_embedding_model(settings)
    try:
        application = create_app(settings)
    except ConfigurationError as exc:
        typer.echo(f"rag-runtime: {exc.log_text}", err=True)
        raise typer.Exit(2) from None
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_format),
        proxy_headers=True,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    DrainingServer(
        config,
        settings.shutdown_delay_seconds,
        quiet=settings.shutdown_quiet_seconds,
        most=settings.shutdown_max_delay_seconds,
    ).run()


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
) -> None:
    """Run ingestion jobs from the Redis queue."""
    from rag_runtime.embedding import sleeping_compute_threads
    from rag_runtime.worker import run_worker

    sleeping_compute_threads()  # before the model (and torch) loads
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    check_embedding_model(settings)
    asyncio.run(run_worker(settings, burst=burst))


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the schema is behind; change nothing.")
    ] = False,
) -> None:
    """Apply schema migrations (idempotent, under an advisory lock).

    Waits up to RAG_MIGRATE_WAIT_SECONDS (default 0) for the database to accept connections.
    A schema ahead of this runtime by compatible migrations is left as it is (exit 0); one
    ahead by an incompatible migration is refused, naming the revisions (exit 1).
    """
    from rag_runtime import migrate as migrations
    from rag_runtime.runtime import resolve_database_url

    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    url, embedded = resolve_database_url(settings)
    try:
        migrations.wait_for_database(url, settings.migrate_wait_seconds)
        status = migrations.schema_status(url) if check else migrations.upgrade(url)
    except migrations.SchemaIncompatibleError as exc:
        typer.echo(f"rag-runtime: {exc}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        typer.echo(f"rag-runtime: database unavailable: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(3) from None
    finally:
        if embedded is not None:
            embedded.cleanup()
    if not status.servable:
        if status.state is migrations.SchemaState.BEHIND:
            typer.echo(status.message)
        else:
            typer.echo(f"rag-runtime: {status.message}", err=True)
        raise typer.Exit(1)
    typer.echo(status.message)


backup_app = typer.Typer(
    help="Backups of the system's data to s3://bucket/prefix or file:///path.",
    no_args_is_help=True,
)
app.add_typer(backup_app, name="backup")

ToUrl = Annotated[
    str,
    typer.Option(
        "--to",
        help="s3://bucket/prefix (endpoint RAG_BACKUP_S3_ENDPOINT, credentials "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_REGION) or file:///path.",
    ),
]


def _backup_command(action: str, run: Callable[[Settings], dict[str, Any]]) -> None:
    """Run one backup action: its result as one JSON line; exit 0 only on success.

    A failure prints `{"ok": false, "error": ...}` and the message on stderr; exit 1 (2 for
    bad input, 3 when the database is unreachable).
    """
    import psycopg

    from rag_runtime.backup import BackupError, DestinationError, PostgresError, S3Error

    settings = load_settings()
    setup_logging("warning" if settings.log_level == "info" else settings.log_level)
    code, error = 1, ""
    try:
        result = run(settings)
    except ValueError as exc:  # a bad name or policy
        code, error = 2, str(exc)
    except (BackupError, DestinationError, PostgresError, S3Error) as exc:
        error = str(exc)
    except psycopg.OperationalError as exc:
        code, error = 3, f"database unavailable: {str(exc).strip().splitlines()[0]}"
    else:
        typer.echo(json.dumps(result, default=str))
        if not result.get("ok"):
            raise typer.Exit(1)
        return
    typer.echo(json.dumps({"ok": False, "action": action, "error": error}))
    typer.echo(f"rag-runtime: {error}", err=True)
    raise typer.Exit(code)


def _with_database(settings: Settings, run: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    from rag_runtime.runtime import resolve_database_url

    url, embedded = resolve_database_url(settings)
    try:
        return run(url)
    finally:
        if embedded is not None:
            embedded.cleanup()


def _destination(url: str, settings: Settings) -> Any:
    from rag_runtime.backup import open_destination

    return open_destination(url, endpoint=settings.backup_s3_endpoint)


@backup_app.command("create")
def backup_create(
    to: ToUrl,
    name: Annotated[
        str | None, typer.Option(help="Backup name (default backup-<UTC time>).")
    ] = None,
) -> None:
    """Back up one consistent snapshot of the database; the manifest is written last."""
    from rag_runtime.backup import operations

    def run(settings: Settings) -> dict[str, Any]:
        dest = _destination(to, settings)
        try:
            return _with_database(settings, lambda url: operations.create(dest, url, name))
        finally:
            dest.close()

    _backup_command("create", run)


@backup_app.command("list")
def backup_list(to: ToUrl) -> None:
    """List the complete backups (those with a manifest), oldest first."""
    from rag_runtime.backup import operations

    def run(settings: Settings) -> dict[str, Any]:
        dest = _destination(to, settings)
        try:
            return operations.list_backups(dest)
        finally:
            dest.close()

    _backup_command("list", run)


@backup_app.command("verify")
def backup_verify(
    to: ToUrl, name: Annotated[str, typer.Option(help="The backup to check.")]
) -> None:
    """Re-read a backup's files and compare their sizes and sha256 with its manifest."""
    from rag_runtime.backup import operations

    def run(settings: Settings) -> dict[str, Any]:
        dest = _destination(to, settings)
        try:
            return operations.verify(dest, name)
        finally:
            dest.close()

    _backup_command("verify", run)


@backup_app.command("prune")
def backup_prune(
    to: ToUrl,
    keep_last: Annotated[int | None, typer.Option(help="Keep this many newest backups.")] = None,
    max_age_days: Annotated[
        float | None, typer.Option(help="Remove backups older than this many days.")
    ] = None,
) -> None:
    """Remove old backups by count and/or age; the newest one always stays."""
    from rag_runtime.backup import operations

    def run(settings: Settings) -> dict[str, Any]:
        dest = _destination(to, settings)
        try:
            return operations.prune(dest, keep_last=keep_last, max_age_days=max_age_days)
        finally:
            dest.close()

    _backup_command("prune", run)


@app.command()
def restore(
    from_: Annotated[
        str, typer.Option("--from", help="s3://bucket/prefix or file:///path (as for backup).")
    ],
    name: Annotated[str, typer.Option(help="The backup to restore.")],
    replace: Annotated[
        bool, typer.Option(help="Drop what the target database holds, then restore.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="pg_restore connections at once (tables and indexes); default 2."
        ),
    ] = None,
) -> None:
    """Restore a backup into the database; refuses one this runtime cannot serve."""
    from rag_runtime.backup import operations, postgres

    connections = jobs or postgres.RESTORE_JOBS

    def run(settings: Settings) -> dict[str, Any]:
        dest = _destination(from_, settings)
        try:
            return _with_database(
                settings,
                lambda url: operations.restore(
                    dest, name, settings, url, replace=replace, jobs=connections
                ),
            )
        finally:
            dest.close()

    _backup_command("restore", run)


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in INGEST_SUFFIXES
            )
        elif path.is_file():
            found.append(path)
        else:
            typer.echo(f"rag-runtime: no such file or folder: {path}", err=True)
            raise typer.Exit(2)
    return found


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (txt, md, html, pdf).")],
    collection: Annotated[str, typer.Option("--collection", "-c")] = "default",
    concurrency: Annotated[int, typer.Option(help="Documents in flight.")] = 16,
) -> None:
    """Ingest files or folders into a collection, with a progress bar."""
    settings = load_settings()
    setup_logging(
        "warning" if settings.log_level == "info" else settings.log_level, settings.log_format
    )
    files = _files(paths)
    counts = asyncio.run(_ingest(settings, files, collection, concurrency))
    typer.echo(json.dumps({"collection": collection, **counts}))
    if counts.get("failed"):
        raise typer.Exit(1)


async def _ingest(
    settings: Settings, files: list[Path], collection_name: str, concurrency: int
) -> dict[str, int]:
    from tqdm import tqdm

    from rag_runtime.errors import NotFoundError, RagError
    from rag_runtime.extract import detect_content_type, extract_text
    from rag_runtime.runtime import Runtime
    from rag_runtime.store import Accepted

    runtime = await Runtime.start(settings, role="cli")
    counts = {"ready": 0, "failed": 0, "skipped": 0, "unchanged": 0}
    try:
        try:
            collection = await runtime.store.get_collection(collection_name)
        except NotFoundError:
            collection = await runtime.store.create_collection(
                collection_name,
                description="",
                model=runtime.embedder.model_name,
                dimensions=runtime.embedder.dimensions,
            )
        limit = asyncio.Semaphore(concurrency)
        bar = tqdm(total=len(files), unit="doc", desc=f"ingest {collection_name}")

        async def one(path: Path) -> None:
            async with limit:
                try:
                    content_type = detect_content_type(path.name, None)
                    data = await asyncio.to_thread(path.read_bytes)
                    text = extract_text(data, content_type)
                    doc, accepted = await runtime.store.create_document(
                        collection,
                        content=text,
                        title=path.stem,
                        source=str(path),
                        content_type=content_type,
                        metadata={"path": str(path)},
                    )
                    if accepted is Accepted.EXISTING and doc.status == "ready":
                        counts["unchanged"] += 1
                    else:
                        counts[await runtime.ingestor.process(doc.id)] += 1
                except RagError as exc:
                    counts["failed"] += 1
                    tqdm.write(f"{path}: {exc.log_text}", file=sys.stderr)
                bar.update(1)

        await asyncio.gather(*(one(p) for p in files))
        bar.close()
    finally:
        await runtime.close()
    return counts


@app.command()
def retry(
    document_ids: Annotated[
        list[str] | None, typer.Argument(help="Failed documents to retry; none = every one.")
    ] = None,
    collection: Annotated[str, typer.Option("--collection", "-c")] = "default",
    concurrency: Annotated[int, typer.Option(help="Documents in flight.")] = 16,
) -> None:
    """Ingest failed documents of a collection again, in this process, with a progress bar."""
    ids = [_document_id(d) for d in document_ids] if document_ids else None
    settings = load_settings()
    setup_logging(
        "warning" if settings.log_level == "info" else settings.log_level, settings.log_format
    )
    counts = asyncio.run(_retry(settings, collection, ids, concurrency))
    typer.echo(json.dumps({"collection": collection, **counts}))
    if counts.get("failed"):
        raise typer.Exit(1)


def _document_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        typer.echo(f"rag-runtime: not a document id: {text!r}", err=True)
        raise typer.Exit(2) from None


async def _retry(
    settings: Settings, collection_name: str, ids: list[uuid.UUID] | None, concurrency: int
) -> dict[str, int]:
    from tqdm import tqdm

    from rag_runtime.errors import RagError
    from rag_runtime.runtime import Runtime

    runtime = await Runtime.start(settings, role="cli")
    counts = {"requeued": 0, "ready": 0, "failed": 0, "skipped": 0}
    try:
        try:
            collection = await runtime.store.get_collection(collection_name)
            requeued = await runtime.store.retry_documents(collection, ids)
        except RagError as exc:
            typer.echo(f"rag-runtime: {exc.log_text}", err=True)
            raise typer.Exit(1) from None
        counts["requeued"] = len(requeued)
        if ids is not None and len(requeued) < len(ids):
            for document_id in sorted(set(ids) - set(requeued), key=str):
                message = f"{document_id}: not a failed document of {collection_name!r}"
                tqdm.write(message, file=sys.stderr)
            counts["skipped"] = len(ids) - len(requeued)
        limit = asyncio.Semaphore(concurrency)
        bar = tqdm(total=len(requeued), unit="doc", desc=f"retry {collection_name}")

        async def one(document_id: uuid.UUID) -> None:
            async with limit:
                try:
                    outcome = await runtime.ingestor.process(document_id)
                    error = None
                    if outcome == "failed":
                        error = (await runtime.store.get_document(document_id)).error
                except RagError as exc:  # a dependency is down: the document stays queued
                    outcome, error = "failed", exc.log_text
                counts[outcome] += 1
                if error:
                    tqdm.write(f"{document_id}: {error}", file=sys.stderr)
                bar.update(1)

        await asyncio.gather(*(one(d) for d in requeued))
        bar.close()
    finally:
        await runtime.close()
    return counts


@app.command()
def query(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Annotated[str, typer.Option("--collection", "-c")] = "default",
    strategy: Annotated[RetrievalStrategy | None, typer.Option()] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON response.")] = False,
) -> None:
    """Answer a question from a collection, printing the answer and its sources."""
    settings = load_settings()
    setup_logging(
        "warning" if settings.log_level == "info" else settings.log_level, settings.log_format
    )
    result = asyncio.run(_query(settings, question, collection, strategy, top_k))
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(result["answer"])
    typer.echo("")
    for i, hit in enumerate(result["results"], start=1):
        snippet = hit["text"][:100].replace("\n", " ")
        typer.echo(f"[{i}] {hit['document_title']} (score {hit['score']:.3f}): {snippet}")


async def _query(
    settings: Settings,
    question: str,
    collection_name: str,
    strategy: RetrievalStrategy | None,
    top_k: int,
) -> dict[str, Any]:
    from rag_runtime.errors import RagError
    from rag_runtime.generation import citations_in
    from rag_runtime.runtime import Runtime
    from rag_runtime.schemas import SearchRequest

    runtime = await Runtime.start(settings, role="cli")
    try:
        collection = await runtime.store.get_collection(collection_name)
        req = SearchRequest(
            collection=collection_name, query=question, strategy=strategy, top_k=top_k
        )
        hits, plan, _ = await runtime.retriever.search(collection, req)
        answer = "".join([t async for t in runtime.generator.stream(question, hits, 512)])
    except RagError as exc:
        typer.echo(f"rag-runtime: {exc.log_text}", err=True)
        raise typer.Exit(1) from None
    finally:
        await runtime.close()
    return {
        "answer": answer,
        "citations": [c.model_dump(mode="json") for c in citations_in(answer, hits)],
        "results": [h.model_dump(mode="json") for h in hits],
        "strategy": plan.strategy.value,
        "provider": runtime.generator.provider,
    }


def main() -> None:
    app()


if __name__ == "__main__":
    main()
