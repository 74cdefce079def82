"""``python -m hack.node_agent --config FILE``: run the node agent until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from hack.node_agent.agent import Agent
from hack.node_agent.config import AgentConfig
from hack.node_agent.reaper import become_subreaper


async def _main(cfg: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if not become_subreaper():
        logging.getLogger("hack.node_agent").warning(
            "not the child subreaper: pods' orphans go to init, which reaps them on its own time"
        )
    await Agent(cfg).run(stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.node_agent", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="agent.json of the cluster")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if os.geteuid() != 0:
        print(
            "node agent: must run as root (it makes network namespaces, mounts and cgroups)",
            file=sys.stderr,
        )
        return 2
    cfg = AgentConfig.load(args.config)
    asyncio.run(_main(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
