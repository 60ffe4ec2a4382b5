"""map_batches on the default batch size: batches are views of one conversion per block, and
the outputs come back as one contiguous block, with the same rows as pandas computes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nebula.data._batching import map_numpy_batches
from nebula.data._blocks import compact

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def frame(rows: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "x": rng.standard_normal(rows),
            "text": [f"row-{i}" for i in range(rows)],
        }
    )


def add_z(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["z"] = batch["x"] * 2.0 + 1.0
    return batch


def keep_positive(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    mask = batch["z"] > 1.0
    return {name: column[mask] for name, column in batch.items()}


def expected(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(z=df["x"] * 2.0 + 1.0)
    return df[df["z"] > 1.0].reset_index(drop=True)


def source(df: pd.DataFrame, blocks: int = 4) -> nd.Dataset:
    return nd.from_pandas(df).repartition(blocks)


def test_default_batches_give_pandas_rows_in_order() -> None:
    df = frame()
    got = source(df).map_batches(add_z).map_batches(keep_positive).to_pandas()
    pd.testing.assert_frame_equal(got, expected(df), check_dtype=False)


def test_output_blocks_are_contiguous(tmp_path: Path) -> None:
    df = frame(20_000)
    ds = source(df, 2).map_batches(add_z, batch_size=100)
    for ref in ds.to_arrow_refs():
        block = nebula.get(ref)
        assert all(column.num_chunks == 1 for column in block.columns)
        assert block.get_total_buffer_size() <= 2 * block.nbytes + (1 << 16)
    ds.write_parquet(str(tmp_path))
    files = sorted(tmp_path.glob("*.parquet"))
    assert sum(pq.ParquetFile(path).num_row_groups for path in files) == len(files)
    got = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
    pd.testing.assert_frame_equal(got, df.assign(z=df["x"] * 2.0 + 1.0), check_dtype=False)


def test_untouched_columns_keep_their_arrow_type_and_nulls() -> None:
    table = pa.table(
        {
            "n": pa.array([1, None, 3] * 1000, type=pa.int32()),
            "s": pa.array(["a", None, "c"] * 1000),
            "x": np.arange(3000.0),
        }
    )
    block = map_numpy_batches(table, add_z, 64)
    assert block.column("n").equals(table.column("n"))
    assert block.column("s").equals(table.column("s"))
    assert block.schema.field("n").type == pa.int32()
    np.testing.assert_array_equal(block.column("z").to_numpy(), np.arange(3000.0) * 2 + 1)


def test_batches_that_disagree_on_columns_are_unified() -> None:
    def sometimes(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {"id": batch["id"]}
        if batch["id"][0] % 200 == 0:
            out["extra"] = batch["id"] * 2
        return out

    table = pa.table({"id": np.arange(1000)})
    block = map_numpy_batches(table, sometimes, 100)
    assert block.num_rows == 1000
    assert block.column("id").to_pylist() == list(range(1000))
    extra = block.column("extra").to_pylist()
    assert extra[:100] == [i * 2 for i in range(100)] and extra[100:200] == [None] * 100


def test_batches_are_read_only_views_of_numbers() -> None:
    seen: list[bool] = []

    def look(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        seen.append(batch["x"].flags.writeable)
        return {"x": batch["x"] + 0, "text": batch["text"]}

    table = pa.Table.from_pandas(frame(1000), preserve_index=False)
    block = map_numpy_batches(table, look, 256)
    assert seen == [False] * 4
    assert block.column("text").to_pylist() == table.column("text").to_pylist()


def test_lists_and_objects_survive_batching() -> None:
    def listy(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"pair": [[int(i), int(i) + 1] for i in batch["id"]]}

    block = map_numpy_batches(pa.table({"id": np.arange(50)}), listy, 8)
    assert block.column("pair").to_pylist() == [[i, i + 1] for i in range(50)]


def test_mismatched_lengths_name_the_problem() -> None:
    def bad(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"a": batch["id"], "b": batch["id"][:1]}

    with pytest.raises(ValueError, match="different lengths"):
        map_numpy_batches(pa.table({"id": np.arange(100)}), bad, 10)


def test_compact_copies_only_what_a_slice_needs() -> None:
    table = pa.table({"x": np.arange(100_000.0), "s": [str(i) for i in range(100_000)]})
    piece = compact(table.slice(10, 100))
    assert piece.equals(table.slice(10, 100))
    assert piece.get_total_buffer_size() < 10_000
    assert compact(table) is table
    chunked = pa.concat_tables([table.slice(0, 10), table.slice(10, 10)])
    assert all(column.num_chunks == 1 for column in compact(chunked).columns)


def test_groupby_after_default_batches() -> None:
    df = frame(30_000)

    def add_k(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch["k"] = batch["id"] % 7
        return batch

    got = source(df).map_batches(add_k).groupby("k").mean("x").to_pandas()
    want = df.assign(k=df["id"] % 7).groupby("k", as_index=False)["x"].mean()
    np.testing.assert_allclose(got["mean(x)"], want["x"])
    assert got["k"].tolist() == want["k"].tolist()
