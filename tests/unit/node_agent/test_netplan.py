"""The address plan of one cluster: slots of 198.18.0.0/15, never a private or public address.

Aspects covered:
- every slot lies in 198.18.0.0/15 and slots do not overlap; inside a slot the Service range,
  the fake nodes' CIDRs and the pod network are disjoint;
- real nodes split the pod network; the gateway, network and broadcast addresses are never a
  pod's; host object names fit Linux's 15-character limit and carry the cluster's id;
- traffic is refused to anything but loopback and this cluster's own ranges;
- a slot with host routes in it is not clean (so it is never leased again while in use);
- a plan spanning several slots is the same layout scaled up, over exactly the slots it
  leases, all of whose locks it holds; a span that is not a power of two, or a first slot not
  aligned to it, is refused with a message naming it.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from pathlib import Path

import pytest

from hack.node_agent.netplan import (
    POOL,
    NetPlan,
    NetPlanError,
    lease_slot,
    lock_path,
    slot_count,
    slot_is_clean,
    slot_network,
)

PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


@pytest.mark.parametrize("slot", [0, 7, 31])
def test_slot_blocks_are_disjoint_and_inside_the_benchmarking_range(slot: int) -> None:
    plan = NetPlan(slot=slot, cluster_id=f"{slot:02x}ab")
    blocks = [plan.service_cidr, *plan.fake_node_cidrs, plan.pod_network]
    for i, a in enumerate(blocks):
        assert a.subnet_of(plan.network)
        assert plan.network.subnet_of(POOL)
        assert not any(a.overlaps(p) for p in PRIVATE)
        assert not any(a.overlaps(b) for b in blocks[i + 1 :])
    assert all(n.subnet_of(plan.pod_network) for n in plan.real_node_cidrs)


def test_slots_do_not_overlap() -> None:
    nets = [NetPlan(slot=i, cluster_id="0000").network for i in range(slot_count())]
    assert slot_count() == 32
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


def test_pod_addresses_skip_network_gateway_and_broadcast() -> None:
    plan = NetPlan(slot=3, cluster_id="03cd")
    first, second = plan.real_node_cidrs
    addresses = [*plan.pod_addresses(first), *plan.pod_addresses(second)]
    assert plan.gateway not in addresses
    assert plan.pod_network.network_address not in addresses
    assert plan.pod_network.broadcast_address not in addresses
    assert len(addresses) == plan.pod_network.num_addresses - 3


def test_names_carry_the_cluster_id_and_fit_the_kernel_limit() -> None:
    plan = NetPlan(slot=31, cluster_id="1fee")
    last = plan.pod_network.broadcast_address - 1
    index = plan.pod_index(last)
    assert plan.veth(index).startswith("rp1fee")
    assert len(plan.veth(index)) <= 15
    assert plan.bridge == "rp1feebr"
    assert plan.netns(index) == f"rp1fee-{index}"


@pytest.mark.parametrize(
    ("address", "own"),
    [
        ("127.0.0.1", True),
        ("198.18.12.9", True),  # slot 0's pod network
        ("198.18.0.10", True),  # slot 0's Service range
        ("198.18.4.3", False),  # slot 0's fake node range: nothing answers there
        ("198.18.28.5", False),  # another cluster's pods
        ("10.0.0.1", False),
        ("192.0.2.1", False),
        ("8.8.8.8", False),
        ("not-an-ip", False),
    ],
)
def test_only_own_addresses_may_receive_traffic(address: str, own: bool) -> None:
    plan = NetPlan(slot=0, cluster_id="00aa")
    assert plan.is_own(address) is own
    if not own:
        with pytest.raises(NetPlanError, match="refusing to send probes"):
            plan.assert_own(address, "probes")


def test_a_slot_with_routes_in_it_is_not_clean() -> None:
    used = [ipaddress.IPv4Network("198.18.28.0/22"), ipaddress.IPv4Network("192.0.2.0/24")]
    assert slot_is_clean(0, used)
    assert not slot_is_clean(1, used)


def test_plan_round_trips_through_json() -> None:
    plan = NetPlan(slot=5, cluster_id="05ef")
    assert NetPlan.from_json(plan.to_json()) == plan


@pytest.mark.parametrize(("slot", "span"), [(0, 1), (4, 4), (28, 4), (8, 8)])
def test_a_span_is_the_same_layout_scaled_up(slot: int, span: int) -> None:
    plan = NetPlan(slot=slot, cluster_id=f"{slot:02x}ab", span=span)
    assert plan.network == ipaddress.IPv4Network(
        (int(slot_network(slot).network_address), 20 - (span.bit_length() - 1))
    )
    assert all(slot_network(s).subnet_of(plan.network) for s in range(slot, slot + span))
    assert not slot_network(slot + span - 1).overlaps(slot_network((slot + span) % slot_count()))
    blocks = [plan.service_cidr, *plan.fake_node_cidrs, plan.pod_network]
    assert all(b.num_addresses == 1024 * span for b in blocks)
    assert all(a.subnet_of(plan.network) for a in blocks)
    assert all(not a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    first, second = plan.real_node_cidrs
    assert first.num_addresses == second.num_addresses == 512 * span
    last = plan.pod_network.broadcast_address - 1
    assert len(plan.veth(plan.pod_index(last))) <= 15


def test_a_thousand_systems_and_their_floor_fit_a_span_of_eight() -> None:
    """operator_scale --large: 1,000 systems and then, beside them, the floor's 1,000; each
    about six pods (five workloads and the migration Job's) and one ClusterIP."""
    plan = NetPlan(slot=8, cluster_id="08aa", span=8)
    fake_pod_addresses = sum(n.num_addresses - 2 for n in plan.fake_node_cidrs)
    assert fake_pod_addresses >= 2 * 6 * 1000
    assert plan.service_cidr.num_addresses - 3 >= 2 * 1000
    assert NetPlan(slot=0, cluster_id="00aa").service_cidr.num_addresses - 3 < 2 * 1000


@pytest.mark.parametrize(
    ("slot", "span", "message"),
    [
        (0, 3, "span 3 must be one of 1, 2, 4, 8"),
        (2, 4, "slot 2 cannot start a span of 4"),
        (32, 1, "slot 32 cannot start a span of 1"),
    ],
)
def test_a_bad_span_or_slot_is_refused(slot: int, span: int, message: str) -> None:
    with pytest.raises(NetPlanError, match=message):
        NetPlan(slot=slot, cluster_id="00aa", span=span)


def _is_locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_span_leases_aligned_free_slots_and_holds_every_lock(tmp_path: Path) -> None:
    single = lease_slot("test", tmp_path)
    try:
        wide = lease_slot("test", tmp_path, span=4)
        try:
            assert wide.plan.slot % 4 == 0
            assert not single.plan.network.overlaps(wide.plan.network)
            slots = range(wide.plan.slot, wide.plan.slot + 4)
            assert wide.paths == tuple(lock_path(tmp_path, s) for s in slots)
            assert all(_is_locked(p) for p in wide.paths)
            assert NetPlan.from_json(wide.plan.to_json()) == wide.plan
        finally:
            wide.release()
        assert not any(_is_locked(p) for p in wide.paths)
        with pytest.raises(NetPlanError, match="span 5 must be one of"):
            lease_slot("test", tmp_path, span=5)
    finally:
        single.release()
