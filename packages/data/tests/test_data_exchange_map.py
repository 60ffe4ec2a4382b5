"""random_shuffle and sort after a read or a map: the map side runs where blocks are made,
and the result is still every row once, reproducible with a seed, in pandas' order for a sort."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nebula.data.expressions import col

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def add_y(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["y"] = batch["id"] * 2
    return batch


def mapped(rows: int = 5000, blocks: int = 5) -> nd.Dataset:
    return nd.range(rows, override_num_blocks=blocks).map_batches(add_y, batch_format="numpy")


def test_the_shuffle_map_runs_in_the_map_tasks() -> None:
    plan = mapped().random_shuffle().explain().split("Physical Plan")[1]
    assert "MapBatches(add_y)->ShuffleMap" in plan


def test_every_row_once_and_moved() -> None:
    rows = mapped().random_shuffle().take_all()
    ids = [row["id"] for row in rows]
    assert ids != sorted(ids)
    assert sorted(ids) == list(range(5000))
    assert all(row["y"] == 2 * row["id"] for row in rows)
    assert set(rows[0]) == {"id", "y"}  # the shuffle key stays internal


def test_a_seed_repeats_and_another_differs() -> None:
    first = [row["id"] for row in mapped().random_shuffle(seed=7).take_all()]
    again = [row["id"] for row in mapped().random_shuffle(seed=7).take_all()]
    other = [row["id"] for row in mapped().random_shuffle(seed=8).take_all()]
    assert first == again
    assert first != other


def test_rows_are_spread_across_blocks() -> None:
    # Each output block draws from every input block, not from one.
    block = nebula.get(mapped(4000, 4).random_shuffle(seed=1).to_arrow_refs()[0])
    ids = block.column("id").to_numpy()
    assert len(ids) > 0
    assert len(set(ids // 1000)) == 4


def test_repartition_with_shuffle_after_a_read(tmp_path: Path) -> None:
    for index in range(3):
        ids = np.arange(index * 1000, (index + 1) * 1000)
        pq.write_table(pa.table({"id": ids, "s": [str(i) for i in ids]}), tmp_path / f"{index}.pq")
    ds = nd.read_parquet(str(tmp_path)).repartition(7, shuffle=True)
    refs = ds.to_arrow_refs()
    sizes = [nebula.get(ref).num_rows for ref in refs]
    assert len(sizes) == 7 and sum(sizes) == 3000 and min(sizes) > 200
    rows = ds.take_all()
    assert sorted(row["id"] for row in rows) == list(range(3000))
    assert all(row["s"] == str(row["id"]) for row in rows)


def test_an_empty_dataset_shuffles_to_nothing() -> None:
    ds = nd.range(100).filter(expr=col("id") < 0).random_shuffle()
    assert ds.take_all() == []


def sort_input(tmp_path: Path) -> tuple[str, pd.DataFrame]:
    rng = np.random.default_rng(4)
    rows = 3000
    x = rng.standard_normal(rows).round(1)  # many ties
    x[rng.random(rows) < 0.03] = np.nan
    df = pd.DataFrame(
        {
            "id": np.arange(rows),
            "x": x,
            "s": [f"s{v:03d}" for v in rng.integers(0, 300, rows)],
            "j": rng.integers(0, 4, rows),
        }
    )
    for index in range(4):
        part = df.iloc[index * 750 : (index + 1) * 750]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), tmp_path / f"{index}.pq")
    return str(tmp_path), df


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("keys", [["x"], ["s"], ["j", "x"]])
def test_sort_after_a_read_matches_pandas(
    tmp_path: Path, keys: list[str], descending: bool
) -> None:
    directory, df = sort_input(tmp_path)
    ds = nd.read_parquet(directory).sort(keys, descending=descending)
    assert "SortMap" in ds.explain().split("Physical Plan")[1]
    got = ds.to_pandas()
    want = df.sort_values(keys, ascending=not descending, kind="stable", na_position="last")
    assert len(ds.to_arrow_refs()) > 1 or len(df) < 1000
    assert got["id"].tolist() == want["id"].tolist()  # stable: ties keep the input order
