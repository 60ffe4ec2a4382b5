"""Hive-partitioned writes (``partition_cols``) and reads (``key=value`` directories)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


ROWS = [
    {"id": i, "country": ["FR", "DE", None][i % 3], "year": 2020 + i % 2, "value": i * 1.5}
    for i in range(30)
]


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: row["id"])


def test_partitioned_parquet_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nd.from_items(ROWS, override_num_blocks=3).write_parquet(
        out, partition_cols=["country", "year"]
    )
    directories = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*") if p.is_dir())
    assert directories == [
        "country=DE/year=2020",
        "country=DE/year=2021",
        "country=FR/year=2020",
        "country=FR/year=2021",
        "country=__HIVE_DEFAULT_PARTITION__/year=2020",
        "country=__HIVE_DEFAULT_PARTITION__/year=2021",
    ]
    one_file = next(out.glob("country=FR/year=2020/*.parquet"))
    assert pq.read_schema(one_file).names == ["id", "value"]  # the keys live in the path

    back = nd.read_parquet(out)
    assert back.schema().names == ["id", "value", "country", "year"]
    expected = [{**row, "year": str(row["year"])} for row in ROWS]  # partition values: strings
    assert _sorted(back.take_all()) == expected
    assert back.filter(expr="country == 'DE'").count() == 10


def test_pyarrow_reads_what_was_written_and_we_read_what_it_writes(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    nd.from_items(ROWS).write_parquet(ours, partition_cols=["year"])
    table = pads.dataset(ours, format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("year").to_pylist()) == sorted(row["year"] for row in ROWS)

    theirs = tmp_path / "theirs"
    pads.write_dataset(
        pa.Table.from_pylist(ROWS),
        theirs,
        format="parquet",
        partitioning=["year"],
        partitioning_flavor="hive",
    )
    assert nd.read_parquet(theirs).count() == 30
    assert sorted({row["year"] for row in nd.read_parquet(theirs).take_all()}) == ["2020", "2021"]


def test_csv_and_json_partitions_and_bad_columns(tmp_path: Path) -> None:
    ds = nd.from_items(ROWS)
    ds.write_csv(tmp_path / "csv", partition_cols="year")
    assert nd.read_csv(tmp_path / "csv").count() == 30
    ds.write_json(tmp_path / "json", partition_cols=["country"], min_rows_per_file=100)
    assert len(list((tmp_path / "json").glob("country=*/*.json"))) == 3
    with pytest.raises(KeyError, match="partition_cols"):
        ds.write_parquet(tmp_path / "bad", partition_cols=["nope"])
    with pytest.raises(ValueError, match="partition_cols must name columns"):
        ds.write_parquet(tmp_path / "bad", partition_cols=[])
