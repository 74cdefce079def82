"""A real S3-compatible server: S3Proxy (Apache-2.0) with its filesystem backend.

`hack/s3proxy/build.sh` resolves the jars from Maven Central into
~/.cache/ragops/s3proxy/<version>-<hash>/lib; this module starts that JVM on a free loopback
port with SigV4 auth (a fixed access key and secret) and objects under `workdir/data`.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from hack.services._process import ManagedProcess, ServiceStartError, free_port

HERE = Path(__file__).resolve().parent.parent / "s3proxy"
BUILD_INPUTS = ("pom.xml", "build.sh")
JVM_FLAGS = ["-XX:+UseSerialGC", "-Xms64m", "-Xmx512m"]
ACCESS_KEY = "ragops-test"
SECRET_KEY = "ragops-test-secret"  # a local test server's, not a credential of anything real
REGION = "us-east-1"


def s3proxy_version() -> str:
    match = re.search(r"<s3proxy.version>(.+?)</s3proxy.version>", (HERE / "pom.xml").read_text())
    if match is None:
        raise ServiceStartError("s3: hack/s3proxy/pom.xml names no s3proxy.version")
    return match.group(1)


def install_dir(cache: Path) -> Path:
    """Where hack/s3proxy/build.sh puts the jars (same hash as the script)."""
    sources = b"".join((HERE / name).read_bytes() for name in BUILD_INPUTS)
    return cache / "s3proxy" / f"{s3proxy_version()}-{hashlib.sha256(sources).hexdigest()[:12]}"


@dataclass
class S3Service:
    """A running S3Proxy; path-style addressing, SigV4 with `access_key`/`secret_key`."""

    port: int
    process: ManagedProcess
    data_dir: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What `rag-runtime backup` reads to reach this server."""
        return {
            "RAG_BACKUP_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def create_bucket(self, name: str) -> None:
        """A private bucket (a directory of the filesystem backend); an existing one is kept.

        The backend reads a directory that others may read as a public-read bucket.
        """
        bucket = self.data_dir / name
        bucket.mkdir(parents=True, exist_ok=True)
        bucket.chmod(0o700)

    def stop(self) -> None:
        self.process.stop()


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status in (200, 403)  # 403: a signature is required
    finally:
        conn.close()


def start_s3(workdir: Path, cache: Path, port: int | None = None) -> S3Service:
    """Start S3Proxy with its objects under `workdir/data` and its log in `workdir/s3proxy.log`."""
    home = install_dir(cache)
    if not (home / ".complete").exists():
        raise ServiceStartError(f"s3: S3Proxy not resolved in {home} (run `make setup`)")
    java = shutil.which("java")
    if java is None:
        raise ServiceStartError("s3: no `java` on PATH")
    port = port or free_port()
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    props = workdir / "s3proxy.properties"
    props.write_text(
        "\n".join(
            [
                f"s3proxy.endpoint=http://127.0.0.1:{port}",
                "s3proxy.authorization=aws-v2-or-v4",
                f"s3proxy.identity={ACCESS_KEY}",
                f"s3proxy.credential={SECRET_KEY}",
                "jclouds.provider=filesystem",
                f"jclouds.filesystem.basedir={data}",
                "",
            ]
        )
    )
    argv = [java, *JVM_FLAGS, "-cp", f"{home / 'lib'}/*", "org.gaul.s3proxy.Main",
            "--properties", str(props)]  # fmt: skip
    process = ManagedProcess("s3proxy", argv, workdir / "s3proxy.log", cwd=workdir)
    process.start()
    process.wait_ready(lambda: _answers(port), timeout=120, interval=0.2)
    return S3Service(port=port, process=process, data_dir=data)
