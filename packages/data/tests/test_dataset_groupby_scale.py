"""Group-by with many groups: the combine runs in several tasks over key ranges, and the
result is still one row per group, sorted by the keys (nulls last), as pandas gives it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nebula.data as nd
import numpy as np
import pandas as pd
import pytest
from nebula.data.aggregate import AggregateFn, Count, Mean, Sum

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = 6000
    return pd.DataFrame(
        {
            "user": rng.integers(0, 1500, rows),
            "kind": rng.choice(["a", "b", "c"], rows),
            "value": rng.normal(0, 1, rows),
        }
    )


def _dataset(frame: pd.DataFrame) -> nd.Dataset:
    return nd.from_pandas([frame.iloc[i : i + 750] for i in range(0, len(frame), 750)])


def test_many_groups_combine_in_several_tasks_and_match_pandas(frame: pd.DataFrame) -> None:
    result = _dataset(frame).groupby("user").aggregate(Count(), Sum("value"), Mean("value"))
    materialized = result.materialize()
    assert materialized.num_blocks() > 1  # more than one combine task ran
    rows = materialized.take_all()
    expected = frame.groupby("user")["value"].agg(["count", "sum", "mean"])
    assert [row["user"] for row in rows] == list(expected.index)  # sorted, each once
    for row in rows:
        want = expected.loc[row["user"]]
        assert row["count()"] == want["count"]
        assert row["sum(value)"] == pytest.approx(want["sum"])
        assert row["mean(value)"] == pytest.approx(want["mean"])


def test_several_keys_nulls_and_python_aggregations(frame: pd.DataFrame) -> None:
    with_nulls = frame.astype({"kind": object})
    with_nulls.loc[::97, "kind"] = None
    ds = _dataset(with_nulls)
    rows = ds.groupby(["kind", "user"]).count().take_all()
    expected = with_nulls.groupby(["kind", "user"], dropna=False).size()
    got = [(row["kind"], row["user"], row["count()"]) for row in rows]
    assert sorted(got, key=lambda r: (r[0] is None, r[0] or "", r[1])) == got  # nulls last
    assert {(k, u): c for k, u, c in got} == {
        (None if pd.isna(k) else k, u): c for (k, u), c in expected.items()
    }

    distinct_kinds = AggregateFn(
        init=lambda key: set(),
        accumulate_row=lambda acc, row: acc | {row["kind"]},
        merge=lambda a, b: a | b,
        finalize=lambda acc: len(acc),
        name="kinds",
    )
    per_user: dict[Any, int] = {
        row["user"]: row["kinds"] for row in ds.groupby("user").aggregate(distinct_kinds).take_all()
    }
    want = with_nulls.groupby("user")["kind"].apply(lambda s: len(set(s)))
    assert per_user == want.to_dict()
