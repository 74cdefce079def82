"""How long each backing service takes from launch to ready (median of N warm starts).

Warm means the binaries, jars and the Postgres template data directory are already in the
cache (`make setup`); each start gets a fresh data directory and a free port.
Prints one JSON line: postgres_s, redis_s, prometheus_s, neo4j_s (medians), plus all samples.
A full run also starts Neo4j without its class-data-sharing archive (the baseline, same run)
and reports neo4j_without_cds_s and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from benchmarks._common import emit, median, run, timed
from hack.paths import cache_dir
from hack.services import start_neo4j, start_postgres, start_prometheus, start_redis


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def _starters() -> dict[str, Callable[[Path], _Stoppable]]:
    return {
        "postgres": lambda d: start_postgres(d, cache_dir()),
        "redis": lambda d: start_redis(d),
        "prometheus": lambda d: start_prometheus(d),
        "neo4j": lambda d: start_neo4j(d, cache_dir()),
    }


def _baselines() -> dict[str, Callable[[Path], _Stoppable]]:
    """The same JVM without the class-data-sharing archive that hack/neo4j/build.sh records."""
    return {"neo4j_without_cds": lambda d: start_neo4j(d, cache_dir(), class_sharing=False)}


def measure(name: str, start: Callable[[Path], _Stoppable], runs: int) -> list[float]:
    samples = []
    # One unmeasured start warms the OS page cache and any one-time template.
    for i in range(runs + 1):
        with tempfile.TemporaryDirectory(prefix=f"ragops-bench-{name}-") as tmp:
            workdir = Path(tmp)
            seconds, service = timed(lambda: start(workdir))  # noqa: B023
            service.stop()
        if i > 0:
            samples.append(round(seconds, 3))
        print(f"{name}: start {i} took {seconds:.2f} s", file=sys.stderr)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured starts per service")
    parser.add_argument("--quick", action="store_true", help="1 start per service")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    samples = {name: measure(name, start, runs) for name, start in _starters().items()}
    if not args.quick:
        samples |= {name: measure(name, start, runs) for name, start in _baselines().items()}
    medians = {f"{name}_s": round(median(values), 3) for name, values in samples.items()}
    ratio = {}
    if "neo4j_without_cds_s" in medians:
        ratio["neo4j_cds_speedup"] = round(medians["neo4j_without_cds_s"] / medians["neo4j_s"], 2)
    emit("service_start", runs=runs, **medians, **ratio, samples=samples)


if __name__ == "__main__":
    run(main)
