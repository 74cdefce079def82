"""A real Redis (Debian's redis-server) on a free loopback port."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from hack.services._process import ManagedProcess, ServiceStartError, free_port

REDIS_BIN = "redis-server"


def _ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


@dataclass
class RedisService:
    """A running redis-server; `url` is what clients use."""

    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.stop()


def start_redis(workdir: Path, port: int | None = None, persistent: bool = False) -> RedisService:
    """Start redis-server with its data and log under `workdir`; no persistence unless asked."""
    binary = shutil.which(REDIS_BIN)
    if binary is None:
        raise ServiceStartError("redis: redis-server is not installed (run `make setup`)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    persistence = ["--appendonly", "yes"] if persistent else ["--save", "", "--appendonly", "no"]
    argv = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(workdir),
        "--daemonize", "no",
        "--protected-mode", "yes",
        *persistence,
    ]  # fmt: skip
    process = ManagedProcess("redis", argv, workdir / "redis.log")
    process.start()
    process.wait_ready(lambda: _ping(port), timeout=30)
    return RedisService(port=port, process=process)
