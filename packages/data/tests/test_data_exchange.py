"""Sort, random_shuffle and repartition(shuffle=True) on the map/reduce exchange: the same
rows as pandas gives, in pandas' order for a sort, streamed to a writer range by range."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def frame(rows: int = 4000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "x": rng.standard_normal(rows).round(2),  # many ties
            "k": rng.integers(0, 50, rows),
            "text": [f"t{i % 97:03d}" for i in range(rows)],
        }
    )


def dataset(df: pd.DataFrame, blocks: int = 6) -> nd.Dataset:
    return nd.from_pandas(df).repartition(blocks)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_pandas_stable_order(descending: bool) -> None:
    df = frame()
    got = dataset(df).sort("x", descending=descending).to_pandas()
    want = df.sort_values("x", ascending=not descending, kind="stable")
    assert got["x"].tolist() == want["x"].tolist()
    assert sorted(got["id"]) == list(range(len(df)))
    pd.testing.assert_frame_equal(
        got.sort_values("id").reset_index(drop=True), df, check_dtype=False
    )


def test_sort_on_several_keys_and_strings() -> None:
    df = frame()
    got = dataset(df).sort(["k", "text", "id"]).to_pandas()
    want = df.sort_values(["k", "text", "id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    by_text = dataset(df).sort("text", descending=True).to_pandas()
    assert by_text["text"].tolist() == sorted(df["text"], reverse=True)


def test_sort_puts_nan_and_nulls_last() -> None:
    values = [3.0, None, float("nan"), 1.0, 2.0, None, -1.0, float("nan")] * 50
    table = pa.table({"v": pa.array(values, type=pa.float64()), "i": np.arange(len(values))})
    ds = nd.from_arrow(table).repartition(5)
    for descending in (False, True):
        got = ds.sort("v", descending=descending).to_arrow()["v"]
        numbers = sorted((v for v in values if v == v and v is not None), reverse=descending)
        assert got.to_pylist()[: len(numbers)] == numbers
        tail = got.to_pylist()[len(numbers) :]
        assert all(v != v for v in tail[:100]) and tail[100:] == [None] * 100


def test_sorted_ranges_are_written_in_order(tmp_path: Path) -> None:
    df = frame(20_000)
    dataset(df, 8).sort("x").write_parquet(str(tmp_path))
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) > 1
    got = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
    assert got["x"].is_monotonic_increasing and len(got) == len(df)
    assert all(pq.ParquetFile(path).num_row_groups == 1 for path in files)


def test_sort_of_nothing_and_of_one_block() -> None:
    assert nd.from_items([{"x": 1}]).filter(lambda r: False).sort("x").take_all() == []
    assert nd.from_items([{"x": 2}, {"x": 1}]).sort("x").take_all() == [{"x": 1}, {"x": 2}]


def test_random_shuffle_keeps_every_row_and_moves_them() -> None:
    df = frame()
    got = dataset(df).random_shuffle().to_pandas()
    assert got["id"].tolist() != df["id"].tolist()
    pd.testing.assert_frame_equal(
        got.sort_values("id").reset_index(drop=True), df, check_dtype=False
    )


def test_random_shuffle_with_a_seed_repeats() -> None:
    df = frame(1000)
    first = dataset(df).random_shuffle(seed=5).to_pandas()
    again = dataset(df).random_shuffle(seed=5).to_pandas()
    pd.testing.assert_frame_equal(first, again)


def test_repartition_with_shuffle() -> None:
    df = frame(3000)
    ds = dataset(df, 3).repartition(7, shuffle=True)
    refs = ds.to_arrow_refs()
    sizes = [nebula.get(ref).num_rows for ref in refs]
    assert len(sizes) == 7 and sum(sizes) == 3000 and min(sizes) > 200
    got = ds.to_pandas()
    assert got["id"].tolist() != df["id"].tolist()
    assert sorted(got["id"]) == list(range(3000))


@pytest.mark.parametrize("join_type", ["inner", "left_outer", "full_outer", "left_anti"])
def test_join_over_many_partitions_matches_pandas(join_type: str) -> None:
    df = frame(5000)
    rng = np.random.default_rng(1)
    right = pd.DataFrame({"id": rng.choice(8000, 1500, replace=False), "w": rng.random(1500)})
    ds = dataset(df, 5).join(
        nd.from_pandas(right).repartition(3), join_type=join_type, num_partitions=7, on=("id",)
    )
    got = ds.to_pandas().sort_values("id").reset_index(drop=True)
    how = {"inner": "inner", "left_outer": "left", "full_outer": "outer"}.get(join_type)
    # Left anti: the left rows without a match.
    want = df[~df["id"].isin(right["id"])] if how is None else df.merge(right, on="id", how=how)
    want = want.sort_values("id").reset_index(drop=True)
    assert got["id"].tolist() == want["id"].tolist()
    for name in want.columns:
        np.testing.assert_array_equal(got[name].isna(), want[name].isna())
    if "w" in want:
        np.testing.assert_allclose(got["w"].fillna(-1), want["w"].fillna(-1))


def test_target_max_block_size_makes_more_smaller_blocks() -> None:
    df = frame(40_000)
    context = nd.DataContext.get_current()
    saved = context.target_max_block_size
    context.target_max_block_size = 200_000
    try:
        for ds in (dataset(df, 2).sort("x"), dataset(df, 2).random_shuffle()):
            blocks = [nebula.get(ref) for ref in ds.to_arrow_refs()]
            assert len(blocks) >= 5
            assert max(block.nbytes for block in blocks) < 2 * 200_000
            got = pd.concat([block.to_pandas() for block in blocks], ignore_index=True)
            assert sorted(got["id"]) == list(range(len(df)))
    finally:
        context.target_max_block_size = saved
