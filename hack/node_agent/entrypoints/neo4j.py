"""The neo4j image's entrypoint, over the Bolt-only harness launcher.

``NEO4J_AUTH`` is read as the image reads it: ``none`` turns authentication off,
``neo4j/<password>`` sets the password of user ``neo4j`` (at least 8 characters; another user
name is refused), and an unset variable leaves authentication off (the image's default of
``neo4j/neo4j`` with a forced change has no meaning without a browser). Data lives in
``/data``; Bolt listens on ``0.0.0.0:7687``. Run as root, it hands ``/data`` to uid 7474.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

NEO4J_UID = 7474
MIN_PASSWORD = 8


def fail(message: str) -> None:
    print(f"Invalid value for NEO4J_AUTH: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    auth = os.environ.get("NEO4J_AUTH", "none")
    if auth != "none":
        user, sep, password = auth.partition("/")
        if not sep:
            fail("expected 'none' or 'neo4j/<password>'")
        if user != "neo4j":
            fail(f"Invalid admin username, it must be neo4j (got {user!r}).")
        if len(password) < MIN_PASSWORD:
            fail(f"The minimum password length is {MIN_PASSWORD} characters.")
    data = Path("/data")
    if os.getuid() == 0:
        data.mkdir(exist_ok=True)
        for root, dirs, files in os.walk(data):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), NEO4J_UID, NEO4J_UID)
        os.chown(data, NEO4J_UID, NEO4J_UID)
        os.setgroups([])
        os.setgid(NEO4J_UID)
        os.setuid(NEO4J_UID)
    home = Path(os.environ["RAGOPS_NEO4J_HOME"])
    java = os.environ.get("RAGOPS_NEO4J_JAVA", "java")
    flags = os.environ.get("RAGOPS_NEO4J_JVM_FLAGS", "").split()
    archive = home / "app.jsa"
    cds = [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto"] if archive.exists() else []
    classpath = f"{home / 'launcher.jar'}:{home / 'lib'}/*"
    os.execvp(
        java, [java, *flags, *cds, "-cp", classpath, "Launcher", "7687", str(data), "0.0.0.0"]
    )


if __name__ == "__main__":
    main()
