"""``Dataset.join``: every join type against pandas' merge on the same rows, keys with
other names and nulls, and clear errors for bad keys and clashing columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nebula.data as nd
import pandas as pd
import pytest

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


USERS = [{"id": i, "name": f"user{i}"} for i in range(12)]
ORDERS = [{"id": (i * 7) % 15, "amount": i} for i in range(40)]  # ids 12-14 have no user


def _rows(rows: list[dict[str, Any]], columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows as sorted tuples, NaN and None both as None."""
    return sorted(
        (tuple(None if pd.isna(row[c]) else row[c] for c in columns) for row in rows),
        key=repr,
    )


@pytest.mark.parametrize(
    ("join_type", "how"),
    [
        ("inner", "inner"),
        ("left_outer", "left"),
        ("right_outer", "right"),
        ("full_outer", "outer"),
    ],
)
def test_join_types_match_pandas(join_type: str, how: str) -> None:
    users = nd.from_items(USERS, override_num_blocks=3)
    orders = nd.from_items(ORDERS, override_num_blocks=4).map(lambda row: row)  # not known up front
    joined = users.join(orders, join_type, num_partitions=3, on="id")
    expected = pd.DataFrame(USERS).merge(pd.DataFrame(ORDERS), how=how, on="id")
    columns = ["id", "name", "amount"]
    assert sorted(joined.columns()) == sorted(columns)
    assert _rows(joined.take_all(), columns) == _rows(expected.to_dict("records"), columns)


def test_semi_and_anti_joins() -> None:
    users = nd.from_items(USERS)
    orders = nd.from_items(ORDERS)
    ordered = {row["id"] for row in ORDERS}
    semi = users.join(orders, "left_semi")
    assert sorted(row["id"] for row in semi.take_all()) == sorted(ordered & set(range(12)))
    anti = orders.join(users, "left_anti")
    assert sorted({row["id"] for row in anti.take_all()}) == [12, 13, 14]
    assert users.join(orders, "right_anti").count() == sum(row["id"] >= 12 for row in ORDERS)


def test_differently_named_keys_nulls_and_suffixes() -> None:
    left = nd.from_items([{"k": "x", "v": 1}, {"k": None, "v": 2}, {"k": "y", "v": 3}])
    right = nd.from_items([{"key": "x", "v": 10}, {"key": None, "v": 20}])
    joined = left.join(
        right, "full_outer", on="k", right_on="key", left_suffix="_l", right_suffix="_r"
    )
    rows = _rows(joined.take_all(), ["k", "v_l", "v_r"])
    # Null keys never match, but a full outer join keeps both rows that have one.
    assert rows == _rows(
        [
            {"k": "x", "v_l": 1, "v_r": 10},
            {"k": "y", "v_l": 3, "v_r": None},
            {"k": None, "v_l": 2, "v_r": None},
            {"k": None, "v_l": None, "v_r": 20},
        ],
        ["k", "v_l", "v_r"],
    )


def test_large_join_on_several_partitions() -> None:
    squares = nd.range(5000, override_num_blocks=8).map_batches(
        lambda b: {"id": b["id"], "sq": b["id"] ** 2}
    )
    joined = nd.range(5000, override_num_blocks=5).join(squares, num_partitions=6)
    assert joined.count() == 5000
    assert joined.sum("sq") == sum(i * i for i in range(5000))


def test_bad_joins_fail_with_clear_errors() -> None:
    left = nd.from_items([{"id": 1, "v": 1}])
    right = nd.from_items([{"id": 1, "v": 2}])
    with pytest.raises(ValueError, match="join_type must be one of"):
        left.join(right, "cross")
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        left.join(right, on="nope")
    with pytest.raises(ValueError, match=r"both datasets have the column\(s\) \['v'\]"):
        left.join(right)
    unknown = right.map(lambda row: row)  # schema found only when it runs
    with pytest.raises(ValueError, match=r"both datasets have the column\(s\) \['v'\]"):
        left.join(unknown).take_all()
    with pytest.raises(ValueError, match="as many right_on keys"):
        left.join(right, on=["id", "v"], right_on=["id"])
    with pytest.raises(TypeError, match="join takes a dataset"):
        left.join([{"id": 1}])  # type: ignore[arg-type]
