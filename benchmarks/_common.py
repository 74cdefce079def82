"""Helpers shared by the benchmark scripts: timing, medians and the closing JSON line."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


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
