"""The processes a benchmark starts end with it.

A benchmark-like command (the benchmarks' entry point `run`, their `services()` helper with
a real Postgres and Redis, and a child process started as ingest_throughput starts its
worker) is stopped from outside. Covers: SIGTERM ends it through its cleanup (exit status
143, every process it started gone, its temporary directory removed); SIGKILL, which allows
no cleanup, still takes the services and the worker with it (the kernel signals them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
BENCHMARK = """
import json, subprocess, sys, time
from benchmarks._common import run
from benchmarks._runtime import services
from hack.services import dies_with_parent

def main() -> None:
    with services("postgres", "redis") as svc:
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
        worker = subprocess.Popen(dies_with_parent(sleeper))
        try:
            print(json.dumps({"pids": [svc["postgres"].process.popen.pid,
                                       svc["redis"].process.popen.pid, worker.pid],
                              "tmp": str(svc["postgres"].process.log_path.parent.parent)}),
                  flush=True)
            while True:
                time.sleep(1)
        finally:
            worker.terminate()
            worker.wait(30)

run(main)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], timeout: float = 120.0) -> list[int]:
    """Wait until none of `pids` runs; those still running when time is up."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.fixture
def benchmark() -> Iterator[tuple[subprocess.Popen[str], list[int], Path]]:
    """The command running, with every process it started (services' own children too)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", BENCHMARK],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started: list[int] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"the benchmark ended before it started its services ({proc.wait()})"
        info = json.loads(line)
        started = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert set(info["pids"]) <= set(started)
        yield proc, started, Path(info["tmp"])
    finally:
        for pid in [proc.pid, *started]:  # whatever a failed test left behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(30)


def test_sigterm_stops_the_services_and_children_it_started(
    benchmark: tuple[subprocess.Popen[str], list[int], Path],
) -> None:
    proc, started, tmp = benchmark
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 128 + signal.SIGTERM
    assert [p for p in started if _alive(p)] == []  # stopped before the command exited
    assert not tmp.exists()


def test_sigkill_still_takes_the_services_and_children_with_it(
    benchmark: tuple[subprocess.Popen[str], list[int], Path],
) -> None:
    proc, started, _ = benchmark
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    assert _wait_gone(started) == []
