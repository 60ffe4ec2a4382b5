"""Dataset plans, the optimizer, the streaming executor and the transform/consume API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from nebula.data._optimizer import (
    ExchangeMapRule,
    JoinSortMapRule,
    LimitPushdownRule,
    OperatorFusionRule,
    PartialAggregationRule,
)
from nebula.data._physical import MapOperator
from nebula.data._registries import rule_registry
from nebula.data.hookspecs import OperatorRegistry, Rule, RuleRegistry

import nebula
from nebula.plugins import get_plugin_manager, hookimpl, reset_plugin_manager


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def test_print_shows_logical_plan_like_the_seed() -> None:
    ds = nd.range(100)
    ds = ds.add_column("test", lambda x: x["id"] + 1)
    ds = ds.select_columns("test")
    assert str(ds) == "Project\n+- MapBatches(add_column)\n+- Dataset(schema={id: int64})"


def test_print_streaming_example_plan() -> None:
    ds = nd.range(10).map(lambda x: {"t1": x["id"] * 2}).map(lambda x: {"t2": x["t1"] * 2})
    ds = ds.filter(lambda x: x["t2"] % 4 == 0)
    assert repr(ds).splitlines() == [
        "Filter(<lambda>)",
        "+- Map(<lambda>)",
        "+- Map(<lambda>)",
        "+- Dataset(schema={id: int64})",
    ]
    assert ds.take_all() == [{"t2": 4 * i} for i in range(10)]


def add_one(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"id": batch["id"] + 1}


def test_fusion_gives_one_operator_in_the_optimized_plan() -> None:
    ds = nd.range(20).map_batches(add_one).map(lambda r: {"id": r["id"] * 10}).filter(bool)
    text = ds.explain()
    optimized = text.split("(Optimized) --------\n")[1].split("\n")[0]
    assert optimized == "ReadRange->MapBatches(add_one)->Map(<lambda>)->Filter(bool)"
    assert "Input -> ReadRange->MapBatches(add_one)->Map(<lambda>)->Filter(bool)" in text
    assert [row["id"] for row in ds.take_all()] == [10 * (i + 1) for i in range(20)]


def test_rules_are_registered_through_the_plugin_hook() -> None:
    kinds = [type(rule) for rule in rule_registry().rules()]
    assert kinds == [
        LimitPushdownRule,
        PartialAggregationRule,
        ExchangeMapRule,
        JoinSortMapRule,
        OperatorFusionRule,
    ]


class RecordingRule(Rule):
    """A third party's rule: sees every plan the optimizer runs, changes nothing."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def apply(self, plan: Any) -> Any:
        self.seen.append(plan.name)
        return plan


def test_a_third_party_rule_runs_after_the_builtin_ones() -> None:
    rule = RecordingRule()

    class Plugin:
        @hookimpl
        def nebula_register_optimizer_rules(self, registry: RuleRegistry) -> None:
            registry.add("Recording", rule, description="records plans")

    reset_plugin_manager()
    try:
        get_plugin_manager().register(Plugin(), name="recording")
        assert rule_registry().names() == [
            "LimitPushdownRule",
            "PartialAggregationRule",
            "ExchangeMapRule",
            "JoinSortMapRule",
            "OperatorFusionRule",
            "Recording",
        ]
        assert rule_registry().registration("Recording").plugin == "recording"
        assert nd.range(10).map_batches(lambda b: b).take_all() == [{"id": i} for i in range(10)]
        assert rule.seen and rule.seen[-1].startswith("ReadRange->MapBatches")
    finally:
        reset_plugin_manager()


def test_rule_and_operator_registries_check_what_they_get() -> None:
    with pytest.raises(TypeError, match=r"must be an instance of a nebula\.data\.hookspecs\.Rule"):
        RuleRegistry().add("NotARule", object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a callable exchange"):
        OperatorRegistry().add("Broken", 3)  # type: ignore[arg-type]


def test_limit_is_pushed_below_one_to_one_maps() -> None:
    ds = nd.range(1000, parallelism=10).map(lambda r: {"x": r["id"]}).limit(5).limit(7)
    optimized = ds.explain().split("(Optimized) --------\n")[1].split("\n")
    assert optimized[:3] == ["Map(<lambda>)", "+- Limit[limit=5]", "+- ReadRange"]
    assert ds.take_all() == [{"x": i} for i in range(5)]


def test_limit_stops_upstream_work() -> None:
    nd.DataContext.get_current().max_in_flight_per_operator = 2
    try:
        ds = nd.range(1000, parallelism=100).limit(15)
        assert [row["id"] for row in ds.iter_rows()] == list(range(15))
        assert ds._last_executor is not None
        read = ds._last_executor.operators[1]
        assert read.name == "ReadRange" and read.stats.tasks <= 4  # not all 100
        assert "ReadRange: " in ds.stats()
    finally:
        nd.DataContext.get_current().max_in_flight_per_operator = None


@contextlib.contextmanager
def busy_after_each_dispatch() -> Iterator[list[int]]:
    """The work a map operator has in flight after each of its dispatches."""
    seen: list[int] = []
    original = MapOperator.dispatch

    def watching(self: MapOperator) -> None:
        original(self)
        seen.append(self._busy())

    MapOperator.dispatch = watching  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        MapOperator.dispatch = original  # type: ignore[method-assign]


def test_pipeline_over_more_blocks_than_the_in_flight_bound() -> None:
    context = nd.DataContext.get_current()
    context.max_in_flight_per_operator = 3
    try:
        with busy_after_each_dispatch() as seen:
            ds = nd.range(400, parallelism=40).map_batches(add_one).repartition(40)
            ds = ds.map_batches(add_one, batch_size=3)
            rows = [int(v) for batch in ds.iter_batches(batch_size=7) for v in batch["id"]]
    finally:
        context.max_in_flight_per_operator = None
    assert rows == [i + 2 for i in range(400)]
    assert max(seen) <= 3
    assert "40 blocks" in ds.stats()


def test_iter_batches_streams_before_everything_is_computed() -> None:
    context = nd.DataContext.get_current()
    context.max_in_flight_per_operator = 2
    try:
        ds = nd.range(100, parallelism=50).map_batches(add_one)
        batches = ds.iter_batches(batch_size=None, batch_format="pyarrow")
        first = next(batches)
        assert first.column("id").to_pylist() == [1, 2]
        executor = ds._last_executor
        assert executor is not None
        assert executor.operators[-1].stats.tasks <= 4
        batches.close()
    finally:
        context.max_in_flight_per_operator = None


def test_batch_formats() -> None:
    ds = nd.from_items([{"a": i, "b": float(i)} for i in range(10)])
    numpy_batch = ds.take_batch(4)
    assert set(numpy_batch) == {"a", "b"} and isinstance(numpy_batch["a"], np.ndarray)
    assert isinstance(ds.take_batch(4, batch_format="pandas"), pd.DataFrame)
    assert ds.take_batch(4, batch_format="pyarrow").num_rows == 4

    def double(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(b=df["b"] * 2)

    def to_arrow(table: pa.Table) -> pa.Table:
        return table.select(["b"])

    out = ds.map_batches(double, batch_format="pandas").map_batches(
        to_arrow, batch_format="pyarrow"
    )
    assert [row["b"] for row in out.take_all()] == [2.0 * i for i in range(10)]
    sizes = [len(b["a"]) for b in ds.iter_batches(batch_size=4)]
    assert sizes == [4, 4, 2]
    with pytest.raises(ValueError, match="batch_format"):
        ds.map_batches(double, batch_format="torch")


class AddConstant:
    def __init__(self, constant: int) -> None:
        self.constant = constant

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import os

        return {"id": batch["id"] + self.constant, "pid": np.full(len(batch["id"]), os.getpid())}


def test_callable_class_runs_on_an_actor_pool() -> None:
    ds = nd.range(40, parallelism=8).map_batches(
        AddConstant, fn_constructor_args=(100,), concurrency=2
    )
    assert "MapBatches(AddConstant)" in ds.explain().split("Physical Plan")[1]
    rows = ds.take_all()
    assert [row["id"] for row in rows] == [100 + i for i in range(40)]
    assert 1 <= len({row["pid"] for row in rows}) <= 2
    with pytest.raises(ValueError, match="concurrency"):
        nd.range(3).map_batches(AddConstant)


def test_row_transforms_and_columns() -> None:
    ds = nd.from_items([{"a": i, "b": i * i} for i in range(6)])
    assert ds.flat_map(lambda r: [r, r]).count() == 12
    assert ds.filter(lambda r: r["a"] % 2 == 0).take_all() == [
        {"a": 0, "b": 0},
        {"a": 2, "b": 4},
        {"a": 4, "b": 16},
    ]
    assert ds.drop_columns(["b"]).columns() == ["a"]
    assert ds.select_columns(["b", "a"]).take(1) == [{"b": 0, "a": 0}]
    assert ds.add_column("c", lambda df: df["a"] + df["b"]).take(2)[1] == {"a": 1, "b": 1, "c": 2}
    assert ds.schema() == pa.schema([("a", pa.int64()), ("b", pa.int64())])
    assert ds.map(lambda r: {"s": str(r["a"])}).schema() == pa.schema([("s", pa.string())])


def test_sources_from_memory() -> None:
    assert nd.from_items([1, 2, 3]).take_all() == [{"item": 1}, {"item": 2}, {"item": 3}]
    assert nd.from_numpy(np.arange(4)).take_all() == [{"data": i} for i in range(4)]
    images = nd.from_numpy(np.zeros((3, 2, 2)))
    batch = images.take_batch(3)
    assert batch["data"].shape == (3, 2, 2)
    frame = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert nd.from_pandas(frame).to_pandas().equals(frame)
    table = pa.table({"z": [1.5, 2.5]})
    assert nd.from_arrow([table, table]).count() == 4


def test_consumption_helpers(capsys: pytest.CaptureFixture[str]) -> None:
    ds = nd.range(30, parallelism=3)
    assert ds.count() == 30
    assert ds.take(2) == [{"id": 0}, {"id": 1}]
    assert len(ds.take_all()) == 30
    assert [row["id"] for row in ds.iter_rows()] == list(range(30))
    ds.show(2)
    assert capsys.readouterr().out == "{'id': 0}\n{'id': 1}\n"
    materialized = ds.map_batches(add_one).materialize()
    assert materialized.num_blocks() == 3
    assert materialized.count() == 30
    assert "ReadRange->MapBatches(add_one): 3 tasks, 3 blocks, 30 rows" in materialized.stats()


def test_repartition_shuffle_sort() -> None:
    ds = nd.range(50, parallelism=5)
    parts = ds.repartition(4).materialize()
    assert parts.num_blocks() == 4
    assert [row["id"] for row in parts.take_all()] == list(range(50))
    shuffled = [row["id"] for row in ds.random_shuffle(seed=7).take_all()]
    assert sorted(shuffled) == list(range(50)) and shuffled != list(range(50))
    assert shuffled == [row["id"] for row in ds.random_shuffle(seed=7).take_all()]
    values = [(i * 37) % 50 for i in range(50)]
    items = nd.from_items([{"v": v, "w": -v} for v in values], parallelism=5)
    assert [row["v"] for row in items.sort("v").take_all()] == sorted(values)
    assert [row["v"] for row in items.sort("v", descending=True).take_all()] == sorted(values)[::-1]


def test_groupby_aggregates() -> None:
    rows = [{"k": ["a", "b", "c"][i % 3], "v": i} for i in range(12)]
    ds = nd.from_items(rows, parallelism=4)
    assert ds.groupby("k").count().take_all() == [
        {"k": "a", "count()": 4},
        {"k": "b", "count()": 4},
        {"k": "c", "count()": 4},
    ]
    sums = {row["k"]: row["sum(v)"] for row in ds.groupby("k").sum("v").take_all()}
    assert sums == {"a": 18, "b": 22, "c": 26}
    means = {row["k"]: row["mean(v)"] for row in ds.groupby("k").mean("v").take_all()}
    assert means == {"a": 4.5, "b": 5.5, "c": 6.5}


def test_execution_options_cap_the_cpus_planned_for() -> None:
    context = nd.DataContext.get_current()
    assert context.in_flight_bound() == 4  # twice the cluster's 2 CPUs
    context.execution_options.resource_limits.cpu = 1
    context.execution_options.preserve_order = True
    try:
        limited_bound = context.in_flight_bound()
        with busy_after_each_dispatch() as seen:
            ds = nd.range(200, parallelism=20).map_batches(add_one)
            assert [row["id"] for row in ds.iter_rows()] == [i + 1 for i in range(200)]
    finally:
        context.execution_options = nd.ExecutionOptions()
    assert limited_bound == 2 and max(seen) <= 2


def test_num_blocks_is_known_once_materialized() -> None:
    ds = nd.range(100, parallelism=5)
    with pytest.raises(NotImplementedError, match="materialize"):
        ds.num_blocks()
    assert ds.materialize().num_blocks() == 5


def test_execution_options_cap_the_store_bytes() -> None:
    context = nd.DataContext.get_current()
    unlimited = context.memory_limit()
    context.execution_options.resource_limits.object_store_memory = 2**20
    try:
        assert context.memory_limit() == 2**20 < unlimited
        context.object_store_memory_limit = 2**19  # the smaller of the two holds
        assert context.memory_limit() == 2**19
    finally:
        context.execution_options = nd.ExecutionOptions()
        context.object_store_memory_limit = None
    assert context.memory_limit() == unlimited
