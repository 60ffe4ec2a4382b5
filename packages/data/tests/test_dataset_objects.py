"""Rows holding Python objects Arrow has no type for: they travel pickled and come back as
the same objects in rows, numpy and pandas batches, the object store and Parquet files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nebula.data as nd
import numpy as np
import pytest

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@dataclass(frozen=True)
class Point:
    x: int
    label: str


def _points(ds: nd.Dataset) -> nd.Dataset:
    return ds.map(lambda row: {"id": row["id"], "point": Point(row["id"], f"p{row['id']}")})


def test_objects_made_in_tasks_come_back_in_rows_and_batches() -> None:
    ds = _points(nd.range(6, override_num_blocks=2))
    assert [row["point"] for row in ds.take_all()] == [Point(i, f"p{i}") for i in range(6)]
    batch = ds.take_batch(6)["point"]
    assert batch.dtype == object and batch[5] == Point(5, "p5")
    doubled = ds.map_batches(lambda b: {"x": np.array([p.x * 2 for p in b["point"]])})
    assert doubled.sum("x") == 30
    frame = ds.to_pandas()
    assert frame["point"].tolist() == [Point(i, f"p{i}") for i in range(6)]
    from_pandas = ds.map_batches(
        lambda df: df.assign(name=[p.label for p in df["point"]]), batch_format="pandas"
    )
    assert from_pandas.take(1) == [{"id": 0, "point": Point(0, "p0"), "name": "p0"}]
    assert ds.filter(lambda row: row["point"].x % 2 == 0).count() == 3
    assert ds.repartition(1).random_shuffle(seed=0).count() == 6


def test_mixed_tuples_and_none_from_items() -> None:
    rows: list[Any] = [{"t": (1, "a")}, {"t": None}, {"t": (2, "b")}]
    assert nd.from_items(rows).take_all() == rows
    assert nd.from_items([(1, "a"), (2, "b")]).take_all() == [
        {"item": (1, "a")},
        {"item": (2, "b")},
    ]


def test_objects_survive_parquet(tmp_path: Path) -> None:
    ds = _points(nd.range(4))
    ds.write_parquet(tmp_path / "points")
    back = nd.read_parquet(tmp_path / "points").take_all()
    assert sorted(back, key=lambda row: row["id"]) == ds.take_all()
