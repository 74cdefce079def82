"""A real Neo4j 5.26 (the Maven Central test harness) with Bolt on a free loopback port.

`hack/neo4j/build.sh` resolves the jars and compiles `Launcher.java` into
~/.cache/ragops/neo4j/<version>; this module starts that JVM and waits for Bolt.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from hack.services._process import ManagedProcess, ServiceStartError, free_port, port_open

HERE = Path(__file__).resolve().parent.parent / "neo4j"
BUILD_INPUTS = ("pom.xml", "Launcher.java", "build.sh")
JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xms256m", "-Xmx1g"]


def neo4j_version() -> str:
    match = re.search(r"<neo4j.version>(.+?)</neo4j.version>", (HERE / "pom.xml").read_text())
    if match is None:
        raise ServiceStartError("neo4j: hack/neo4j/pom.xml names no neo4j.version")
    return match.group(1)


def install_dir(cache: Path) -> Path:
    """Where hack/neo4j/build.sh puts this version and launcher (same hash as the script)."""
    sources = b"".join((HERE / name).read_bytes() for name in BUILD_INPUTS)
    return cache / "neo4j" / f"{neo4j_version()}-{hashlib.sha256(sources).hexdigest()[:12]}"


@dataclass
class Neo4jService:
    """A running Neo4j; auth is off, so any user name and password are accepted."""

    port: int
    process: ManagedProcess
    user: str = "neo4j"
    password: str = "unused-auth-is-off"

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        # The store is scratch data: a short grace period, then the process group is killed.
        self.process.stop(timeout=3)


def start_neo4j(
    workdir: Path, cache: Path, port: int | None = None, class_sharing: bool = True
) -> Neo4jService:
    """Start Neo4j with its store and log under `workdir`.

    `class_sharing=False` ignores the recorded class-data archive (the baseline that
    benchmarks/service_start.py compares against).
    """
    home = install_dir(cache)
    if not (home / ".complete").exists():
        raise ServiceStartError(f"neo4j: not built in {home} (run `make setup`)")
    java = shutil.which("java")
    if java is None:
        raise ServiceStartError("neo4j: no `java` on PATH")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    classpath = f"{home / 'launcher.jar'}:{home / 'lib'}/*"
    archive = home / "app.jsa"
    cds = [f"-XX:SharedArchiveFile={archive}"] if class_sharing and archive.exists() else []
    argv = [java, *JVM_FLAGS, *cds, "-cp", classpath, "Launcher", str(port), str(workdir / "db")]
    process = ManagedProcess("neo4j", argv, workdir / "neo4j.log")
    process.start()
    log = workdir / "neo4j.log"
    process.wait_ready(
        lambda: "ragops-neo4j ready" in log.read_text(errors="replace") and port_open(port),
        timeout=90,
        interval=0.1,
    )
    return Neo4jService(port=port, process=process)
