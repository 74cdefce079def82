"""The address plan of one cluster: slots of 198.18.0.0/15, never a private or public address.

Aspects covered:
- every slot lies in 198.18.0.0/15 and slots do not overlap; inside a slot the Service range,
  the fake nodes' CIDRs and the pod network are disjoint;
- real nodes split the pod network; the gateway, network and broadcast addresses are never a
  pod's; host object names fit Linux's 15-character limit and carry the cluster's id;
- traffic is refused to anything but loopback and this cluster's own ranges;
- a slot with host routes in it is not clean (so it is never leased again while in use).
"""

from __future__ import annotations

import ipaddress

import pytest

from hack.node_agent.netplan import (
    POOL,
    NetPlan,
    NetPlanError,
    slot_count,
    slot_is_clean,
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
