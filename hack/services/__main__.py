"""`python -m hack.services up [NAME...]`: run local services until Ctrl-C and print their URLs."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time

from hack.paths import state_dir
from hack.services import ALL_SERVICES, Services, ServiceStartError, running_services


def describe(services: Services) -> list[str]:
    """One line per running service: how to reach it."""
    lines = []
    if services.postgres:
        lines.append(f"postgres    {services.postgres.url}   (export RAG_DATABASE_URL=...)")
    if services.redis:
        lines.append(f"redis       {services.redis.url}   (export RAG_REDIS_URL=...)")
    if services.neo4j:
        lines.append(f"neo4j       {services.neo4j.uri}   (export RAG_NEO4J_URI=...; auth off)")
    if services.prometheus:
        lines.append(f"prometheus  {services.prometheus.url}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.services")
    parser.add_argument("command", choices=["up"])
    parser.add_argument(
        "names", nargs="*", help=f"services to start (default: {' '.join(ALL_SERVICES)})"
    )
    parser.add_argument("--once", action="store_true", help="start, print, stop (a smoke check)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(ALL_SERVICES))
    if unknown:
        parser.error(f"unknown services {unknown}; choose from {', '.join(ALL_SERVICES)}")
    workdir = state_dir() / "services"
    shutil.rmtree(workdir, ignore_errors=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    try:
        with running_services(workdir, tuple(args.names or ALL_SERVICES)) as services:
            print(f"services ready in {time.monotonic() - started:.1f} s (state in {workdir}):")
            for line in describe(services):
                print("  " + line)
            sys.stdout.flush()
            if not args.once:
                print("Ctrl-C stops them.")
                try:
                    while not stop.wait(0.5):
                        pass
                except KeyboardInterrupt:
                    pass
    except ServiceStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
