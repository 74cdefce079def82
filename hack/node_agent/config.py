"""The node agent's configuration: one JSON file that ``hack.cluster`` writes before starting it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hack.node_agent.netplan import NetPlan

NODE_LABEL = "ragops.io/pods"
REAL = "real"
FAKE = "fake"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cidr: str


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent needs to know about its cluster."""

    work_dir: Path  # the agent's own state: pods, claims, images.json
    hide: tuple[str, ...]  # host paths no container may see (the cluster's state directory)
    server: str
    ca: Path
    cert: Path
    key: Path
    plan: NetPlan
    nodes: tuple[NodeSpec, ...]
    apiserver_port: int
    prometheus_url: str = ""
    prometheus_dir: Path | None = None
    backoff_initial_s: float = 10.0
    backoff_max_s: float = 300.0
    lock_fds: tuple[int, ...] = ()
    capacity: dict[str, str] = field(default_factory=dict)
    scrape_static: dict[str, list[str]] = field(default_factory=dict)
    scrape_interval: str = "1s"

    @property
    def pods_dir(self) -> Path:
        return self.work_dir / "pods"

    @property
    def claims_dir(self) -> Path:
        return self.work_dir / "claims"

    @property
    def images_file(self) -> Path:
        return self.work_dir / "images.json"

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["plan"] = self.plan.to_json()
        for key in ("work_dir", "ca", "cert", "key", "prometheus_dir"):
            if data[key] is not None:
                data[key] = str(data[key])
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        data = json.loads(path.read_text())
        prom = data.get("prometheus_dir")
        return cls(
            work_dir=Path(data["work_dir"]),
            hide=tuple(data.get("hide", ())),
            server=data["server"],
            ca=Path(data["ca"]),
            cert=Path(data["cert"]),
            key=Path(data["key"]),
            plan=NetPlan.from_json(data["plan"]),
            nodes=tuple(NodeSpec(**n) for n in data["nodes"]),
            apiserver_port=int(data["apiserver_port"]),
            prometheus_url=data.get("prometheus_url", ""),
            prometheus_dir=Path(prom) if prom else None,
            backoff_initial_s=float(data.get("backoff_initial_s", 10.0)),
            backoff_max_s=float(data.get("backoff_max_s", 300.0)),
            lock_fds=tuple(data.get("lock_fds", ())),
            capacity=dict(data.get("capacity", {})),
            scrape_static={k: list(v) for k, v in data.get("scrape_static", {}).items()},
            scrape_interval=str(data.get("scrape_interval", "1s")),
        )
