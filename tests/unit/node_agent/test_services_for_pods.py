"""What pods find around them: cluster DNS, ClusterIP backends and Prometheus targets.

Aspects covered:
- DNS: a ClusterIP Service answers with its ClusterIP, a headless one with its ready
  endpoints (all of them when publishNotReadyAddresses) and per-hostname records; unknown
  names get NXDOMAIN; AAAA queries for known names get an empty answer;
- the Service proxy sends a ClusterIP port to the ready endpoints on the real-pod network at
  the EndpointSlice's port, and ``default/kubernetes`` to the API server;
- ServiceMonitors become one scrape job per endpoint with the Services' endpoints as targets
  (only own addresses), carrying namespace/service/pod/endpoint/job labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from dnslib import QTYPE, RCODE, DNSRecord

from hack.node_agent import dns, promsd
from hack.node_agent.netplan import NetPlan
from hack.node_agent.svcproxy import backends

PLAN = NetPlan(slot=0, cluster_id="00aa")


def service(name: str, cluster_ip: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "labels": {"app": name}},
        "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 80}], **spec},
    }


def endpoint_slice(
    svc: str, endpoints: list[tuple[str, bool, str]], port: int = 8000
) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": f"{svc}-x",
            "labels": {"kubernetes.io/service-name": svc},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": ready},
                "hostname": host or None,
                "targetRef": {"kind": "Pod", "name": f"pod-{ip}"},
            }
            for ip, ready, host in endpoints
        ],
    }


SERVICES = [
    service("api", "198.18.0.20"),
    service("db", "None"),
    service("db-all", "None", publishNotReadyAddresses=True),
    {
        "metadata": {"namespace": "default", "name": "kubernetes"},
        "spec": {"clusterIP": "198.18.0.1", "ports": [{"name": "https", "port": 443}]},
    },
]
SLICES = [
    endpoint_slice("api", [("198.18.12.2", True, ""), ("198.18.12.3", False, "")]),
    endpoint_slice("db", [("198.18.12.4", True, "db-0"), ("198.18.12.5", False, "db-1")]),
    endpoint_slice("db-all", [("198.18.12.4", True, ""), ("198.18.12.5", False, "")]),
]


def test_dns_records_follow_service_kinds() -> None:
    table = dns.records(SERVICES, SLICES)
    assert table["api.ns.svc.cluster.local"] == ["198.18.0.20"]
    assert table["db.ns.svc.cluster.local"] == ["198.18.12.4"]
    assert table["db-0.db.ns.svc.cluster.local"] == ["198.18.12.4"]
    assert "db-1.db.ns.svc.cluster.local" not in table
    assert table["db-all.ns.svc.cluster.local"] == ["198.18.12.4", "198.18.12.5"]


def test_dns_answers_known_names_and_refuses_others() -> None:
    table = dns.records(SERVICES, SLICES)
    reply = DNSRecord.parse(
        dns.answer(DNSRecord.question("api.ns.svc.cluster.local").pack(), table)
    )
    assert [str(r.rdata) for r in reply.rr] == ["198.18.0.20"]
    aaaa = DNSRecord.question("api.ns.svc.cluster.local", "AAAA").pack()
    empty = DNSRecord.parse(dns.answer(aaaa, table))
    assert empty.header.rcode == RCODE.NOERROR
    assert empty.rr == []
    missing = DNSRecord.parse(dns.answer(DNSRecord.question("api.example.com").pack(), table))
    assert missing.header.rcode == RCODE.NXDOMAIN
    assert QTYPE.A == 1


def test_proxy_backends_are_ready_endpoints_at_the_slice_port() -> None:
    table = backends(PLAN, SERVICES, SLICES, apiserver_port=6443)
    assert table[("198.18.0.20", 80)].addresses == (("198.18.12.2", 8000),)
    assert table[("198.18.0.1", 443)].addresses == (("127.0.0.1", 6443),)
    assert all(ip != "None" for ip, _ in table)


def test_proxy_skips_endpoints_outside_the_pod_network() -> None:
    fake = [endpoint_slice("api", [("198.18.4.9", True, "")])]  # a kwok pod's address
    assert ("198.18.0.20", 80) not in backends(PLAN, SERVICES, fake, apiserver_port=6443)


def test_service_monitor_becomes_a_job_with_labelled_targets(tmp_path: Path) -> None:
    monitor = {
        "metadata": {"namespace": "ns", "name": "api"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": "2s",
                    "relabelings": [
                        {
                            "sourceLabels": ["__address__"],
                            "targetLabel": "instance",
                            "action": "Replace",
                        }
                    ],
                }
            ],
        },
    }
    slices = [endpoint_slice("api", [("198.18.12.2", True, ""), ("198.18.4.7", True, "")])]
    jobs, files = promsd.translate([monitor], SERVICES, slices, PLAN.in_pod_network, tmp_path)
    assert len(jobs) == 1
    job = jobs[0]
    assert job["job_name"] == "serviceMonitor/ns/api/0"
    assert job["scrape_interval"] == "2s"
    assert job["metrics_path"] == "/metrics"
    assert job["relabel_configs"] == [
        {"source_labels": ["__address__"], "target_label": "instance", "action": "replace"}
    ]
    groups = files["serviceMonitor__ns__api__0.json"]
    assert groups == [
        {
            "targets": ["198.18.12.2:8000"],
            "labels": {
                "namespace": "ns",
                "service": "api",
                "pod": "pod-198.18.12.2",
                "endpoint": "http",
                "job": "api",
                "__meta_kubernetes_service_label_app": "api",
            },
        }
    ]


def test_prometheus_config_lists_static_and_monitor_jobs(tmp_path: Path) -> None:
    text = promsd.prometheus_config(
        [{"job_name": "serviceMonitor/ns/api/0"}], {"traefik": ["127.0.0.1:9100"]}, "1s", tmp_path
    )
    assert "job_name: traefik" in text
    assert "serviceMonitor/ns/api/0" in text
    assert f"{tmp_path}/*.yaml" in text


def test_host_processes_are_scraped_from_their_file_with_their_labels(tmp_path: Path) -> None:
    config = yaml.safe_load(
        promsd.prometheus_config([], {}, "1s", tmp_path / "rules", tmp_path / "host")
    )
    job = next(j for j in config["scrape_configs"] if j["job_name"] == promsd.HOST_JOB)
    assert job["honor_labels"] is True  # the operator's namespace/ragsystem labels stay
    assert job["file_sd_configs"][0]["files"] == [str(tmp_path / "host" / "*.json")]
    path = promsd.scrape_host_process(tmp_path / "host", "op", "127.0.0.1:9", "ragops-operator")
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:9"], "labels": {"job": "ragops-operator"}}
    ]
