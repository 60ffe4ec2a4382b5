"""Group-by counts and sums on numpy give what Arrow's hash group-by gives."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from nebula.data._group_numpy import grouped_counts_and_sums

SUM = pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)
SPECS = [
    ("x", "sum", SUM),
    ("x", "count", pc.CountOptions(mode="only_valid")),
    ("i", "sum", None),
    ("k", "count", pc.CountOptions(mode="all")),
]


def _table(rows: int, key_range: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = pa.array(rng.random(rows), mask=rng.random(rows) < 0.2)
    return pa.table(
        {
            "k": rng.integers(-key_range, key_range, rows),
            "x": x,
            "i": rng.integers(-1000, 1000, rows),
        }
    )


@pytest.mark.parametrize("chunks", [1, 4])
@pytest.mark.parametrize("key_range", [3, 1000, 10**15])
def test_counts_and_sums_match_arrow(key_range: int, chunks: int) -> None:
    table = _table(5000, key_range, seed=key_range % 97)
    if chunks > 1:  # as a combine sees them: slices of several blocks, one without nulls
        cuts = [0, 100, 2600, 4000, 5000]
        pieces = [table.slice(a, b - a) for a, b in itertools.pairwise(cuts)]
        pieces[1] = pieces[1].set_column(1, "x", pc.fill_null(pieces[1]["x"], 0.5))
        table = pa.concat_tables(pieces)
        assert table["x"].num_chunks == chunks
    got = grouped_counts_and_sums(table, ["k"], SPECS)
    expected = table.group_by(["k"], use_threads=False).aggregate(SPECS).sort_by("k")
    assert got is not None
    assert got.schema == expected.schema
    for name in got.column_names:
        ours, theirs = got[name].to_pylist(), expected[name].to_pylist()
        assert ours == pytest.approx(theirs), name


def test_a_group_without_values_sums_to_null() -> None:
    table = pa.table({"k": [1, 1, 2], "x": pa.array([None, None, 2.0], type=pa.float64())})
    got = grouped_counts_and_sums(table, ["k"], [("x", "sum", SUM)])
    assert got is not None
    assert got.to_pydict() == {"k": [1, 2], "x_sum": [None, 2.0]}


@pytest.mark.parametrize(
    ("table", "keys", "specs"),
    [
        (pa.table({"k": ["a"], "x": [1.0]}), ["k"], [("x", "sum", SUM)]),  # string key
        (pa.table({"k": [1, None], "x": [1.0, 2.0]}), ["k"], [("x", "sum", SUM)]),  # null key
        (pa.table({"k": [1], "x": [1.0]}), ["k"], [("x", "min", SUM)]),  # not a count or sum
        (pa.table({"k": [1, 1], "x": [2**60, 2**60]}), ["k"], [("x", "sum", None)]),  # rounds
        (pa.table({"k": [1], "j": [1], "x": [1.0]}), ["k", "j"], [("x", "sum", SUM)]),
    ],
)
def test_other_cases_are_left_to_arrow(
    table: pa.Table, keys: list[str], specs: list[tuple[object, ...]]
) -> None:
    assert grouped_counts_and_sums(table, keys, specs) is None
