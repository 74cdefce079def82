"""NetworkPolicy enforcement for real pods: the policies of the API server as nftables rules
inside each pod's network namespace, and the same decision for connections the Service proxy
hands on.

Kubernetes semantics (networking.k8s.io/v1): a pod selected by a policy whose policyTypes name
Ingress (or Egress) is isolated in that direction, and then only what one of the selecting
policies' rules allows gets through (peers by podSelector, namespaceSelector, both, or
ipBlock with except; ports by number, range or named container port; no peers or no ports
meaning all). A pod no policy selects is not isolated. Replies to allowed connections pass.

What differs from a CNI plugin, because of how the local cluster is built:
- Traffic from the host is always allowed: the host is the node (probes, as with every
  common plugin), and here also the Gateway's data plane (Traefik), Prometheus and DNS run on
  it, as host processes rather than pods.
- ClusterIP traffic is proxied in user space (svcproxy), so inside a pod it looks like traffic
  to or from the host. The proxy asks `allows` with the client pod's and the chosen
  endpoint's addresses and refuses (closes) a connection the policies do not allow, which is
  the decision a plugin makes after kube-proxy's DNAT.
Everything here is pure: the agent feeds it the cluster's objects and applies the scripts.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hack.node_agent.selectors import selects

TABLE = "ragops_netpol"
DIRECTIONS = ("Ingress", "Egress")


@dataclass(frozen=True)
class PodView:
    """What policies look at in a pod: where it is, its labels, its named ports."""

    namespace: str
    name: str
    ip: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # name -> (proto, port)


@dataclass(frozen=True)
class ClusterView:
    pods: tuple[PodView, ...]
    namespaces: Mapping[str, Mapping[str, str]]  # name -> labels
    policies: tuple[Mapping[str, Any], ...]

    @functools.cached_property
    def _by_ip(self) -> dict[str, PodView]:
        """Pods by address, the first of each (an address reused while its pod goes)."""
        found: dict[str, PodView] = {}
        for pod in self.pods:
            found.setdefault(pod.ip, pod)
        return found

    def pod_at(self, ip: str) -> PodView | None:
        return self._by_ip.get(ip)


def pod_view(pod: Mapping[str, Any]) -> PodView | None:
    """A pod object as policies see it; None while it has no address."""
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    meta = pod["metadata"]
    ports: dict[str, tuple[str, int]] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name"):
                ports[port["name"]] = (port.get("protocol", "TCP"), int(port["containerPort"]))
    return PodView(meta["namespace"], meta["name"], ip, dict(meta.get("labels") or {}), ports)


def cluster_view(
    pods: Iterable[Mapping[str, Any]],
    namespaces: Iterable[Mapping[str, Any]],
    policies: Iterable[Mapping[str, Any]],
) -> ClusterView:
    views = tuple(v for v in (pod_view(p) for p in pods) if v is not None)
    labels = {n["metadata"]["name"]: dict(n["metadata"].get("labels") or {}) for n in namespaces}
    return ClusterView(views, labels, tuple(policies))


# ------------------------------------------------------------------------------ selection


def policy_types(policy: Mapping[str, Any]) -> tuple[str, ...]:
    spec = policy.get("spec") or {}
    given = spec.get("policyTypes")
    if given:
        return tuple(t for t in DIRECTIONS if t in given)
    return ("Ingress", "Egress") if "egress" in spec else ("Ingress",)


def selecting(view: ClusterView, pod: PodView, direction: str) -> list[Mapping[str, Any]]:
    """The policies that isolate `pod` in `direction` (empty: not isolated)."""
    return [
        p
        for p in view.policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in policy_types(p)
        and selects((p.get("spec") or {}).get("podSelector"), pod.labels)
    ]


def peer_pods(view: ClusterView, policy_ns: str, peer: Mapping[str, Any]) -> list[PodView]:
    """Pods a podSelector / namespaceSelector peer names (not for ipBlock peers)."""
    ns_selector = peer.get("namespaceSelector")
    pod_selector = peer.get("podSelector")
    found = []
    for pod in view.pods:
        if ns_selector is None:
            in_ns = pod.namespace == policy_ns
        else:
            in_ns = selects(ns_selector, view.namespaces.get(pod.namespace, {}))
        if in_ns and selects(pod_selector, pod.labels):
            found.append(pod)
    return found


def in_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"], strict=False):
        return False
    return not any(
        address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
    )


# --------------------------------------------------------------------------- one decision


def _port_matches(
    ports: Sequence[Mapping[str, Any]], target: PodView | None, port: int, proto: str
) -> bool:
    if not ports:
        return True
    for spec in ports:
        if spec.get("protocol", "TCP") != proto:
            continue
        given = spec.get("port")
        if given is None:
            return True
        if isinstance(given, str):
            named = target.ports.get(given) if target is not None else None
            if named == (proto, port):
                return True
            continue
        if int(given) <= port <= int(spec.get("endPort") or given):
            return True
    return False


def _peer_matches(
    view: ClusterView, policy_ns: str, peers: Sequence[Mapping[str, Any]], ip: str
) -> bool:
    if not peers:
        return True
    for peer in peers:
        if "ipBlock" in peer:
            if in_block(ip, peer["ipBlock"]):
                return True
        elif any(p.ip == ip for p in peer_pods(view, policy_ns, peer)):
            return True
    return False


def _direction_allows(
    view: ClusterView, pod: PodView, direction: str, other_ip: str, port: int, proto: str
) -> bool:
    policies = selecting(view, pod, direction)
    if not policies:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    # The port is the destination's: the pod itself on ingress, the peer on egress.
    target = pod if direction == "Ingress" else view.pod_at(other_ip)
    for policy in policies:
        for rule in (policy.get("spec") or {}).get(key) or []:
            if _peer_matches(
                view, policy["metadata"]["namespace"], rule.get(peers_key) or [], other_ip
            ) and _port_matches(rule.get("ports") or [], target, port, proto):
                return True
    return False


def allows(view: ClusterView, src_ip: str, dst_ip: str, port: int, proto: str = "TCP") -> bool:
    """Whether a connection from `src_ip` to `dst_ip`:`port` is allowed: the source pod's
    egress and the destination pod's ingress (an address that is no pod is not isolated)."""
    src, dst = view.pod_at(src_ip), view.pod_at(dst_ip)
    if src is not None and not _direction_allows(view, src, "Egress", dst_ip, port, proto):
        return False
    return dst is None or _direction_allows(view, dst, "Ingress", src_ip, port, proto)


# --------------------------------------------------------------------------- nft scripts


def _port_clauses(ports: Sequence[Mapping[str, Any]], resolve: PodView | None) -> list[str] | None:
    """nft port matches of a rule's ports ([""] for all); None when none can apply."""
    if not ports:
        return [""]
    out = []
    for spec in ports:
        proto = str(spec.get("protocol", "TCP")).lower()
        given = spec.get("port")
        if given is None:
            out.append(f"meta l4proto {proto}")
        elif isinstance(given, str):
            named = resolve.ports.get(given) if resolve is not None else None
            if named is not None and named[0].lower() == proto:
                out.append(f"{proto} dport {named[1]}")
        elif spec.get("endPort"):
            out.append(f"{proto} dport {int(given)}-{int(spec['endPort'])}")
        else:
            out.append(f"{proto} dport {int(given)}")
    return out or None


def _address_clauses(
    view: ClusterView, policy_ns: str, peers: Sequence[Mapping[str, Any]], field_: str
) -> list[tuple[str, PodView | None]]:
    """(nft address match, the peer pod when it is one) for each allowed peer address."""
    if not peers:
        return [("", None)]
    out: list[tuple[str, PodView | None]] = []
    for peer in peers:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            clause = f"ip {field_} {block['cidr']}"
            if block.get("except"):
                clause += f" ip {field_} != {{ {', '.join(block['except'])} }}"
            out.append((clause, None))
        else:
            out += [(f"ip {field_} {p.ip}", p) for p in peer_pods(view, policy_ns, peer)]
    return out


def _rules(view: ClusterView, pod: PodView, direction: str) -> list[str]:
    key, peers_key, field_ = (
        ("ingress", "from", "saddr") if direction == "Ingress" else ("egress", "to", "daddr")
    )
    lines: list[str] = []
    for policy in selecting(view, pod, direction):
        ns = policy["metadata"]["namespace"]
        for rule in (policy.get("spec") or {}).get(key) or []:
            for address, peer in _address_clauses(view, ns, rule.get(peers_key) or [], field_):
                resolve = pod if direction == "Ingress" else peer
                for ports in _port_clauses(rule.get("ports") or [], resolve) or []:
                    lines.append(" ".join(part for part in (address, ports, "accept") if part))
    return list(dict.fromkeys(lines))


def nft_script(view: ClusterView, pod: PodView, host_nets: Sequence[str]) -> str:
    """The nft script of one pod (applied in its network namespace with `nft -f`): it
    replaces the pod's table atomically; a pod no policy isolates gets an empty table."""
    hosts = ", ".join(host_nets)
    chains = []
    for direction, hook, iface, field_ in (
        ("Ingress", "input", "iifname", "saddr"),
        ("Egress", "output", "oifname", "daddr"),
    ):
        if not selecting(view, pod, direction):
            continue
        body = [
            f"type filter hook {hook} priority filter; policy drop;",
            f'{iface} "lo" accept',
            "ct state established,related accept",
            f"ip {field_} {{ {hosts} }} accept",
            *_rules(view, pod, direction),
        ]
        chains.append(
            f"  chain {direction.lower()} {{\n" + "".join(f"    {b}\n" for b in body) + "  }\n"
        )
    return (
        f"table inet {TABLE}\ndelete table inet {TABLE}\n"
        f"table inet {TABLE} {{\n" + "".join(chains) + "}\n"
    )
