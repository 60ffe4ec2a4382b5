"""The default batch size gives the rows the fast forms give: numpy functions that select
rows on small batches (masks, positions, slices, string columns included) write exactly
what ``batch_size=None`` and ``filter(expr=...)`` write, and a string column a function
selected rows of behaves as the numpy array of ``str`` it stands for."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nebula.data as nd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nebula.data._batching import map_numpy_batches
from nebula.data._strings import ArrowStrings
from nebula.data.expressions import col

import nebula

Batch = dict[str, Any]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def table(rows: int = 1000, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = [None if i % 11 == 0 else f"w{i}-" + "x" * (i % 7) for i in range(rows)]
    return pa.table(
        {
            "id": np.arange(rows),
            "x": rng.standard_normal(rows),
            "text": pa.array(words, type=pa.string()),
            "big": pa.array([f"b{i}" for i in range(rows)], type=pa.large_string()),
        }
    )


def add_z(batch: Batch) -> Batch:
    batch["z"] = batch["x"] * 2.0 + 1.0
    return batch


def keep_where(threshold: float) -> Callable[[Batch], Batch]:
    def keep(batch: Batch) -> Batch:
        mask = batch["z"] > threshold
        return {name: column[mask] for name, column in batch.items()}

    return keep


def per_batch(fn: Callable[[Batch], Batch], block: pa.Table, size: int) -> pa.Table:
    """What ``fn`` gives on plain numpy batches of ``size`` rows, the obvious slow way."""
    pieces = []
    for start in range(0, block.num_rows, size):
        piece = block.slice(start, size)
        batch = {
            name: np.array(piece.column(name).to_pylist(), dtype=object)
            if pa.types.is_string(piece.column(name).type)
            or pa.types.is_large_string(piece.column(name).type)
            else piece.column(name).to_numpy()
            for name in piece.column_names
        }
        out = fn(batch)
        pieces.append(
            pa.table(
                {
                    name: pa.array(list(values), type=block.schema.field(name).type)
                    if name in block.column_names
                    else pa.array(values)
                    for name, values in out.items()
                }
            )
        )
    return pa.concat_tables(pieces)


@pytest.mark.parametrize("threshold", [-np.inf, 0.5, 1e9], ids=["keeps-all", "some", "none"])
def test_masks_give_the_rows_filter_expr_gives(threshold: float) -> None:
    block = table()
    mapped = map_numpy_batches(block, add_z, 64)
    got = map_numpy_batches(mapped, keep_where(threshold), 64)
    assert mapped.column("z").to_pylist() == list(block.column("x").to_numpy() * 2.0 + 1.0)
    want = mapped.filter(pc_greater(mapped.column("z"), threshold))
    assert got.schema == want.schema
    assert got.equals(want)
    assert all(column.num_chunks == 1 for column in got.columns)


def pc_greater(values: pa.ChunkedArray, threshold: float) -> pa.Array:
    return pa.array(values.to_numpy() > threshold)


SELECTIONS: dict[str, Callable[[Batch], Batch]] = {
    "positions": lambda b: {n: c[np.argsort(b["x"])] for n, c in b.items()},
    "negative positions": lambda b: {n: c[[-1, 0, -2]] for n, c in b.items()},
    "slices": lambda b: {n: c[::3] for n, c in b.items()},
    "reversed": lambda b: {n: c[::-1] for n, c in b.items()},
    "mask then slice": lambda b: {n: c[b["x"] > 0][1:] for n, c in b.items()},
    "mask then positions": lambda b: {n: c[b["x"] > -1][[0, 0, 1]] for n, c in b.items()},
    "mask of a mask": lambda b: {
        n: c[b["x"] > -0.5][b["x"][b["x"] > -0.5] < 0.5] for n, c in b.items()
    },
    "a list mask": lambda b: {n: c[list(b["id"] % 3 == 0)] for n, c in b.items()},
    "strings only": lambda b: {"text": b["text"][b["x"] > 0]},
    "renamed": lambda b: {"id": b["id"], "t": b["text"][:]},
    "untouched": lambda b: b,
    "some batches untouched": lambda b: b if b["id"][0] % 128 else {n: c[:5] for n, c in b.items()},
}


@pytest.mark.parametrize("name", list(SELECTIONS))
def test_selections_give_what_plain_numpy_batches_give(name: str) -> None:
    block = table(999)
    fn = SELECTIONS[name]
    got = map_numpy_batches(block, fn, 64)
    want = per_batch(fn, block, 64)
    assert got.column_names == want.column_names
    for column in got.column_names:
        assert got.column(column).to_pylist() == want.column(column).to_pylist(), column
    for column in ("text", "big"):
        if column in got.column_names:
            assert got.schema.field(column).type == block.schema.field(column).type


def test_strings_changed_in_some_batches() -> None:
    block = table(300)

    def shout_some(batch: Batch) -> Batch:
        text = batch["text"][batch["x"] > 0]
        if batch["id"][0] % 128 == 0:
            text = np.array([None if t is None else t.upper() for t in text], dtype=object)
        return {"text": text}

    got = map_numpy_batches(block, shout_some, 64)
    assert (
        got.column("text").to_pylist()
        == per_batch(shout_some, block, 64).column("text").to_pylist()
    )


def test_a_pipeline_writes_what_the_fast_form_writes(cluster: None, tmp_path: Path) -> None:
    block = table(20_000, seed=5)
    for index in range(4):
        pq.write_table(block.slice(index * 5000, 5000), tmp_path / f"in-{index}.parquet")
    source = str(tmp_path / "in-0.parquet"), *(str(tmp_path / f"in-{i}.parquet") for i in (1, 2, 3))
    for threshold in (-np.inf, 1.0, 1e9):
        default = nd.read_parquet(list(source)).map_batches(add_z, batch_format="numpy")
        default = default.map_batches(keep_where(threshold), batch_format="numpy")
        default.write_parquet(str(tmp_path / f"default-{threshold}"))
        fast = nd.read_parquet(list(source)).map_batches(add_z, batch_size=None)
        fast.filter(expr=col("z") > threshold).write_parquet(str(tmp_path / f"fast-{threshold}"))
        got = read_sorted(tmp_path / f"default-{threshold}")
        want = read_sorted(tmp_path / f"fast-{threshold}")
        assert got.num_rows == want.num_rows
        assert got.equals(want)
        if got.num_rows:
            files = list((tmp_path / f"default-{threshold}").glob("*.parquet"))
            assert all(pq.ParquetFile(f).metadata.num_row_groups == 1 for f in files)


def read_sorted(directory: Path) -> pa.Table:
    files = sorted(directory.glob("*.parquet"))
    if not files:
        return pa.table({})
    return pa.concat_tables([pq.read_table(f) for f in files]).sort_by("id")


WORDS = pa.array(["apple", None, "cherry", "date", "", "fig", "grape", "kiwi"])


def selected() -> tuple[ArrowStrings, np.ndarray]:
    """A lazily selected column and the object array it stands for."""
    mask = np.array([True, True, False, True, True, True, False, True])
    return ArrowStrings(WORDS)[mask], np.array(WORDS.to_pylist(), dtype=object)[mask]


def test_a_selected_string_column_behaves_as_an_object_array() -> None:
    strings, objects = selected()
    assert len(strings) == 6 and strings.shape == (6,) and strings.size == 6
    assert strings.dtype == object and strings.ndim == 1
    assert list(strings) == list(objects) and strings.tolist() == list(objects)
    assert strings[0] == "apple" and strings[1] is None and strings[-1] == "kiwi"
    with pytest.raises(IndexError):
        strings[6]
    np.testing.assert_array_equal(np.asarray(strings), objects)
    np.testing.assert_array_equal(strings == "fig", objects == "fig")
    np.testing.assert_array_equal(strings != "", objects != "")
    assert list(strings.astype(str)) == list(objects.astype(str))
    np.testing.assert_array_equal(np.concatenate([strings, strings]), np.tile(objects, 2))
    for key in (np.array([5, 0, 0]), [-1, 2], slice(1, 4), slice(None, None, -2), strings == "fig"):
        part = strings[key]
        assert isinstance(part, ArrowStrings)
        assert part.tolist() == list(objects[key])
    assert strings[np.array([], dtype=np.int64)].tolist() == []
    assert strings[np.zeros(6, dtype=bool)].tolist() == []
    with pytest.raises(IndexError):
        strings[np.array([6])]
    with pytest.raises(IndexError):
        strings[np.ones(5, dtype=bool)]
    assert pickle.loads(pickle.dumps(strings)).tolist() == list(objects)
    assert "cherry" not in repr(strings) and "kiwi" in repr(strings)


def test_a_selection_does_not_follow_later_changes_to_its_mask() -> None:
    mask = np.array([True] * 8)
    strings = ArrowStrings(WORDS)[mask]
    mask[:] = False
    assert len(strings) == 8 and strings.tolist() == WORDS.to_pylist()


def test_assigning_into_a_selection_copies() -> None:
    strings, objects = selected()
    strings[0] = "avocado"
    assert strings.changed and strings[0] == "avocado"
    assert strings.to_arrow().to_pylist() == ["avocado", *objects[1:]]
    assert WORDS[0].as_py() == "apple"
