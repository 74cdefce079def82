"""ServiceMonitor and PrometheusRule objects turned into Prometheus configuration.

Debian's Prometheus has no Kubernetes discovery, so the agent does what the Prometheus
Operator would: one scrape job per ServiceMonitor endpoint (``serviceMonitor/<ns>/<name>/<i>``,
with its interval, timeout, path, scheme, params and relabelings), whose targets are the
endpoints of the selected Services, written as file-SD groups that Prometheus re-reads by
itself. Targets carry ``namespace``, ``service``, ``pod``, ``endpoint`` and ``job`` (the Service
name, or the value of the Service label named by ``jobLabel``), and, for relabelings only, the
Service's labels as ``__meta_kubernetes_service_label_<name>``. PrometheusRule groups become
rule files. Only addresses of this cluster's pod network are ever targets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hack.node_agent.selectors import selects

Obj = Mapping[str, Any]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def relabel(configs: Sequence[Obj]) -> list[dict[str, Any]]:
    """Prometheus Operator relabelings (camelCase) as Prometheus relabel_configs."""
    out = []
    for cfg in configs:
        item = {_snake(k): v for k, v in cfg.items()}
        if "action" in item:
            item["action"] = str(item["action"]).lower()
        out.append(item)
    return out


def meta_labels(service: Obj) -> dict[str, str]:
    """The Service's labels as Kubernetes discovery gives them to relabelings."""
    labels = (service.get("metadata") or {}).get("labels") or {}
    return {
        "__meta_kubernetes_service_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): str(v)
        for k, v in labels.items()
    }


def job_name(sm: Obj, index: int) -> str:
    meta = sm.get("metadata") or {}
    return f"serviceMonitor/{meta.get('namespace')}/{meta.get('name')}/{index}"


def _file_name(job: str) -> str:
    return job.replace("/", "__") + ".json"


def translate(
    monitors: Iterable[Obj],
    services: Iterable[Obj],
    slices: Iterable[Obj],
    is_own: Callable[[str], bool],
    sd_dir: Path,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(scrape jobs, file-SD groups by file name) for the given objects (pure)."""
    services = list(services)
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if name and sl.get("addressType") == "IPv4":
            by_service.setdefault((str(meta.get("namespace")), name), []).append(sl)
    jobs: list[dict[str, Any]] = []
    files: dict[str, list[dict[str, Any]]] = {}
    for sm in sorted(monitors, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        meta, spec = sm.get("metadata") or {}, sm.get("spec") or {}
        ns_sel = spec.get("namespaceSelector") or {}
        if ns_sel.get("any"):
            namespaces: set[str] | None = None
        else:
            namespaces = set(ns_sel.get("matchNames") or [meta.get("namespace")])
        chosen = [
            s
            for s in services
            if (namespaces is None or s["metadata"]["namespace"] in namespaces)
            and selects(spec.get("selector") or {}, s["metadata"].get("labels") or {})
        ]
        for i, ep in enumerate(spec.get("endpoints") or []):
            name = job_name(sm, i)
            job: dict[str, Any] = {
                "job_name": name,
                "metrics_path": ep.get("path", "/metrics"),
                "scheme": ep.get("scheme", "http"),
                "honor_labels": bool(ep.get("honorLabels", False)),
                "file_sd_configs": [
                    {"files": [str(sd_dir / _file_name(name))], "refresh_interval": "5s"}
                ],
            }
            if ep.get("interval"):
                job["scrape_interval"] = ep["interval"]
            if ep.get("scrapeTimeout"):
                job["scrape_timeout"] = ep["scrapeTimeout"]
            if ep.get("params"):
                job["params"] = ep["params"]
            if ep.get("relabelings"):
                job["relabel_configs"] = relabel(ep["relabelings"])
            if ep.get("metricRelabelings"):
                job["metric_relabel_configs"] = relabel(ep["metricRelabelings"])
            jobs.append(job)
            groups = []
            for svc in chosen:
                s_ns, s_name = svc["metadata"]["namespace"], svc["metadata"]["name"]
                job_label = (svc["metadata"].get("labels") or {}).get(
                    spec.get("jobLabel", ""), s_name
                )
                for sl in by_service.get((s_ns, s_name), []):
                    port = next(
                        (p.get("port") for p in sl.get("ports") or [] if _port_matches(ep, p)), None
                    )
                    if port is None:
                        continue
                    for endpoint in sl.get("endpoints") or []:
                        ref = endpoint.get("targetRef") or {}
                        for addr in endpoint.get("addresses") or []:
                            if not is_own(str(addr)):
                                continue
                            groups.append(
                                {
                                    "targets": [f"{addr}:{port}"],
                                    "labels": {
                                        "namespace": s_ns,
                                        "service": s_name,
                                        "pod": str(ref.get("name", "")),
                                        "endpoint": str(ep.get("port", port)),
                                        "job": job_label,
                                        **meta_labels(svc),
                                    },
                                }
                            )
            files[_file_name(name)] = sorted(groups, key=lambda g: g["targets"][0])
    return jobs, files


def _port_matches(endpoint: Obj, slice_port: Obj) -> bool:
    if "port" in endpoint:
        return bool(slice_port.get("name", "") == endpoint["port"])
    target = endpoint.get("targetPort")
    return target is not None and str(slice_port.get("port")) == str(target)


def rule_files(rules: Iterable[Obj]) -> dict[str, str]:
    """One rule file per PrometheusRule (its groups as Prometheus reads them)."""
    out = {}
    for rule in rules:
        meta = rule.get("metadata") or {}
        groups = (rule.get("spec") or {}).get("groups") or []
        out[f"{meta.get('namespace')}__{meta.get('name')}.yaml"] = yaml.safe_dump(
            {"groups": groups}, sort_keys=False
        )
    return out


HOST_JOB = "host-processes"


def prometheus_config(
    jobs: Sequence[Mapping[str, Any]],
    static: Mapping[str, Sequence[str]],
    interval: str,
    rules_dir: Path,
    host_dir: Path | None = None,
) -> str:
    """The whole prometheus.yml: static jobs (Traefik), the host processes' job (file-SD groups
    in ``host_dir``, see `scrape_host_process`), then one job per ServiceMonitor."""
    static_jobs: list[dict[str, Any]] = [
        {"job_name": name, "static_configs": [{"targets": list(targets)}]}
        for name, targets in sorted(static.items())
    ]
    if host_dir is not None:
        static_jobs.append(
            {
                "job_name": HOST_JOB,
                "honor_labels": True,
                "file_sd_configs": [
                    {"files": [str(host_dir / "*.json")], "refresh_interval": "2s"}
                ],
            }
        )
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules_dir / "*.yaml")],
        "scrape_configs": static_jobs + [dict(j) for j in jobs],
    }
    return yaml.safe_dump(config, sort_keys=False)


def scrape_host_process(host_dir: Path, name: str, address: str, job: str) -> Path:
    """Have Prometheus scrape a process of the host (the operator run outside a pod) at
    ``address`` as job ``job``, with its own labels kept (honorLabels, as the chart's
    ServiceMonitor does); delete the returned file to stop."""
    host_dir.mkdir(parents=True, exist_ok=True)
    path = host_dir / f"{name}.json"
    group = [{"targets": [address], "labels": {"job": job}}]
    write_if_changed(path, json.dumps(group, indent=1) + "\n")
    return path


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def write_targets(sd_dir: Path, files: Mapping[str, list[dict[str, Any]]]) -> None:
    sd_dir.mkdir(parents=True, exist_ok=True)
    for name, groups in files.items():
        write_if_changed(sd_dir / name, json.dumps(groups, indent=1) + "\n")
    for stale in sd_dir.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
