"""`ragops-operator`: run the RagSystem operator (kopf) against the current kubeconfig.

Every flag has a `RAGOPS_*` environment twin (`--resync-seconds` and RAGOPS_RESYNC_SECONDS);
a flag wins. Both end up in one `OperatorConfig`, which reaches the handlers through kopf's
memo. With --leader-election the process first waits for the Lease (`rag_operator.leader`),
serving /healthz and /metrics meanwhile, then runs kopf until it stops or loses the Lease.
"""

from __future__ import annotations

import argparse
import http.server
import logging
import os
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rag_operator.models import OperatorConfig
from rag_operator.models.config import ENV_PREFIX

# flag -> OperatorConfig field, for the flags that set one.
FLAGS = {
    "--metrics-port": "metrics_port",
    "--liveness-port": "liveness_port",
    "--resync-seconds": "resync_seconds",
    "--ready-timeout": "ready_timeout_seconds",
    "--discovery-seconds": "discovery_seconds",
    "--max-parallel-reconciles": "max_parallel_reconciles",
    "--leader-election-namespace": "leader_election_namespace",
    "--leader-election-id": "leader_election_id",
    "--lease-duration": "lease_duration_seconds",
}
_HELP = {
    "metrics_port": "port of the operator's /metrics (0 = off; default 8080)",
    "liveness_port": "port of the /healthz liveness endpoint (0 = off; default 8081)",
    "resync_seconds": "how often each RagSystem is compared with its children (default 5)",
    "ready_timeout_seconds": "seconds a component may stay not ready before Degraded (default 300)",
    "discovery_seconds": "how often optional CRDs (Gateway API, ServiceMonitor) are looked "
    "for (default 30)",
    "max_parallel_reconciles": "RagSystems reconciled at once (default 16)",
    "leader_election_namespace": "namespace of the leader election Lease (default: the pod's "
    "service account namespace, else default)",
    "leader_election_id": "name of the leader election Lease (default ragops-operator)",
    "lease_duration_seconds": "a standby takes over after the Lease went unrenewed this long "
    "(default 8)",
}
_TYPES = {int: int, float: float, str: str}
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ragops-operator", description=__doc__)
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        help="watch this namespace (repeatable; glob patterns allowed); default: all namespaces",
    )
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)"
    )
    for flag, name in FLAGS.items():
        kind = _TYPES[OperatorConfig.model_fields[name].annotation]  # type: ignore[index]
        env = f"{ENV_PREFIX}{name.upper()}"
        parser.add_argument(flag, dest=name, type=kind, default=None, help=f"{_HELP[name]}; {env}")
    parser.add_argument(
        "--leader-election",
        action="store_true",
        default=None,
        help="run only while holding the leader Lease (for 2+ replicas); "
        f"{ENV_PREFIX}LEADER_ELECTION",
    )
    parser.add_argument("-v", "--verbose", action="store_true", default=None, help="debug logging")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    """Flags over RAGOPS_* env over defaults; raises pydantic.ValidationError."""
    given: dict[str, Any] = {
        name: getattr(args, name) for name in FLAGS.values() if getattr(args, name) is not None
    }
    if args.verbose:
        given["verbose"] = True
    if args.leader_election:
        given["leader_election"] = True
    if args.all_namespaces:
        given["namespaces"] = ()
    elif args.namespace:
        given["namespaces"] = tuple(args.namespace)
    return OperatorConfig(**given)


def _invalid(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    flag = next((f for f, name in FLAGS.items() if name == field), None)
    where = f"{flag} / {ENV_PREFIX}{field.upper()}" if flag else f"{ENV_PREFIX}{field.upper()}"
    return f"ragops-operator: invalid setting {where}: {first.get('msg', 'invalid')}"


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path.startswith("/healthz") else 404)
        self.end_headers()
        self.wfile.write(b"standby\n")

    def log_message(self, *_: Any) -> None:
        return


def lease_namespace(cfg: OperatorConfig) -> str:
    if cfg.leader_election_namespace:
        return cfg.leader_election_namespace
    try:
        return SA_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def _elect(cfg: OperatorConfig) -> Any:
    """Wait for the Lease (serving /healthz meanwhile); the running elector."""
    from rag_operator import leader
    from rag_operator.kube import Kube, load_configuration
    from rag_operator.models.naming import FIELD_MANAGER

    d = cfg.lease_duration_seconds
    timing = leader.Timing(d, d / 4, d * 3 / 4, min(1.0, d / 8))
    identity = cfg.leader_election_identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    kube = Kube(load_configuration(), field_manager=FIELD_MANAGER)
    elector = leader.Elector(kube, lease_namespace(cfg), cfg.leader_election_id, identity, timing)
    health = None
    if cfg.liveness_port:
        health = http.server.ThreadingHTTPServer(("0.0.0.0", cfg.liveness_port), _Healthy)
        threading.Thread(target=health.serve_forever, daemon=True).start()
    elector.start()
    logging.getLogger(__name__).info(
        "standing by for lease %s as %s", cfg.leader_election_id, identity
    )
    while not elector.acquired.wait(1.0):
        pass
    if health is not None:
        health.shutdown()
        health.server_close()
    threading.Thread(target=_exit_when_lost, args=(elector,), daemon=True).start()
    return elector


def _exit_when_lost(elector: Any) -> None:
    """A leader that could not renew stops at once (exit code 1, the pod restarts as a
    standby): it must not write after another replica may have taken over."""
    elector.lost.wait()
    logging.getLogger(__name__).error("leader Lease lost: exiting")
    logging.shutdown()
    os._exit(1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValidationError as exc:
        print(_invalid(exc), file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if cfg.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # kopf logs every handler call at INFO; keep the operator's own lines readable.
    logging.getLogger("kopf").setLevel(logging.DEBUG if cfg.verbose else logging.WARNING)

    import kopf

    import rag_operator.handlers  # noqa: F401  (registers the handlers)
    from rag_operator import metrics

    if cfg.metrics_port:
        metrics.serve(cfg.metrics_port)
    elector = _elect(cfg) if cfg.leader_election else None
    if elector is None:
        metrics.LEADER.set(1)
    liveness = f"http://0.0.0.0:{cfg.liveness_port}/healthz" if cfg.liveness_port else None
    kopf.run(
        standalone=True,
        clusterwide=not cfg.namespaces,
        namespaces=list(cfg.namespaces),
        liveness_endpoint=liveness,
        memo=kopf.Memo(config=cfg),
        stop_flag=elector.lost if elector is not None else None,
    )
    if elector is not None:
        lost = elector.lost.is_set()
        elector.stopping.set()
        if elector.thread is not None:
            elector.thread.join(timeout=10)
        return 1 if lost else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
