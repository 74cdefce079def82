"""`ragops-operator`: run the RagSystem operator (kopf) against the current kubeconfig."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ragops-operator", description=__doc__)
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable; glob patterns allowed); default: all namespaces",
    )
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("RAGOPS_METRICS_PORT", "8080")),
        help="port of the operator's /metrics (0 = off)",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=int(os.environ.get("RAGOPS_LIVENESS_PORT", "8081")),
        help="port of the /healthz liveness endpoint (0 = off)",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=None,
        help="how often each RagSystem is compared with its children (default 5)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=None,
        help="seconds a component may stay not ready before Degraded (default 300)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resync_seconds is not None:
        os.environ["RAGOPS_RESYNC_SECONDS"] = str(args.resync_seconds)
    if args.ready_timeout is not None:
        os.environ["RAGOPS_READY_TIMEOUT"] = str(args.ready_timeout)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # kopf logs every handler call at INFO; keep the operator's own lines readable.
    logging.getLogger("kopf").setLevel(logging.DEBUG if args.verbose else logging.WARNING)

    import kopf

    import rag_operator.handlers  # noqa: F401  (registers the handlers)
    from rag_operator import metrics

    if args.metrics_port:
        metrics.serve(args.metrics_port)
    liveness = f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None
    namespaces = [] if args.all_namespaces else list(args.namespace)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
