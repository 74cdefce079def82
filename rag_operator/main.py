"""`ragops-operator`: run the RagSystem operator (kopf) against the current kubeconfig.

Every flag has a `RAGOPS_*` environment twin (`--resync-seconds` and RAGOPS_RESYNC_SECONDS);
a flag wins. Both end up in one `OperatorConfig`, which reaches the handlers through kopf's
memo.
"""

from __future__ import annotations

import argparse
import logging
import sys
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
}
_HELP = {
    "metrics_port": "port of the operator's /metrics (0 = off; default 8080)",
    "liveness_port": "port of the /healthz liveness endpoint (0 = off; default 8081)",
    "resync_seconds": "how often each RagSystem is compared with its children (default 5)",
    "ready_timeout_seconds": "seconds a component may stay not ready before Degraded (default 300)",
    "discovery_seconds": "how often optional CRDs (Gateway API, ServiceMonitor) are looked "
    "for (default 30)",
    "max_parallel_reconciles": "RagSystems reconciled at once (default 16)",
}


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
        kind = int if OperatorConfig.model_fields[name].annotation is int else float
        env = f"{ENV_PREFIX}{name.upper()}"
        parser.add_argument(flag, dest=name, type=kind, default=None, help=f"{_HELP[name]}; {env}")
    parser.add_argument("-v", "--verbose", action="store_true", default=None, help="debug logging")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    """Flags over RAGOPS_* env over defaults; raises pydantic.ValidationError."""
    given: dict[str, Any] = {
        name: getattr(args, name) for name in FLAGS.values() if getattr(args, name) is not None
    }
    if args.verbose:
        given["verbose"] = True
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
    liveness = f"http://0.0.0.0:{cfg.liveness_port}/healthz" if cfg.liveness_port else None
    kopf.run(
        standalone=True,
        clusterwide=not cfg.namespaces,
        namespaces=list(cfg.namespaces),
        liveness_endpoint=liveness,
        memo=kopf.Memo(config=cfg),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
