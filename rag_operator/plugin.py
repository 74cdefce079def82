"""kubectl-ragops: the `kubectl ragops` plugin (installed with the Python package).

    kubectl ragops status NAME [-n NS]        the release: phase, versions, weight, step,
                                              message and the analysis history
    kubectl ragops promote NAME [--full]      skip the current step (--full: every step)
    kubectl ragops abort NAME                 roll the canary back now
    kubectl ragops retry NAME                 try a rolled-back version again

Requests are annotations on the RagSystem (ragops.io/rollout-promote, -abort, -retry) with
a fresh value each time; the operator acts on each value once. The spec is never written,
so a GitOps tool that owns it sees no drift.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from rag_operator.models import GROUP, PLURAL, VERSION
from rag_operator.models.naming import (
    ABORT_ANNOTATION,
    PROMOTE_ANNOTATION,
    PROMOTE_FULL_PREFIX,
    RETRY_ANNOTATION,
)

REQUESTS = {"promote": PROMOTE_ANNOTATION, "abort": ABORT_ANNOTATION, "retry": RETRY_ANNOTATION}


def request_token(full: bool = False) -> str:
    token = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    return PROMOTE_FULL_PREFIX + token if full else token


def request_patch(command: str, full: bool = False) -> dict[str, Any]:
    """The merge patch that asks the operator for `command` (metadata only, never spec)."""
    return {"metadata": {"annotations": {REQUESTS[command]: request_token(full)}}}


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [_row(header, widths), *(_row(r, widths) for r in rows)]


def _value(m: Mapping[str, Any]) -> str:
    value = m.get("value")
    return "-" if value is None else f"{float(value):.4g}"


def _measured(m: Mapping[str, Any]) -> str:
    flag = "" if m.get("result") == "pass" else f" {str(m.get('result')).upper()}"
    return f"{m.get('metric')}={_value(m)}{flag}"


def format_status(obj: Mapping[str, Any]) -> str:
    """What `kubectl ragops status` prints for one RagSystem."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    status = obj.get("status") or {}
    rollout = status.get("rollout") or {}
    strategy = (spec.get("rollout") or {}).get("strategy", "RollingUpdate")
    stable = rollout.get("stableVersion") or status.get("version") or "-"
    versions = f"spec {spec.get('version', '-')}, stable {stable}"
    if rollout.get("canaryVersion"):
        versions += f", canary {rollout['canaryVersion']}"
    lines = [
        f"Name:       {meta.get('namespace', '')}/{meta.get('name', '')}",
        f"Strategy:   {strategy}",
        f"Phase:      {rollout.get('phase') or '-'} (system {status.get('phase', '-')})",
        f"Version:    {versions}",
        f"Weight:     {rollout.get('weight', 0)}%   Step: {rollout.get('step', 0)}",
        f"Message:    {rollout.get('message') or '-'}",
    ]
    runs = rollout.get("analysis") or []
    if not runs:
        lines.append("Analysis:   no runs yet")
        return "\n".join(lines)
    lines.append("Analysis (oldest first):")
    rows = []
    for run in runs:
        measured = ", ".join(_measured(m) for m in run.get("measurements") or [])
        rows.append(
            [
                str(run.get("time", "")),
                str(run.get("step", "")),
                f"{run.get('weight', 0)}%",
                str(run.get("result", "")),
                measured or str(run.get("message", "")),
            ]
        )
    lines += [
        "  " + line for line in _table(["TIME", "STEP", "WEIGHT", "RESULT", "MEASURED"], rows)
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kubectl ragops", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: context's)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG)")
    parser.add_argument("--context", default=None, help="kubeconfig context")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("status", "show the release and its analysis history"),
        ("promote", "skip the current canary step (--full: promote now)"),
        ("abort", "roll the canary back now"),
        ("retry", "try a rolled-back version again"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("name", help="the RagSystem")
        if name == "promote":
            cmd.add_argument("--full", action="store_true", help="skip every remaining step")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig, context=args.context
        )
        _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig
        )
    except (config.ConfigException, OSError) as exc:
        print(f"kubectl ragops: {exc}", file=sys.stderr)
        return 1
    namespace = args.namespace or (active.get("context") or {}).get("namespace") or "default"
    custom = client.CustomObjectsApi(api)
    try:
        if args.command == "status":
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name)
            print(format_status(obj if isinstance(obj, dict) else {}))
            return 0
        patch = request_patch(args.command, getattr(args, "full", False))
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name, patch)
    except ApiException as exc:
        print(
            f"kubectl ragops: {exc.status} {exc.reason}: {namespace}/{args.name}", file=sys.stderr
        )
        return 1
    value = next(iter(patch["metadata"]["annotations"].values()))
    print(f"ragsystem {namespace}/{args.name}: {args.command} requested ({value})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
