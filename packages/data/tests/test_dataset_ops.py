"""Union, zip, splits (materialized and streaming) and aggregations of ``nebula.data``."""

from __future__ import annotations

import pickle
import random
from collections.abc import Iterator
from typing import Any

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from nebula.data._blocks import BlockMetadata, RefBundle
from nebula.data._streaming_split import WAIT, Dealer, Piece
from nebula.data.aggregate import AbsMax, AggregateFn, Count, Max, Mean, Min, Std, Sum

import nebula
from nebula.exceptions import TaskError


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.fixture
def small_in_flight() -> Iterator[None]:
    context = nd.DataContext.get_current()
    context.max_in_flight_per_operator = 2
    try:
        yield
    finally:
        context.max_in_flight_per_operator = None


def add_hundred(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"id": batch["id"] + 100}


def ids(ds: nd.Dataset) -> list[int]:
    return [row["id"] for row in ds.take_all()]


# -- union ------------------------------------------------------------------------------


def test_union_gives_each_dataset_in_turn_and_prints_a_tree() -> None:
    first = nd.range(7, parallelism=3)
    second = nd.range(5, parallelism=2).map_batches(add_hundred)
    third = nd.from_items([{"id": -1}, {"id": -2}])
    ds = first.union(second, third)
    assert ids(ds) == [*range(7), *range(100, 105), -1, -2]
    assert ds.count() == 14
    assert str(ds) == "\n".join(
        [
            "Union",
            "+- Dataset(schema={id: int64})",
            "+- MapBatches(add_hundred)",
            "|  +- Dataset(schema={id: int64})",
            "+- Dataset(schema={id: int64})",
        ]
    )
    mapped = ds.map(lambda row: {"id": row["id"] * 2})
    assert str(mapped).splitlines()[:3] == [
        "Map(<lambda>)",
        "+- Union",
        "   +- Dataset(schema={id: int64})",
    ]
    assert ids(mapped) == [2 * i for i in ids(ds)]
    # Maps above and inside the branches still fuse with their reads.
    optimized = ds.explain().split("(Optimized) --------\n")[1].split("\n-------- ")[0]
    assert "+- ReadRange->MapBatches(add_hundred)" in optimized.splitlines()


def test_limit_on_a_union_stops_every_branch(small_in_flight: None) -> None:
    ds = nd.range(1000, parallelism=100).union(nd.range(1000, parallelism=100)).limit(5)
    assert ids(ds) == list(range(5))
    executor = ds._last_executor
    assert executor is not None
    reads = [op for op in executor.operators if op.name == "ReadRange"]
    assert len(reads) == 2
    assert all(op.stats.tasks <= 4 for op in reads)  # not 100 each


def test_union_streams_the_first_blocks_before_the_rest_run(small_in_flight: None) -> None:
    ds = nd.range(200, parallelism=50).map_batches(add_hundred).union(nd.range(200, parallelism=50))
    batches = ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0)
    assert next(batches).column("id").to_pylist() == [100, 101, 102, 103]
    executor = ds._last_executor
    assert executor is not None
    assert sum(op.stats.tasks for op in executor.operators) <= 12
    batches.close()


def test_union_schema_mismatch_known_up_front_raises_at_once() -> None:
    with pytest.raises(ValueError, match=r"missing columns \['id'\]; extra columns \['x'\]"):
        nd.range(3).union(nd.from_items([{"x": 1}]))
    with pytest.raises(ValueError, match="column 'id' is string instead of int64"):
        nd.range(3).union(nd.range(2), nd.from_items([{"id": "a"}]))


def test_union_schema_mismatch_found_while_streaming(small_in_flight: None) -> None:
    other = nd.range(10, parallelism=2).map(lambda row: {"id": str(row["id"])})
    ds = nd.range(1000, parallelism=50).union(other)
    seen = 0
    with pytest.raises(ValueError, match="dataset 1 differs from dataset 0: column 'id' is string"):
        for _ in ds.iter_rows():
            seen += 1
    assert seen < 1000  # raised once both schemas were seen, not at the end of dataset 0


def test_union_takes_columns_in_any_order_and_null_columns() -> None:
    left = nd.from_items([{"a": 1, "b": "x"}])
    right = nd.from_items([{"b": "y", "a": 2}, {"b": None, "a": 3}])
    assert left.union(right).take_all() == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 3, "b": None},
    ]
    with pytest.raises(ValueError, match="at least one other dataset"):
        left.union()


# -- zip --------------------------------------------------------------------------------


def test_zip_joins_rows_by_position_across_block_layouts() -> None:
    left = nd.range(10, parallelism=3)
    right = nd.range(10, parallelism=4).map(lambda row: {"id": row["id"] * 2, "x": "v"})
    zipped = left.zip(right)
    assert zipped.take_all() == [{"id": i, "id_1": 2 * i, "x": "v"} for i in range(10)]
    assert str(zipped).splitlines()[0] == "Zip"
    three = nd.range(4).zip(nd.range(4, parallelism=1), nd.from_items([{"id": 9, "id_1": 8}] * 4))
    assert three.columns() == ["id", "id_1", "id_2", "id_1_1"]
    assert three.take(1) == [{"id": 0, "id_1": 0, "id_2": 9, "id_1_1": 8}]
    assert left.zip(right).limit(3).count() == 3


def test_zip_with_different_row_counts_raises() -> None:
    with pytest.raises(ValueError, match="dataset 0 has 10 rows and dataset 1 has 12"):
        nd.range(10, parallelism=2).zip(nd.range(12, parallelism=3)).take_all()
    with pytest.raises(ValueError, match="same number of rows"):
        nd.range(12, parallelism=3).zip(nd.range(10)).take_all()


# -- split, split_at_indices ------------------------------------------------------------


def test_split_keeps_order_and_covers_every_row() -> None:
    ds = nd.range(100, parallelism=10)
    parts = ds.split(3)
    assert all(isinstance(part, nd.MaterializedDataset) for part in parts)
    assert [row for part in parts for row in ids(part)] == list(range(100))
    assert sorted(part.count() for part in parts) == [30, 30, 40]  # whole blocks of 10 rows
    equal = ds.split(3, equal=True)
    assert [ids(part) for part in equal] == [
        list(range(0, 33)),
        list(range(33, 66)),
        list(range(66, 99)),
    ]
    assert [part.count() for part in nd.range(2, parallelism=2).split(4)].count(0) == 2
    with pytest.raises(ValueError, match="positive integer"):
        ds.split(0)


def test_split_at_indices_matches_numpy_split() -> None:
    ds = nd.range(10, parallelism=3)
    parts = ds.split_at_indices([2, 5, 5, 20])
    expected = [list(piece) for piece in np.split(np.arange(10), [2, 5, 5, 20])]
    assert [ids(part) for part in parts] == expected
    with pytest.raises(ValueError, match="ascending"):
        ds.split_at_indices([5, 2])
    with pytest.raises(ValueError, match=">= 0"):
        ds.split_at_indices([-1])


# -- streaming_split --------------------------------------------------------------------


@nebula.remote(num_cpus=0)
class Trainer:
    def __init__(self, shard: nd.DataIterator) -> None:
        self.shard = shard

    def read(self, epochs: int) -> list[list[int]]:
        return [
            [int(v) for batch in self.shard.iter_batches(batch_size=16) for v in batch["id"]]
            for _ in range(epochs)
        ]


def test_streaming_split_feeds_concurrent_actors_each_row_once() -> None:
    # A lambda travels by value: the coordinator actor submits the tasks that run it.
    ds = nd.range(600, parallelism=24).map_batches(lambda batch: {"id": batch["id"] + 100})
    shards = ds.streaming_split(3)
    assert len(shards) == 3 and all(isinstance(shard, nd.DataIterator) for shard in shards)
    pickle.dumps(shards[0])  # a shard travels to whoever reads it
    trainers = [Trainer.remote(shard) for shard in shards]  # type: ignore[attr-defined]
    results = nebula.get([t.read.remote(2) for t in trainers], timeout=90)
    for epoch in range(2):
        seen = [value for result in results for value in result[epoch]]
        assert sorted(seen) == list(range(100, 700))  # every row exactly once per epoch
    for trainer in trainers:
        nebula.kill(trainer)


def test_streaming_split_equal_gives_the_same_rows_to_each() -> None:
    shards = nd.range(200, parallelism=7).streaming_split(3, equal=True)
    trainers = [Trainer.remote(shard) for shard in shards]  # type: ignore[attr-defined]
    results = nebula.get([t.read.remote(1) for t in trainers], timeout=90)
    seen = [result[0] for result in results]
    assert [len(rows) for rows in seen] == [66, 66, 66]
    assert len({value for rows in seen for value in rows}) == 198
    for trainer in trainers:
        nebula.kill(trainer)


def test_streaming_split_failure_reaches_every_consumer() -> None:
    def explode(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if batch["id"][0] >= 40:
            raise ValueError("bad block")
        return batch

    shards = nd.range(100, parallelism=10).map_batches(explode).streaming_split(2)
    trainers = [Trainer.remote(shard) for shard in shards]  # type: ignore[attr-defined]
    for ref in [t.read.remote(1) for t in trainers]:
        with pytest.raises(TaskError, match="bad block"):
            nebula.get(ref, timeout=90)
    for trainer in trainers:
        nebula.kill(trainer)


def _bundle(rows: int) -> RefBundle:
    return RefBundle(object(), BlockMetadata(rows, rows * 8, pa.schema([("id", pa.int64())])))


@pytest.mark.parametrize("seed", range(5))
def test_dealer_equal_hands_out_equal_rows_in_any_request_order(seed: int) -> None:
    rng = random.Random(seed)
    blocks = iter([_bundle(rng.randint(0, 9)) for _ in range(30)])
    total = 0

    def pull() -> RefBundle | None:
        nonlocal total
        bundle = next(blocks, None)
        total += bundle.meta.num_rows if bundle else 0
        return bundle

    dealer = Dealer(4, equal=True, max_buffered=3)
    got = [0] * 4
    active = set(range(4))
    while active:
        split = rng.choice(sorted(active))
        piece = dealer.next_piece(split, pull)
        if piece is None:
            active.remove(split)
        elif isinstance(piece, Piece):
            got[split] += piece.length
        else:
            assert piece == WAIT and dealer.buffer
    assert got == [total // 4] * 4


# -- groupby aggregations ---------------------------------------------------------------


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "k": rng.integers(0, 4, 200),
            "j": rng.choice(["a", "b"], 200),
            "x": rng.normal(10, 3, 200),
            "y": rng.integers(-50, 50, 200),
        }
    )


def test_groupby_builtins_match_pandas(frame: pd.DataFrame) -> None:
    ds = nd.from_pandas([frame.iloc[i : i + 50] for i in range(0, 200, 50)])
    grouped = ds.groupby("k")
    expected = frame.groupby("k")
    rows = grouped.aggregate(
        Count(),
        Sum("y"),
        Min("x"),
        Max("y"),
        Mean("x"),
        Std("x"),
        Std("y", ddof=0, alias_name="s0"),
        AbsMax("y"),
    ).take_all()
    assert [row["k"] for row in rows] == [0, 1, 2, 3]
    assert list(rows[0]) == [
        "k",
        "count()",
        "sum(y)",
        "min(x)",
        "max(y)",
        "mean(x)",
        "std(x)",
        "s0",
        "abs_max(y)",
    ]
    for row in rows:
        group = expected.get_group(row["k"])
        assert row["count()"] == len(group)
        assert row["sum(y)"] == group["y"].sum()
        assert row["min(x)"] == group["x"].min() and row["max(y)"] == group["y"].max()
        assert row["mean(x)"] == pytest.approx(group["x"].mean())
        assert row["std(x)"] == pytest.approx(group["x"].std(ddof=1))
        assert row["s0"] == pytest.approx(group["y"].std(ddof=0))
        assert row["abs_max(y)"] == group["y"].abs().max()
    means = grouped.mean(["x", "y"]).take_all()
    assert list(means[0]) == ["k", "mean(x)", "mean(y)"]
    stds = {row["k"]: row["std(y)"] for row in grouped.std().take_all()}
    assert stds == pytest.approx(expected["y"].std().to_dict())
    minima = ds.groupby(["k", "j"]).min("y").take_all()
    assert [(r["k"], r["j"], r["min(y)"]) for r in minima] == [
        (k, j, value) for (k, j), value in frame.groupby(["k", "j"])["y"].min().items()
    ]


def test_std_stays_accurate_with_a_large_mean() -> None:
    values = 1e9 + np.random.default_rng(1).normal(0, 1, 1000)
    ds = nd.from_numpy([values[i : i + 100] for i in range(0, 1000, 100)])
    assert ds.std("data") == pytest.approx(np.std(values, ddof=1), rel=1e-6)


def test_nulls_and_nan_are_ignored_unless_asked() -> None:
    rows = [
        {"k": 1, "v": 1.0},
        {"k": 1, "v": None},
        {"k": 1, "v": float("nan")},
        {"k": 2, "v": 4.0},
    ]
    ds = nd.from_items(rows, parallelism=2)
    assert ds.groupby("k").sum("v").take_all() == [{"k": 1, "sum(v)": 1.0}, {"k": 2, "sum(v)": 4.0}]
    strict = ds.groupby("k").mean("v", ignore_nulls=False).take_all()
    assert strict == [{"k": 1, "mean(v)": None}, {"k": 2, "mean(v)": 4.0}]
    counts = ds.groupby("k").aggregate(
        Count("v"), Count("v", ignore_nulls=True, alias_name="valid")
    )
    assert counts.take_all() == [
        {"k": 1, "count(v)": 3, "valid": 1},
        {"k": 2, "count(v)": 1, "valid": 1},
    ]
    single = nd.from_items([{"v": 3.0}]).std("v")
    assert np.isnan(single)  # N - ddof is 0


def test_aggregate_fn_with_rows_or_blocks() -> None:
    ds = nd.from_items([{"k": i % 2, "v": i + 1} for i in range(8)], parallelism=3)
    product = AggregateFn(
        init=lambda key: 1,
        accumulate_row=lambda acc, row: acc * row["v"],
        merge=lambda a, b: a * b,
        name="prod(v)",
    )
    keys_seen = AggregateFn(
        init=lambda key: (key, 0),
        accumulate_block=lambda acc, block: (acc[0], acc[1] + block.num_rows),
        merge=lambda a, b: (a[0], a[1] + b[1]),
        finalize=lambda acc: f"key {acc[0]}: {acc[1]} rows",
        name="rows",
    )
    rows = ds.groupby("k").aggregate(product, keys_seen, Count()).take_all()
    assert rows == [
        {"k": 0, "prod(v)": 1 * 3 * 5 * 7, "rows": "key 0: 4 rows", "count()": 4},
        {"k": 1, "prod(v)": 2 * 4 * 6 * 8, "rows": "key 1: 4 rows", "count()": 4},
    ]
    assert ds.aggregate(product) == {"prod(v)": 40320}
    with pytest.raises(ValueError, match="exactly one of accumulate_row and accumulate_block"):
        AggregateFn(init=lambda k: 0, merge=lambda a, b: a + b, name="bad")


def test_aggregation_errors_say_what_is_wrong() -> None:
    ds = nd.from_items([{"k": 1, "v": 2}])
    with pytest.raises(ValueError, match="distinct names"):
        ds.groupby("k").aggregate(Sum("v"), Sum("v"))
    with pytest.raises(KeyError, match="'nope' not in the columns"):
        ds.groupby("k").sum("nope").take_all()
    with pytest.raises(KeyError, match="groupby key"):
        ds.groupby("missing").count().take_all()
    with pytest.raises(TypeError, match="AggregateFn objects"):
        ds.groupby("k").aggregate("sum")  # type: ignore[arg-type]


def test_map_groups_sees_whole_groups(frame: pd.DataFrame) -> None:
    ds = nd.from_pandas([frame.iloc[i : i + 20] for i in range(0, 200, 20)])

    def summarize(group: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {"k": [group["k"].iloc[0]], "n": [len(group)], "top": [group["y"].max()]}
        )

    out = ds.groupby("k").map_groups(summarize, batch_format="pandas").take_all()
    expected = frame.groupby("k")["y"].agg(["size", "max"])
    assert out == [
        {"k": k, "n": int(r["size"]), "top": int(r["max"])} for k, r in expected.iterrows()
    ]

    def pairs(group: dict[str, np.ndarray]) -> Iterator[dict[str, Any]]:
        yield {"k": group["k"][:1], "j": group["j"][:1]}
        yield {"k": group["k"][:1], "j": group["j"][-1:]}

    assert ds.groupby(["k", "j"]).map_groups(pairs).count() == 2 * frame.groupby(["k", "j"]).ngroups
    whole = ds.groupby(None).map_groups(lambda batch: {"n": [len(batch["k"])]}).take_all()
    assert whole == [{"n": 200}]


def test_whole_dataset_aggregates() -> None:
    ds = nd.from_items([{"a": i, "b": i * i} for i in range(1, 11)], parallelism=3)
    assert ds.sum("a") == 55
    assert ds.sum(["a", "b"]) == {"sum(a)": 55, "sum(b)": 385}
    assert ds.min("b") == 1 and ds.max("b") == 100
    assert ds.mean() == {"mean(a)": 5.5, "mean(b)": 38.5}
    assert ds.std("a") == pytest.approx(np.std(np.arange(1, 11), ddof=1))
    assert ds.std("a", ddof=0) == pytest.approx(np.std(np.arange(1, 11)))
    assert ds.aggregate(Count(), Max("a")) == {"count()": 10, "max(a)": 10}
    assert nd.from_items([3, 1, 3, 2, 1]).unique("item") == [1, 2, 3]
    empty = ds.filter(lambda row: False)
    assert empty.sum("a") is None
    assert empty.aggregate(Count(), Mean("a")) == {"count()": None, "mean(a)": None}
