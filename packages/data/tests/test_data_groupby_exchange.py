"""Group-by aggregation over key ranges: each block's partials stored once, each range
combined from slices of them; results as pandas computes them, sorted by key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pandas as pd
import pytest
from nebula.data.aggregate import AggregateFn, Count, Max, Mean, Std, Sum

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def frame(rows: int = 20_000, keys: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {"id": np.arange(rows), "k": rng.integers(0, keys, rows), "x": rng.standard_normal(rows)}
    )


def test_many_keys_match_pandas() -> None:
    df = frame()
    ds = nd.from_pandas(df).repartition(8)
    got = ds.groupby("k").aggregate(Count(), Sum("x"), Mean("x"), Max("id"), Std("x")).to_pandas()
    want = df.groupby("k").agg(
        n=("x", "size"), s=("x", "sum"), m=("x", "mean"), hi=("id", "max"), sd=("x", "std")
    )
    assert got["k"].tolist() == want.index.tolist()  # sorted by key, every group once
    assert got["count()"].tolist() == want["n"].tolist()
    assert got["max(id)"].tolist() == want["hi"].tolist()
    np.testing.assert_allclose(got["sum(x)"], want["s"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["mean(x)"], want["m"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["std(x)"], want["sd"], rtol=1e-9, atol=1e-12, equal_nan=True)


def test_output_blocks_come_in_key_order() -> None:
    df = frame(keys=20_000)
    refs = nd.from_pandas(df).repartition(6).groupby("k").mean("x").to_arrow_refs()
    blocks = [nebula.get(ref) for ref in refs]
    assert len(blocks) > 1
    keys = np.concatenate([block["k"].to_numpy() for block in blocks])
    assert np.all(np.diff(keys) > 0)


def test_python_aggregation_over_ranges() -> None:
    df = frame(rows=3000, keys=300)
    spread = AggregateFn(
        init=lambda key: (np.inf, -np.inf),
        accumulate_row=lambda acc, row: (min(acc[0], row["x"]), max(acc[1], row["x"])),
        merge=lambda a, b: (min(a[0], b[0]), max(a[1], b[1])),
        finalize=lambda acc: acc[1] - acc[0],
        name="spread",
    )
    got = nd.from_pandas(df).repartition(5).groupby("k").aggregate(spread).to_pandas()
    want = df.groupby("k")["x"].agg(lambda x: x.max() - x.min())
    np.testing.assert_allclose(got["spread"], want.to_numpy())


def test_null_keys_group_last() -> None:
    ds = nd.from_items([{"k": None if i % 4 == 0 else i % 3, "x": float(i)} for i in range(400)])
    got = ds.repartition(4).groupby("k").sum("x").take_all()
    assert [row["k"] for row in got] == [0, 1, 2, None]
    assert sum(row["sum(x)"] for row in got) == sum(range(400))


def test_blocks_are_aggregated_where_they_are_read(tmp_path: Path) -> None:
    df = frame(rows=30_000, keys=700)
    for index in range(4):
        df.iloc[index * 7500 : (index + 1) * 7500].to_parquet(tmp_path / f"part-{index}.parquet")

    def add_k2(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch["k2"] = batch["k"] % 7
        return batch

    ds = nd.read_parquet(str(tmp_path)).map_batches(add_k2)
    got = ds.groupby(["k2", "k"]).aggregate(Count(), Mean("x"), Max("id")).to_pandas()
    want = (
        df.assign(k2=df["k"] % 7)
        .groupby(["k2", "k"])
        .agg(n=("x", "size"), m=("x", "mean"), hi=("id", "max"))
        .reset_index()
    )
    assert got[["k2", "k"]].values.tolist() == want[["k2", "k"]].values.tolist()
    assert got["count()"].tolist() == want["n"].tolist()
    assert got["max(id)"].tolist() == want["hi"].tolist()
    np.testing.assert_allclose(got["mean(x)"], want["m"], rtol=1e-9)
    grouped = ds.groupby("k").mean("x")
    grouped.materialize()
    assert "ReadParquet->MapBatches(add_k2)->PartialAggregate" in grouped.stats()


def test_aggregations_over_every_column_still_expand() -> None:
    df = frame(rows=2000, keys=30)
    got = nd.from_pandas(df).repartition(3).groupby("k").sum().to_pandas()
    want = df.groupby("k").sum().reset_index()
    assert got["sum(id)"].tolist() == want["id"].tolist()
    np.testing.assert_allclose(got["sum(x)"], want["x"])


def test_partials_of_many_groups_store_only_their_own_bytes() -> None:
    """Arrow's aggregation returns chunks sliced from one buffer; a block stored that way
    would carry the buffer once per chunk."""
    import pyarrow as pa
    from nebula.data._aggregate import _partial, resolve_aggregations

    rows = 300_000
    table = pa.table({"k": np.arange(rows) % 200_000, "x": np.ones(rows)})
    partial, _ = _partial(table, ["k"], resolve_aggregations([Mean("x")], ["k"], table.schema))
    assert partial.num_rows == 200_000
    stored = sum(
        buf.size
        for column in partial.columns
        for chunk in column.chunks
        for buf in chunk.buffers()
        if buf is not None
    )
    assert stored <= 2 * partial.nbytes
