"""Helpers shared by the benchmark scripts: the entry point, timing, medians and the closing
JSON line."""

from __future__ import annotations

import json
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(main: Callable[[], Any]) -> None:
    """Run a benchmark's `main` so that SIGTERM and SIGHUP end it like Ctrl-C does.

    Python's default for those signals ends the process on the spot, skipping every `finally`
    and `with` exit, so the services a benchmark started (Postgres, Redis, a worker) would
    outlive it. Here they raise SystemExit in the main thread instead, and the benchmark
    stops what it started on the way out (exit status 128 + the signal's number).
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    result = main()
    raise SystemExit(result if isinstance(result, int) else 0)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run `fn` once; return (seconds, result)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def emit(benchmark: str, **fields: Any) -> None:
    """Print the closing line: one JSON object naming the benchmark and its figures."""
    sys.stdout.flush()
    print(json.dumps({"benchmark": benchmark, **fields}, sort_keys=False))
