"""``Dataset.join``: every join type against pandas' merge and Arrow's join on the same rows,
keys with other names, nulls, strings and several columns, inputs sorted where they are read
(no partitioning task for them), and clear errors for bad keys and clashing columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _data_tasks import tasks_named
from nebula.data.expressions import col

import nebula
from nebula.testing import wait_for_condition


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
    # A key missing from a mapped input (sorted where it is mapped) is named at run time.
    mapped = left.map(lambda row: {"key": row["id"], "w": row["v"]})
    with pytest.raises(KeyError, match=r"join: no key column 'id'; the dataset has \['key', 'w'\]"):
        mapped.join(right, on="id", left_suffix="_l").take_all()
    with pytest.raises(KeyError, match=r"sort: no key column 'id'; the dataset has \['key', 'w'\]"):
        mapped.sort("id").take_all()
    with pytest.raises(TypeError, match="join takes a dataset"):
        left.join([{"id": 1}])  # type: ignore[arg-type]


# ---- inputs read or mapped: each block sorted by its key where it is made ------------

JOIN_TYPES = [
    "inner",
    "left_outer",
    "right_outer",
    "full_outer",
    "left_semi",
    "right_semi",
    "left_anti",
    "right_anti",
]


def _table(rows: int, seed: int, key: str, string_key: str) -> pa.Table:
    """Keys with repeats (so some equal a range boundary) and nulls."""
    rng = np.random.default_rng(seed)
    ints = [None if rng.random() < 0.1 else int(v) for v in rng.integers(0, 15, rows)]
    strings = [None if rng.random() < 0.1 else f"s{v}" for v in rng.integers(0, 4, rows)]
    values = rng.integers(0, 1000, rows)
    return pa.table({key: pa.array(ints, pa.int64()), string_key: strings, "v": values})


@pytest.fixture(scope="module")
def parquet_sides(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("join")
    for name, files, key, string_key in (("left", 4, "k", "s"), ("right", 3, "rk", "rs")):
        (root / name).mkdir()
        for index in range(files):
            table = _table(60, 10 * files + index, key, string_key)
            pq.write_table(table, root / name / f"{index}.parquet")
    return str(root / "left"), str(root / "right")


def _sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    columns = sorted(table.column_names)
    return sorted(zip(*(table.column(c).to_pylist() for c in columns)), key=repr)


def _check_against_arrow(
    joined: nd.Dataset, left: pa.Table, right: pa.Table, join_type: str, **keys: Any
) -> None:
    expected = left.join(
        right,
        keys=keys["on"],
        right_keys=keys["right_on"],
        join_type=join_type.replace("_", " "),
        left_suffix="_l",
        right_suffix="_r",
        coalesce_keys=True,
    )
    blocks = [nebula.get(ref) for ref in joined.to_arrow_refs()]
    if not blocks:  # empty blocks are dropped: nothing joined
        assert expected.num_rows == 0
        return
    result = pa.concat_tables(blocks)
    assert sorted(result.column_names) == sorted(expected.column_names)
    assert _sorted_rows(result) == _sorted_rows(expected)


@pytest.mark.parametrize("join_type", JOIN_TYPES)
@pytest.mark.parametrize(
    ("on", "right_on"), [(["k"], ["rk"]), (["s"], ["rs"]), (["k", "s"], ["rk", "rs"])]
)
def test_sorted_inputs_join_as_arrow_does(
    parquet_sides: tuple[str, str], join_type: str, on: list[str], right_on: list[str]
) -> None:
    left_path, right_path = parquet_sides
    left = nd.read_parquet(left_path)
    right = nd.read_parquet(right_path).map_batches(lambda b: b)
    joined = left.join(
        right,
        join_type,
        num_partitions=4,
        on=on,
        right_on=right_on,
        left_suffix="_l",
        right_suffix="_r",
    )
    left_table, right_table = pq.read_table(left_path), pq.read_table(right_path)
    _check_against_arrow(joined, left_table, right_table, join_type, on=on, right_on=right_on)


@pytest.mark.parametrize("join_type", JOIN_TYPES)
def test_a_sorted_input_joins_an_unsorted_one(
    parquet_sides: tuple[str, str], join_type: str
) -> None:
    left_path, right_path = parquet_sides
    right_table = pq.read_table(right_path)
    left = nd.read_parquet(left_path)  # sorted where it is read
    right = nd.from_arrow(right_table).repartition(3)  # partitioned by the join
    joined = left.join(
        right,
        join_type,
        num_partitions=5,
        on="k",
        right_on="rk",
        left_suffix="_l",
        right_suffix="_r",
    )
    left_table = pq.read_table(left_path)
    _check_against_arrow(joined, left_table, right_table, join_type, on=["k"], right_on=["rk"])


@pytest.mark.parametrize("join_type", ["inner", "left_outer", "right_outer", "full_outer"])
def test_an_empty_sorted_input(parquet_sides: tuple[str, str], join_type: str) -> None:
    left_path, right_path = parquet_sides
    left = nd.read_parquet(left_path)
    right = nd.read_parquet(right_path).filter(expr=col("v") < 0)
    joined = left.join(right, join_type, on="k", right_on="rk", left_suffix="_l", right_suffix="_r")
    left_table, right_table = pq.read_table(left_path), pq.read_table(right_path)
    _check_against_arrow(
        joined, left_table, right_table.slice(0, 0), join_type, on=["k"], right_on=["rk"]
    )


def test_the_sort_runs_in_the_read_and_map_tasks(parquet_sides: tuple[str, str]) -> None:
    left_path, right_path = parquet_sides
    left = nd.read_parquet(left_path)
    right = nd.read_parquet(right_path).map_batches(lambda b: b)
    joined = left.join(right, on="k", right_on="rk", left_suffix="_l", right_suffix="_r")
    physical = joined.explain().split("Physical Plan")[1]
    assert "ReadParquet->SortMap" in physical
    assert "ReadParquet->MapBatches(<lambda>)->SortMap" in physical
    joined.materialize()
    assert "ReadParquet->SortMap" in joined.stats()


def test_only_unsorted_inputs_are_partitioned(parquet_sides: tuple[str, str]) -> None:
    left_path, right_path = parquet_sides
    before = tasks_named("_partition", settled=True)
    left = nd.read_parquet(left_path)  # 4 files, sorted where they are read
    right = nd.from_arrow(pq.read_table(right_path)).repartition(3)
    joined = left.join(
        right, num_partitions=4, on="k", right_on="rk", left_suffix="_l", right_suffix="_r"
    )
    assert joined.count() > 0
    wait_for_condition(lambda: tasks_named("_partition") - before >= 3)
    assert tasks_named("_partition", settled=True) - before == 3  # the right input's 3 blocks only
