"""Scheduling as pure functions of a cluster view: policies, placement-group strategies and
lease placement, tested without processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nebula._control_store.membership import Membership
from nebula._protocol import NodeInfoMsg
from nebula._scheduler.bundles import bundle_resources, rewrite_request
from nebula._scheduler.placement import MAX_SPILLS, place
from nebula.plugins import (
    NodeView,
    PlacementRequest,
    SchedulingPolicy,
    fits,
    get_plugin_manager,
    hookimpl,
    placement_group_strategy_registry,
    reset_plugin_manager,
    scheduling_policy_registry,
)
from nebula.util.scheduling_strategies import NodeAffinitySchedulingStrategy

A, B, C, LOCAL = "0a", "0b", "0c", "0f"


@pytest.fixture(autouse=True)
def fresh_plugin_manager() -> Iterator[None]:
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def node(
    node_id: str,
    total: dict[str, float],
    available: dict[str, float] | None = None,
    *,
    alive: bool = True,
) -> NodeView:
    return NodeView(node_id, total, total if available is None else available, alive)


def ask(
    name: str, resources: dict[str, float], nodes: list[NodeView], local: str | None = None
) -> str | None:
    request = PlacementRequest(resources, name, local)
    return scheduling_policy_registry().get(name).select_node(request, nodes)


def bundles_on(name: str, bundles: list[dict[str, float]], nodes: list[NodeView]) -> list[str]:
    chosen = placement_group_strategy_registry().get(name).select_nodes(bundles, nodes)
    assert chosen is not None
    return chosen


# --- fits ----------------------------------------------------------------------------------


def test_fits_counts_missing_resources_as_zero() -> None:
    assert fits({"CPU": 1}, {"CPU": 1, "GPU": 0})
    assert fits({"GPU": 0}, {"CPU": 1})
    assert not fits({"GPU": 1}, {"CPU": 8})
    assert not fits({"CPU": 1.5}, {"CPU": 1})


def test_fits_tolerates_rounding_in_fractional_requests() -> None:
    left = 0.7 - 0.4  # 0.3 minus a rounding error
    assert left < 0.3
    assert fits({"CPU": 0.3}, {"CPU": left})
    ten_tenths = {"CPU": 1.0}
    for _ in range(10):
        assert fits({"CPU": 0.1}, ten_tenths)
        ten_tenths["CPU"] -= 0.1
    assert not fits({"CPU": 0.1}, ten_tenths)


# --- DEFAULT -------------------------------------------------------------------------------


def test_default_prefers_the_local_node_when_the_request_fits_now() -> None:
    nodes = [node(A, {"CPU": 8}), node(LOCAL, {"CPU": 4}, {"CPU": 0.5})]
    assert ask("DEFAULT", {"CPU": 0.5}, nodes, LOCAL) == LOCAL


def test_default_overflows_to_the_node_with_most_free_cpu() -> None:
    nodes = [
        node(LOCAL, {"CPU": 4}, {"CPU": 0.25}),
        node(A, {"CPU": 8}, {"CPU": 2}),
        node(B, {"CPU": 8}, {"CPU": 6}),
        node(C, {"CPU": 64}, alive=False),
    ]
    assert ask("DEFAULT", {"CPU": 0.5}, nodes, LOCAL) == B


def test_default_queues_on_a_feasible_node_local_first() -> None:
    busy = {"CPU": 0.0, "GPU": 0.0}
    nodes = [node(A, {"CPU": 4, "GPU": 1}, busy), node(LOCAL, {"CPU": 4, "GPU": 1}, busy)]
    assert ask("DEFAULT", {"GPU": 1}, nodes, LOCAL) == LOCAL
    assert ask("DEFAULT", {"GPU": 1}, nodes, None) == A


def test_default_returns_none_when_no_alive_node_could_ever_fit() -> None:
    nodes = [node(LOCAL, {"CPU": 4}), node(C, {"CPU": 4, "GPU": 1}, alive=False)]
    assert ask("DEFAULT", {"GPU": 1}, nodes, LOCAL) is None
    assert ask("DEFAULT", {"CPU": 5}, nodes, LOCAL) is None


# --- SPREAD --------------------------------------------------------------------------------


def test_spread_deals_round_robin_over_nodes_that_fit_now() -> None:
    nodes = [
        node(A, {"CPU": 4}, {"CPU": 2}),
        node(B, {"CPU": 8}, {"CPU": 6}),
        node(C, {"CPU": 2}, {"CPU": 0}),
    ]
    chosen = [ask("SPREAD", {"CPU": 0.5}, nodes, A) for _ in range(4)]
    # C is full: the burst alternates between A and B, however busy each looks.
    assert set(chosen) == {A, B}
    assert chosen[0] != chosen[1] and chosen[:2] == chosen[2:]


def test_spread_rotates_among_equally_loaded_nodes() -> None:
    nodes = [node(name, {"CPU": 2}) for name in (A, B, C)]
    chosen = [ask("SPREAD", {"CPU": 1}, nodes, A) for _ in range(6)]
    assert set(chosen[:3]) == {A, B, C}
    assert chosen[3:] == chosen[:3]


def test_spread_falls_back_to_feasible_then_none() -> None:
    nodes = [node(A, {"CPU": 2}, {"CPU": 0}), node(B, {"CPU": 1}, {"CPU": 0})]
    assert ask("SPREAD", {"CPU": 2}, nodes, None) == A
    assert ask("SPREAD", {"CPU": 3}, nodes, None) is None


# --- NODE_AFFINITY -------------------------------------------------------------------------


def affinity(
    node_id: str, soft: bool, resources: dict[str, float], *, spill: bool = False
) -> PlacementRequest:
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=soft, _spill_on_unavailable=spill)
    return PlacementRequest(resources, strategy, LOCAL)


def test_node_affinity_receives_the_strategy_object() -> None:
    nodes = [node(LOCAL, {"CPU": 4}), node(A, {"CPU": 1}, {"CPU": 0})]
    policy = scheduling_policy_registry().get("NODE_AFFINITY")
    # Hard or soft, the busy node is still the answer (the request waits there), as Ray's.
    assert policy.select_node(affinity(A, False, {"CPU": 1}), nodes) == A
    assert policy.select_node(affinity(A, True, {"CPU": 1}), nodes) == A
    # Soft with _spill_on_unavailable: a busy target gives way to the default placement.
    assert policy.select_node(affinity(A, True, {"CPU": 1}, spill=True), nodes) == LOCAL
    assert policy.select_node(affinity(A, False, {"CPU": 1}, spill=True), nodes) == A


def test_hard_node_affinity_to_a_dead_or_too_small_node_waits() -> None:
    nodes = [node(LOCAL, {"CPU": 4}), node(A, {"CPU": 1}, alive=False), node(B, {"CPU": 1})]
    policy = scheduling_policy_registry().get("NODE_AFFINITY")
    assert policy.select_node(affinity(A, False, {"CPU": 1}), nodes) is None
    assert policy.select_node(affinity(B, False, {"CPU": 2}), nodes) is None
    assert policy.select_node(affinity(A, True, {"CPU": 1}), nodes) == LOCAL


# --- placement of one lease request --------------------------------------------------------


def test_place_asks_the_policy_named_by_the_strategy() -> None:
    nodes = [node(LOCAL, {"CPU": 1}, {"CPU": 0}), node(A, {"CPU": 4})]
    assert place(PlacementRequest({"CPU": 1}, "DEFAULT", LOCAL), nodes).node_id == A


def test_a_spilled_request_stays_where_it_landed() -> None:
    # The sender saw room here; recomputing on this node's stale view would bounce it back.
    nodes = [node(LOCAL, {"CPU": 1}, {"CPU": 0}), node(A, {"CPU": 4})]
    request = PlacementRequest({"CPU": 1}, "DEFAULT", LOCAL)
    assert place(request, nodes, spill_count=1).node_id == LOCAL


def test_a_pinned_request_follows_its_policy_until_the_spill_limit() -> None:
    nodes = [node(LOCAL, {"CPU": 1}), node(A, {"CPU": 4})]
    request = affinity(A, False, {"CPU": 1})
    assert place(request, nodes, spill_count=1).node_id == A
    assert place(request, nodes, spill_count=MAX_SPILLS).node_id == LOCAL


def test_an_unplaceable_request_says_why() -> None:
    placement = place(PlacementRequest({"GPU": 1}, "SPREAD", LOCAL), [node(LOCAL, {"CPU": 4})])
    assert placement.node_id is None
    assert "GPU=1 with strategy SPREAD" in placement.reason
    assert "1 live node(s)" in placement.reason


def test_a_plugin_policy_gets_the_request_and_the_view() -> None:
    seen: list[PlacementRequest] = []

    class LastNode:
        def select_node(self, request: PlacementRequest, nodes: list[NodeView]) -> str | None:
            seen.append(request)
            return nodes[-1].node_id

    class Plugin:
        @hookimpl
        def nebula_register_scheduling_policies(self, registry: object) -> None:
            registry.add("LAST", LastNode())  # type: ignore[attr-defined]

    get_plugin_manager().register(Plugin(), name="last")
    policy: SchedulingPolicy = scheduling_policy_registry().get("LAST")
    assert isinstance(policy, SchedulingPolicy)
    nodes = [node(LOCAL, {"CPU": 4}), node(A, {"CPU": 4})]
    assert place(PlacementRequest({"CPU": 1}, "LAST", LOCAL), nodes).node_id == A
    assert seen == [PlacementRequest({"CPU": 1}, "LAST", LOCAL)]


def test_a_policy_without_select_node_is_refused() -> None:
    with pytest.raises(TypeError, match="must have a select_node"):
        scheduling_policy_registry().add("BROKEN", object())  # type: ignore[arg-type]


# --- placement-group strategies ------------------------------------------------------------


def test_pack_puts_every_bundle_on_one_node_when_they_fit() -> None:
    nodes = [node(A, {"CPU": 2}), node(B, {"CPU": 4})]
    assert bundles_on("PACK", [{"CPU": 1}] * 3, nodes) == [B, B, B]


def test_pack_overflows_onto_as_few_nodes_as_it_takes() -> None:
    nodes = [node(A, {"CPU": 2}), node(B, {"CPU": 3}), node(C, {"CPU": 1})]
    assert bundles_on("PACK", [{"CPU": 1}] * 5, nodes) == [B, B, B, A, A]


def test_strict_pack_waits_when_no_node_holds_them_all() -> None:
    nodes = [node(A, {"CPU": 2}), node(B, {"CPU": 2})]
    strategy = placement_group_strategy_registry().get("STRICT_PACK")
    assert strategy.select_nodes([{"CPU": 1}] * 3, nodes) is None
    assert strategy.select_nodes([{"CPU": 1}] * 2, nodes) in ([A, A], [B, B])


def test_spread_uses_each_node_before_doubling_up() -> None:
    nodes = [node(A, {"CPU": 4}), node(B, {"CPU": 4})]
    chosen = bundles_on("SPREAD", [{"CPU": 1}] * 3, nodes)
    assert sorted(chosen[:2]) == [A, B]
    assert chosen[2] in (A, B)


def test_strict_spread_needs_a_node_per_bundle() -> None:
    nodes = [node(A, {"CPU": 4}), node(B, {"CPU": 4}), node(C, {"CPU": 4}, alive=False)]
    strategy = placement_group_strategy_registry().get("STRICT_SPREAD")
    assert strategy.select_nodes([{"CPU": 1}] * 3, nodes) is None
    assert sorted(strategy.select_nodes([{"CPU": 1}] * 2, nodes) or []) == [A, B]


def test_group_strategies_only_use_free_resources() -> None:
    nodes = [node(A, {"CPU": 8}, {"CPU": 1}), node(B, {"CPU": 2})]
    assert bundles_on("PACK", [{"CPU": 2}], nodes) == [B]
    strategy = placement_group_strategy_registry().get("PACK")
    assert strategy.select_nodes([{"CPU": 3}], nodes) is None


def test_bundle_requests_are_renamed_into_the_group() -> None:
    pg = bytes.fromhex("ab" * 4)
    held = bundle_resources(pg, 1, {"CPU": 2})
    request = rewrite_request({"CPU": 1}, pg, 1)
    assert fits(request, held)
    assert not fits(rewrite_request({"CPU": 3}, pg, 1), held)
    assert not fits(rewrite_request({"CPU": 1}, pg, 0), held)
    assert fits(rewrite_request({"CPU": 2}, pg, -1), held)


# --- which node an actor's owner lives on --------------------------------------------------


def test_the_owner_node_is_matched_by_whole_host_not_by_substring() -> None:
    membership = Membership()
    for node_id, ip in ((A, "10.0.0.12"), (B, "10.0.0.1")):
        membership.add(NodeInfoMsg(bytes.fromhex(node_id), f"tcp://{ip}:7000", ip, {}), 0.0)

    def near(address: str) -> str:
        node = membership.node_near(address)
        assert node is not None
        return node.info.ip

    assert near("tcp://10.0.0.1:40001") == "10.0.0.1"
    assert near("tcp://10.0.0.12:40001") == "10.0.0.12"
    assert near("tcp://192.168.0.9:40001") == "10.0.0.12"
