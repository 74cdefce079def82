"""A real Prometheus (Debian's package) on a free loopback port with our own config file."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from hack.services._process import ManagedProcess, ServiceStartError, free_port

PROMETHEUS_BIN = "prometheus"


def render_config(targets: Sequence[str], scrape_interval_s: float = 1.0) -> str:
    """A Prometheus config that scrapes each host:port in `targets` under job `ragops`."""
    interval = f"{max(int(scrape_interval_s * 1000), 100)}ms"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": "ragops", "static_configs": [{"targets": list(targets)}]},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as resp:
        return int(resp.status) == 200


@dataclass
class PrometheusService:
    """A running Prometheus; `reload()` re-reads the config file after `set_targets()`."""

    port: int
    config_path: Path
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_targets(self, targets: Sequence[str], scrape_interval_s: float = 1.0) -> None:
        self.config_path.write_text(render_config(targets, scrape_interval_s))
        self.reload()

    def reload(self) -> None:
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 200:
                raise ServiceStartError(f"prometheus: reload answered {resp.status}")

    def stop(self) -> None:
        self.process.stop()


def start_prometheus(
    workdir: Path, targets: Sequence[str] = (), port: int | None = None
) -> PrometheusService:
    """Start Prometheus with config, TSDB and log under `workdir`."""
    binary = shutil.which(PROMETHEUS_BIN)
    if binary is None:
        raise ServiceStartError("prometheus: the prometheus binary is not installed (make setup)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(render_config(targets))
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    process = ManagedProcess("prometheus", argv, workdir / "prometheus.log")
    process.start()
    process.wait_ready(lambda: _ready(port), timeout=30)
    return PrometheusService(port=port, config_path=config_path, process=process)
