"""Group-bys aggregated where blocks are read or mapped, combined over many key ranges:
the same groups and values as pandas, in key order, whatever the key's type."""

from __future__ import annotations

from collections.abc import Iterator

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nebula.data import _aggregate
from nebula.data.aggregate import Count, Mean, Sum

import nebula

ROWS, FILES = 6000, 6


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame]:
    directory = tmp_path_factory.mktemp("groupby_partial")
    rng = np.random.default_rng(11)
    k = pd.array(rng.integers(0, 900, ROWS), dtype="Int64")
    k[rng.random(ROWS) < 0.05] = pd.NA
    x = rng.standard_normal(ROWS)
    x[rng.random(ROWS) < 0.05] = np.nan
    df = pd.DataFrame(
        {
            "k": k,
            "s": [f"s{v % 700:03d}" if v % 13 else None for v in rng.integers(0, 10**6, ROWS)],
            "j": rng.integers(0, 3, ROWS),
            "x": x,
        }
    )
    per_file = ROWS // FILES
    for index in range(FILES):
        part = df.iloc[index * per_file : (index + 1) * per_file]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), directory / f"{index}.pq")
    return str(directory), df


@pytest.fixture(autouse=True)
def many_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    # Combine tasks take few groups each, so the partials are cut into several ranges.
    monkeypatch.setattr(_aggregate, "PARTIAL_ROWS_PER_RANGE", 300)


def double(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["x2"] = batch["x"] * 2
    return batch


def expected(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = df.groupby(keys, dropna=False, sort=True)
    return pd.DataFrame(
        {
            "count()": grouped.size(),
            "sum(x)": grouped["x"].sum(min_count=1),
            "mean(x)": grouped["x"].mean(),
        }
    ).reset_index()


@pytest.mark.parametrize("keys", [["k"], ["s"], ["s", "j"]])
def test_partials_match_pandas(files: tuple[str, pd.DataFrame], keys: list[str]) -> None:
    directory, df = files
    ds = nd.read_parquet(directory).map_batches(double, batch_format="numpy")
    grouped = ds.groupby(keys).aggregate(Count(), Sum("x"), Mean("x"))
    assert "PartialAggregate" in grouped.explain()
    refs = grouped.to_arrow_refs()
    assert len(refs) > 1  # several combine tasks
    got = pd.concat([nebula.get(ref).to_pandas() for ref in refs], ignore_index=True)
    want = expected(df, keys)
    assert len(got) == len(want)
    # Blocks in order, nulls last: the same order as pandas' sorted groups.
    for key in keys:
        assert (
            got[key].astype(object).where(got[key].notna(), None).tolist()
            == want[key].astype(object).where(want[key].notna(), None).tolist()
        )
    assert got["count()"].tolist() == want["count()"].tolist()
    np.testing.assert_allclose(got["sum(x)"].astype(float), want["sum(x)"].astype(float))
    np.testing.assert_allclose(got["mean(x)"].astype(float), want["mean(x)"].astype(float))
