"""Reader arguments Ray users pass: ``filter``, ``file_extensions``, ``shuffle="files"``,
``override_num_blocks``, and pyarrow options checked when given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from nebula.data._executor import StreamingExecutor
from nebula.data.expressions import col

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.fixture
def parquet_dir(tmp_path: Path) -> Path:
    for index in range(4):
        ids = list(range(index * 10, index * 10 + 10))
        table = pa.table({"x": ids, "name": [f"n{v}" for v in ids]})
        pq.write_table(table, tmp_path / f"part-{index}.parquet")
    (tmp_path / "README.txt").write_text("not parquet\n")
    return tmp_path


def test_filter_keeps_matching_rows_in_any_expression_form(parquet_dir: Path) -> None:
    forms = [pc.field("x") >= 35, col("x") >= 35, "x >= 35"]
    for form in forms:
        ds = nd.read_parquet(parquet_dir, filter=form, file_extensions=["parquet"])
        assert [row["x"] for row in ds.take_all()] == [35, 36, 37, 38, 39]
    only_names = nd.read_parquet(
        parquet_dir, columns=["name"], filter=pc.field("x") < 2, file_extensions=["parquet"]
    )
    assert only_names.take_all() == [{"name": "n0"}, {"name": "n1"}]


def test_file_extensions_skip_other_files(parquet_dir: Path) -> None:
    with pytest.raises(pa.ArrowInvalid, match=r"README\.txt"):
        nd.read_parquet(parquet_dir)  # the stray file is read as Parquet and named
    assert nd.read_parquet(parquet_dir, file_extensions=["parquet"]).count() == 40
    assert nd.read_text(parquet_dir, file_extensions=[".TXT"]).take_all() == [
        {"text": "not parquet"}
    ]
    with pytest.raises(FileNotFoundError, match=r"no files ending in \.csv"):
        nd.read_csv(parquet_dir, file_extensions=["csv"])


def test_shuffled_files_and_block_counts(parquet_dir: Path) -> None:
    files = str(parquet_dir / "*.parquet")
    orders = {
        tuple(row["x"] for row in nd.read_parquet(files, shuffle="files").take_all())
        for _ in range(8)
    }
    assert all(sorted(order) == list(range(40)) for order in orders)
    assert len(orders) > 1  # 4! orders: eight reads in the same one would be 1 in 13,824
    assert nd.read_parquet(files, override_num_blocks=2).materialize().num_blocks() == 2
    assert nd.range(10, override_num_blocks=3).materialize().num_blocks() == 3
    assert nd.from_items(list(range(10)), override_num_blocks=5).materialize().num_blocks() == 5
    with pytest.raises(ValueError, match="not both"):
        nd.range(10, parallelism=2, override_num_blocks=3)
    with pytest.raises(ValueError, match="shuffle"):
        nd.read_parquet(files, shuffle="rows")


def test_unknown_reader_options_fail_when_given(parquet_dir: Path) -> None:
    with pytest.raises(TypeError, match=r"read_csv got unexpected argument\(s\) \['columns'\]"):
        nd.read_csv(parquet_dir, columns=["x"])
    with pytest.raises(TypeError, match="read_json got unexpected"):
        nd.read_json(parquet_dir, columns=["x"])


def test_read_concurrency_and_resources_reach_the_read_tasks(parquet_dir: Path) -> None:
    files = str(parquet_dir / "*.parquet")
    capped = nd.read_parquet(files, concurrency=1)
    reads = [op for op in StreamingExecutor(capped._plan).operators if op.name == "ReadParquet"]
    assert [op._max_in_flight for op in reads] == [1]
    assert capped.count() == 40
    with pytest.raises(ValueError, match=r"ReadParquet asks for GPU=4"):
        nd.read_parquet(files, ray_remote_args={"num_gpus": 4}).take_all()
    with pytest.raises(TypeError, match="'bogus' is not one of"):
        nd.read_parquet(files, ray_remote_args={"bogus": 1})
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        nd.range(10, concurrency=0)
    assert nd.range(10, concurrency=2, ray_remote_args={"num_cpus": 0.5}).sum("id") == 45


def test_count_of_a_parquet_read_comes_from_the_footers(parquet_dir: Path) -> None:
    files = str(parquet_dir / "*.parquet")
    ds = nd.read_parquet(files)
    assert ds.count() == 40
    assert ds._last_executor is None  # no read task ran: the footers were enough
    assert nd.read_parquet(files, filter="x < 5").count() == 5  # a filter reads the rows
    assert nd.read_parquet(files).limit(3).count() == 3
