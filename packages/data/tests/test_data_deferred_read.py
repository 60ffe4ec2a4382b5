"""A Parquet read fused with the steps after it decodes only the columns they use, and
every result is the same as reading the whole file first."""

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
from nebula.data._aggregate import PartialAggregateTransform
from nebula.data._deferred import DeferredBlock
from nebula.data._physical import run_transform
from nebula.data._read import ParquetFormat, _open_parquet, _read_task
from nebula.data._transforms import (
    UDF,
    ChainTransform,
    ExpressionFilterTransform,
    MapBatchesTransform,
    ProjectTransform,
)
from nebula.data.aggregate import Count, Mean, Sum
from nebula.data.expressions import col

import nebula

ROWS, FILES = 4000, 4


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    directory = tmp_path_factory.mktemp("deferred_read")
    rng = np.random.default_rng(5)
    x = rng.standard_normal(ROWS)
    x[rng.random(ROWS) < 0.05] = np.nan
    df = pd.DataFrame(
        {
            "id": np.arange(ROWS, dtype=np.int64),
            "x": x,
            "y": rng.integers(0, 100, ROWS),
            "text": [f"row {i}" if i % 7 else None for i in range(ROWS)],
        }
    )
    per_file = ROWS // FILES
    for index in range(FILES):
        part = df.iloc[index * per_file : (index + 1) * per_file]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), directory / f"{index}.pq")
    return directory, df


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The columns every DeferredBlock in this process decodes (None: the whole file)."""
    names: list[str] = []
    original = DeferredBlock._decode

    def recording(self: DeferredBlock, columns: list[str] | None) -> pa.Table:
        names.extend(columns if columns is not None else ["<all>"])
        return original(self, columns)

    monkeypatch.setattr(DeferredBlock, "_decode", recording)
    return names


def add_k(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["k"] = batch["id"] % 10
    return batch


def _run(path: Path, *stages: Any, columns: list[str] | None = None) -> pa.Table:
    """Read ``path`` and run ``stages`` on it in this process, as a fused task does."""
    task = _read_task(ParquetFormat(columns), (*_local(path), None), False, "read_parquet")
    chain = ChainTransform([(type(stage).__name__, stage) for stage in stages])
    block, _ = run_transform(task, chain)
    return block


def _local(path: Path) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem(), str(path)


MAP_K = MapBatchesTransform(UDF.of(add_k), None, "numpy")
PARTIAL_MEAN = PartialAggregateTransform(["k"], [Mean("x")])


def test_map_then_partial_aggregate_decodes_the_columns_used(
    files: tuple[Path, pd.DataFrame], decoded: list[str]
) -> None:
    path = files[0] / "0.pq"
    deferred = _run(path, MAP_K, PARTIAL_MEAN)
    assert sorted(decoded) == ["id", "x"]
    whole = pq.read_table(path)
    eager = PARTIAL_MEAN(MAP_K(whole))
    assert deferred.equals(eager)


def test_a_read_then_partial_aggregate_decodes_keys_and_columns(
    files: tuple[Path, pd.DataFrame], decoded: list[str]
) -> None:
    path = files[0] / "1.pq"
    partial = PartialAggregateTransform(["y"], [Count(), Sum("x")])
    deferred = _run(path, partial)
    assert sorted(decoded) == ["x", "y"]
    assert deferred.equals(partial(pq.read_table(path)))


def test_steps_needing_every_column_get_the_whole_file(
    files: tuple[Path, pd.DataFrame], decoded: list[str]
) -> None:
    path = files[0] / "2.pq"
    block = _run(path, MAP_K)
    assert decoded.count("text") == 1 and block.column_names == ["id", "x", "y", "text", "k"]
    assert block.equals(MAP_K(pq.read_table(path)))
    decoded.clear()
    assert _run(path, ProjectTransform(select=["y"])).equals(pq.read_table(path, columns=["y"]))
    assert decoded == ["y"]


def test_a_function_reading_every_column_sees_them_all(
    files: tuple[Path, pd.DataFrame],
) -> None:
    path = files[0] / "3.pq"

    def copy_all(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**batch, "k": batch["id"] % 10, "n": np.full(len(batch["id"]), len(batch))}

    copying = MapBatchesTransform(UDF.of(copy_all), None, "numpy")
    partial = PartialAggregateTransform(["k"], [Sum("n"), Mean("x")])
    assert _run(path, copying, partial).equals(partial(copying(pq.read_table(path))))


def test_dropping_a_column_after_the_map_still_finds_it(
    files: tuple[Path, pd.DataFrame], decoded: list[str]
) -> None:
    path = files[0] / "0.pq"
    drop = ProjectTransform(drop=["text"])
    out = _run(path, MAP_K, drop, PARTIAL_MEAN)
    assert out.equals(PARTIAL_MEAN(MAP_K(pq.read_table(path))))
    assert sorted(decoded) == ["id", "text", "x"]


def test_a_missing_key_names_every_column(files: tuple[Path, pd.DataFrame]) -> None:
    with pytest.raises(KeyError, match="text"):
        _run(files[0] / "0.pq", PartialAggregateTransform(["nope"], [Count()]))


def test_the_columns_a_read_asked_for_are_all_it_has(files: tuple[Path, pd.DataFrame]) -> None:
    path = files[0] / "0.pq"
    out = _run(path, MAP_K, columns=["x", "id"])
    assert out.column_names == ["x", "id", "k"]
    eager = MAP_K(pq.read_table(path, columns=["x", "id"]))
    assert out.equals(eager)


def test_a_closed_block_reopens_its_file(files: tuple[Path, pd.DataFrame]) -> None:
    path = files[0] / "1.pq"
    task = _read_task(ParquetFormat(), (*_local(path), None), False, "read_parquet")
    block = task.open_deferred()
    assert isinstance(block, DeferredBlock)
    block.close()
    assert block.table().equals(pq.read_table(path))


def _open_files(path: Path) -> int:
    """How many descriptors this process holds open on ``path``."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if fd.exists() and fd.resolve() == path.resolve())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_closing_a_parquet_read_closes_its_file(files: tuple[Path, pd.DataFrame]) -> None:
    # Not left to the garbage collector: the reader may still be referenced (a batch that
    # outlives its task, a traceback), and its descriptor must go with close().
    path = files[0] / "2.pq"
    parquet = _open_parquet(*_local(path))
    assert _open_files(path) == 1
    parquet.close()
    assert _open_files(path) == 0
    with _open_parquet(*_local(path)) as again:
        again.read(columns=["y"])
    assert _open_files(path) == 0


def test_a_damaged_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "bad.pq"
    pq.write_table(pa.table({"a": np.arange(1000), "b": np.arange(1000.0)}), path)
    data = path.read_bytes()
    # Keep the footer, spoil the column data: opening works, decoding does not.
    path.write_bytes(b"PAR1" + bytes(len(data) // 2 - 4) + data[len(data) // 2 :])
    with pytest.raises(Exception, match="could not read the file"):
        _run(path, ProjectTransform(select=["b"]))


# ---- through a cluster ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.mark.usefixtures("cluster")
def test_a_group_by_after_a_map_matches_pandas(files: tuple[Path, pd.DataFrame]) -> None:
    directory, df = files
    ds = nd.read_parquet(str(directory)).map_batches(add_k, batch_format="numpy")
    got = ds.groupby("k").aggregate(Count(), Mean("x"), Sum("y")).to_pandas()
    frame = df.assign(k=df["id"] % 10).groupby("k")
    assert got["k"].tolist() == list(range(10))
    assert got["count()"].tolist() == frame.size().tolist()
    np.testing.assert_allclose(got["mean(x)"], frame["x"].mean(), rtol=1e-12)
    assert got["sum(y)"].tolist() == frame["y"].sum().tolist()


@pytest.mark.usefixtures("cluster")
def test_a_map_writing_every_column_keeps_them(
    files: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    directory, df = files
    nd.read_parquet(str(directory)).map_batches(add_k, batch_format="numpy").write_parquet(
        str(tmp_path / "out")
    )
    back = pq.read_table(tmp_path / "out").to_pandas().sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(back, df.assign(k=df["id"] % 10))


def double(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["y"] = batch["x"] * 2
    return batch


def test_the_rows_a_filter_dropped_are_freed_before_the_next_step(tmp_path: Path) -> None:
    # The columns a map decoded stay cached for the steps that read the file; the steps
    # after a filter must not carry them through the rest of the task (the write, say).
    path = tmp_path / "wide.pq"
    pq.write_table(pa.table({"x": np.arange(1_000_000, dtype=np.float64)}), path)
    seen: list[int] = []

    def allocated(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        seen.append(pa.total_allocated_bytes())
        return batch

    start = pa.total_allocated_bytes()
    kept = _run(
        path,
        MapBatchesTransform(UDF.of(double), None, "numpy"),
        ExpressionFilterTransform(col("x") < 1000),
        MapBatchesTransform(UDF.of(allocated), None, "numpy"),
    )
    assert kept.column("y").to_pylist() == [2.0 * x for x in range(1000)]
    assert seen[0] - start < 1_000_000  # the 8 MB decoded column is gone, its 8 kB rows kept
