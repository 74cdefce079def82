"""Cluster DNS for real pods: Service names answered from the agent's caches.

Each pod's ``resolv.conf`` names the bridge address as its nameserver, with the usual search
path (``<ns>.svc.cluster.local svc.cluster.local cluster.local``, ``ndots:5``), so
``minimal-postgres`` resolves as it would under CoreDNS:

- a ClusterIP Service: its ClusterIP (the agent's Service proxy listens there);
- a headless Service: the addresses of its ready endpoints (every endpoint when
  ``publishNotReadyAddresses``), and ``<hostname>.<service>.<ns>.svc.cluster.local`` for
  endpoints that carry a hostname (StatefulSet pods);
- anything else: NXDOMAIN at once (there is no upstream resolver to ask).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

log = logging.getLogger("node-agent.dns")

DOMAIN = "cluster.local"
TTL = 5


def _service_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def records(
    services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Name (lower case, no trailing dot) -> IPv4 addresses."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sl in slices:
        if sl.get("addressType") != "IPv4":
            continue
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if svc:
            by_service.setdefault((str(meta.get("namespace", "")), svc), []).append(sl)
    out: dict[str, list[str]] = {}
    for svc in services:
        ns, name = _service_key(svc)
        spec = svc.get("spec") or {}
        fqdn = f"{name}.{ns}.svc.{DOMAIN}"
        cluster_ip = spec.get("clusterIP")
        if spec.get("type") == "ExternalName":
            continue
        if cluster_ip and cluster_ip != "None":
            out[fqdn] = [str(cluster_ip)]
            continue
        every = bool(spec.get("publishNotReadyAddresses"))
        addresses: list[str] = []
        for sl in by_service.get((ns, name), []):
            for ep in sl.get("endpoints") or []:
                ready = (ep.get("conditions") or {}).get("ready")
                if not every and ready is False:
                    continue
                ips = [str(a) for a in ep.get("addresses") or []]
                addresses += ips
                if ep.get("hostname") and ips:
                    out[f"{ep['hostname']}.{fqdn}".lower()] = ips
        out[fqdn] = sorted(set(addresses))
    return out


def answer(query: bytes, table: Mapping[str, list[str]]) -> bytes:
    """The reply to one DNS query packet."""
    request = DNSRecord.parse(query)
    reply = request.reply()
    for question in request.questions:
        name = str(question.qname).rstrip(".").lower()
        if name not in table:
            reply.header.rcode = RCODE.NXDOMAIN
            continue
        if question.qtype in (QTYPE.A, QTYPE.ANY):
            for ip in table[name]:
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
    return bytes(reply.pack())


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            reply = answer(data, self.server.table)
        except Exception as exc:  # a malformed packet must not stop the server
            log.debug("bad DNS query from %s: %s", addr, exc)
            return
        if self.transport is not None:
            self.transport.sendto(reply, addr)


class DnsServer:
    """UDP DNS on ``address:53``; ``table`` is replaced whenever Services or slices change."""

    def __init__(self, address: str, port: int = 53) -> None:
        self.address = address
        self.port = port
        self.table: dict[str, list[str]] = {}
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.address, self.port)
        )
        self._transport = transport

    def update(
        self, services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]]
    ) -> None:
        self.table = records(services, slices)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
