"""Reading and writing files, and how errors reach the user."""

from __future__ import annotations

import datetime
import json
import math
import traceback
from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import nebula
from nebula.exceptions import TaskError


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def squares(n: int, parallelism: int) -> nd.Dataset:
    return nd.range(n, parallelism=parallelism).map(lambda r: {"id": r["id"], "sq": r["id"] ** 2})


# ---- writing ----------------------------------------------------------------------------


def test_parquet_round_trip_keeps_rows_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out"
    squares(100, 4).write_parquet(str(out))
    assert len(list(out.glob("*.parquet"))) == 4
    back = nd.read_parquet(str(out))
    assert str(back) == "Dataset(schema={id: int64, sq: int64})"
    assert back.take_all() == [{"id": i, "sq": i * i} for i in range(100)]
    assert nd.read_parquet(str(out), columns=["sq"]).columns() == ["sq"]


def test_csv_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "csv"
    squares(30, 3).write_csv(out)
    files = sorted(out.glob("*.csv"))
    assert len(files) == 3
    assert files[0].read_text().splitlines()[:2] == ['"id","sq"', "0,0"]
    assert nd.read_csv(str(out)).take_all() == [{"id": i, "sq": i * i} for i in range(30)]


def test_json_lines_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "json"
    squares(10, 2).write_json(str(out))
    files = sorted(out.glob("*.json"))
    assert len(files) == 2
    assert files[0].read_text().splitlines()[0] == '{"id":0,"sq":0}'
    assert nd.read_json(str(out)).take_all() == [{"id": i, "sq": i * i} for i in range(10)]


def test_json_writes_dates_as_iso_and_nan_as_null(tmp_path: Path) -> None:
    when = datetime.datetime(2024, 5, 17, 8, 30)
    table = pa.table({"when": [when], "x": [math.nan], "tags": [["a", "b"]]})
    nd.from_arrow(table).write_json(tmp_path / "out")
    (line,) = next((tmp_path / "out").glob("*.json")).read_text().splitlines()
    assert json.loads(line) == {"when": "2024-05-17T08:30:00", "x": None, "tags": ["a", "b"]}
    back = nd.read_json(str(tmp_path / "out")).take_all()
    assert back == [{"when": when, "x": None, "tags": ["a", "b"]}]


def test_min_rows_per_file_combines_blocks(tmp_path: Path) -> None:
    ds = nd.range(100, parallelism=10)  # ten blocks of ten rows
    ds.write_parquet(tmp_path / "default")
    assert len(list((tmp_path / "default").iterdir())) == 10

    ds.write_csv(tmp_path / "combined", min_rows_per_file=25)
    files = sorted((tmp_path / "combined").iterdir())
    assert [pacsv.read_csv(f).num_rows for f in files] == [30, 30, 30, 10]
    assert [r["id"] for r in nd.read_csv(str(tmp_path / "combined")).take_all()] == list(range(100))

    ds.write_json(tmp_path / "one", min_rows_per_file=1000)
    assert len(list((tmp_path / "one").iterdir())) == 1


def _dictionary_encoded(path: Path) -> dict[str, bool]:
    """Column name -> whether the file's first row group has a dictionary page for it."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    return {
        group.column(i).path_in_schema: group.column(i).has_dictionary_page
        for i in range(group.num_columns)
    }


def test_parquet_dictionary_only_where_values_repeat(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = 200_000
    table = pa.table(
        {
            "unique_float": rng.standard_normal(rows),
            "unique_text": pa.array([f"row-{i}-{rng.integers(1 << 30)}" for i in range(rows)]),
            "few_ints": rng.integers(0, 1000, rows),
            "sorted_runs": np.sort(rng.integers(0, 50_000, rows)),
            "flag": rng.integers(0, 2, rows).astype(bool),
        }
    )
    nd.from_arrow(table).write_parquet(tmp_path / "default")
    nd.from_arrow(table).write_parquet(tmp_path / "chosen", use_dictionary=True)
    (default_file,) = (tmp_path / "default").iterdir()
    (chosen_file,) = (tmp_path / "chosen").iterdir()
    assert _dictionary_encoded(default_file) == {
        "unique_float": False,
        "unique_text": False,
        "few_ints": True,
        "sorted_runs": True,
        "flag": False,
    }
    # The user's own choice is passed through as given.
    assert all(_dictionary_encoded(chosen_file)[name] for name in ("unique_float", "few_ints"))
    for path in (default_file, chosen_file):
        assert pq.read_table(path).equals(table)


def test_two_writes_into_one_directory_keep_both(tmp_path: Path) -> None:
    nd.range(6, parallelism=2).write_parquet(tmp_path)
    nd.range(6, parallelism=2).write_parquet(tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 4
    assert nd.read_parquet(str(tmp_path)).count() == 12


def test_empty_blocks_write_no_files(tmp_path: Path) -> None:
    nd.range(10, parallelism=2).filter(lambda r: r["id"] < 3).write_parquet(tmp_path / "out")
    assert len(list((tmp_path / "out").iterdir())) == 1
    assert nd.read_parquet(str(tmp_path / "out")).count() == 3


def test_write_through_an_explicit_filesystem(tmp_path: Path) -> None:
    # A filesystem rooted at tmp_path: its paths are not local paths, and it must travel
    # (pickled) to the tasks that write and read.
    rooted = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    squares(20, 2).write_csv("tables/sq", filesystem=rooted)
    assert len(list((tmp_path / "tables" / "sq").glob("*.csv"))) == 2
    back = nd.read_csv("tables/sq", filesystem=rooted).take_all()
    assert back == [{"id": i, "sq": i * i} for i in range(20)]


def test_bad_write_arguments_are_refused(tmp_path: Path) -> None:
    ds = nd.range(3)
    with pytest.raises(ValueError, match="min_rows_per_file must be >= 1"):
        ds.write_parquet(tmp_path / "a", min_rows_per_file=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="is a file"):
        ds.write_csv(tmp_path / "file")


# ---- reading ----------------------------------------------------------------------------


def test_read_parquet_files_dirs_globs_and_lists(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": [3]}), tmp_path / "sub" / "b.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".hidden.parquet").write_text("not parquet")
    assert nd.read_parquet(str(tmp_path / "a.parquet")).count() == 2
    assert nd.read_parquet(str(tmp_path)).count() == 3
    assert nd.read_parquet(str(tmp_path / "*.parquet")).count() == 2
    assert nd.read_parquet(str(tmp_path / "**" / "*.parquet")).count() == 3
    assert nd.read_parquet(f"file://{tmp_path}/sub").count() == 1
    both = [str(tmp_path / "a.parquet"), tmp_path / "sub"]
    assert [r["x"] for r in nd.read_parquet(both).take_all()] == [1, 2, 3]
    local = pafs.LocalFileSystem()
    assert nd.read_parquet(str(tmp_path / "sub"), filesystem=local).count() == 1


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


def test_read_text_gives_one_row_per_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first line\nsecond\n\n   \nlast\n")
    (tmp_path / "b.txt").write_bytes(b"windows\r\nends\r\n")
    ds = nd.read_text(str(tmp_path))
    assert str(ds) == "Dataset(schema={text: string})"
    assert ds.take_all() == [
        {"text": t} for t in ["first line", "second", "last", "windows", "ends"]
    ]
    kept = nd.read_text(str(tmp_path / "a.txt"), drop_empty_lines=False).take_all()
    assert [r["text"] for r in kept] == ["first line", "second", "", "   ", "last"]
    with_paths = nd.read_text(str(tmp_path / "b.txt"), include_paths=True).take_all()
    assert with_paths[0] == {"text": "windows", "path": str(tmp_path / "b.txt")}


def test_read_binary_files(tmp_path: Path) -> None:
    (tmp_path / "one.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "two.bin").write_bytes(b"")
    ds = nd.read_binary_files(str(tmp_path))
    assert ds.count() == 2
    assert ds.take_all() == [{"bytes": b"\x00\x01\x02"}, {"bytes": b""}]
    rows = nd.read_binary_files(str(tmp_path / "one.bin"), include_paths=True).take_all()
    assert rows == [{"bytes": b"\x00\x01\x02", "path": str(tmp_path / "one.bin")}]


# ---- errors -----------------------------------------------------------------------------


def test_bad_paths_and_filesystems_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="paths must be a path or URI string"):
        nd.read_text(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"filesystem must be a pyarrow\.fs\.FileSystem"):
        nd.read_csv(str(tmp_path), filesystem="local")
    with pytest.raises(ValueError, match="no paths given"):
        nd.read_json([])


@pytest.mark.parametrize(
    "reader",
    [nd.read_parquet, nd.read_csv, nd.read_json, nd.read_text, nd.read_binary_files],
)
def test_missing_path_names_the_path(tmp_path: Path, reader: object) -> None:
    assert callable(reader)
    with pytest.raises(FileNotFoundError, match=r"nope\.data.*does not exist"):
        reader(str(tmp_path / "nope.data"))
    with pytest.raises(FileNotFoundError, match=r"no file matches the pattern .*\*\.data"):
        reader(str(tmp_path / "*.data"))


def test_corrupt_parquet_error_names_the_file(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1]}), tmp_path / "a_good.parquet")
    (tmp_path / "b_bad.parquet").write_bytes(b"this is not parquet")

    # The schema is read on the driver, from the first file: its error comes at once.
    with pytest.raises(pa.ArrowInvalid, match=r"b_bad\.parquet") as info:
        nd.read_parquet(str(tmp_path / "b_bad.parquet"))
    assert isinstance(info.value.__cause__, pa.ArrowInvalid)

    # Later files are read in tasks: the error surfaces when the dataset is consumed.
    ds = nd.read_parquet(str(tmp_path))
    with pytest.raises(pa.ArrowInvalid, match=r"read_parquet: could not read .*b_bad\.parquet"):
        ds.take_all()


def test_malformed_csv_error_names_the_file_and_keeps_the_cause(tmp_path: Path) -> None:
    (tmp_path / "broken.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(pa.ArrowInvalid) as info:
        nd.read_csv(str(tmp_path)).take_all()
    error = info.value
    assert isinstance(error, TaskError)
    assert "read_csv: could not read the file" in str(error)
    assert "broken.csv" in str(error)
    assert "direct cause" in error.traceback_str  # the original parse error is chained
    assert "Expected 2 columns, got 3" in error.traceback_str


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
