"""Reading and writing files, and how errors reach the user."""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nebula
from nebula.exceptions import TaskError


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def test_parquet_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nd.range(100, parallelism=4).map(lambda r: {"id": r["id"], "sq": r["id"] ** 2}).write_parquet(
        str(out)
    )
    assert len(list(out.glob("*.parquet"))) == 4
    back = nd.read_parquet(str(out))
    assert str(back) == "Dataset(schema={id: int64, sq: int64})"
    rows = sorted(back.take_all(), key=lambda r: r["id"])
    assert rows == [{"id": i, "sq": i * i} for i in range(100)]
    assert nd.read_parquet(str(out), columns=["sq"]).columns() == ["sq"]


def test_read_parquet_files_dirs_and_globs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": [3]}), tmp_path / "sub" / "b.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    assert nd.read_parquet(str(tmp_path / "a.parquet")).count() == 2
    assert nd.read_parquet(str(tmp_path)).count() == 3
    assert nd.read_parquet(str(tmp_path / "*.parquet")).count() == 2
    both = [str(tmp_path / "a.parquet"), str(tmp_path / "sub" / "b.parquet")]
    assert [r["x"] for r in nd.read_parquet(both).take_all()] == [1, 2, 3]


def test_read_csv_and_json(tmp_path: Path) -> None:
    (tmp_path / "iris.csv").write_text("sepal,target\n1.5,0\n2.5,1\n3.5,2\n")
    ds = nd.read_csv(str(tmp_path / "iris.csv"))
    assert ds.take_all() == [
        {"sepal": 1.5, "target": 0},
        {"sepal": 2.5, "target": 1},
        {"sepal": 3.5, "target": 2},
    ]
    ds = ds.map(lambda x: {"t1": x["target"] * 2}).filter(lambda x: x["t1"] % 4 == 0)
    assert ds.take_all() == [{"t1": 0}, {"t1": 4}]
    lines = "\n".join(json.dumps({"a": i, "b": f"s{i}"}) for i in range(3))
    (tmp_path / "rows.json").write_text(lines + "\n")
    assert nd.read_json(str(tmp_path / "rows.json")).take(1) == [{"a": 0, "b": "s0"}]


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        nd.read_parquet(missing)
    with pytest.raises(FileNotFoundError, match="no file matches"):
        nd.read_csv(str(tmp_path / "*.csv"))


class SentinelError(Exception):
    pass


def explode(batch: dict) -> dict:
    if len(batch["id"]):
        raise SentinelError("boom in the udf")
    return batch


def test_udf_error_names_operator_and_keeps_class_and_traceback() -> None:
    ds = nd.range(10, parallelism=2).map(lambda r: r).map_batches(explode)
    with pytest.raises(SentinelError) as info:
        ds.take_all()
    error = info.value
    assert isinstance(error, TaskError)
    text = "".join(traceback.format_exception(error))
    assert "boom in the udf" in str(error)
    assert "MapBatches(explode)" in str(error)
    assert "in explode" in str(error)  # the remote frame of the UDF
    assert "ReadRange->Map(<lambda>)->MapBatches(explode)" in text


def test_missing_column_is_reported() -> None:
    with pytest.raises(KeyError, match="nope"):
        nd.range(3).select_columns(["nope"]).take_all()
