"""String columns in numpy batches stay in Arrow while a function only selects rows, and
behave as numpy arrays of ``str`` for everything else."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from nebula.data._batching import map_numpy_batches
from nebula.data._strings import ArrowStrings

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


WORDS = pa.array(["apple", None, "cherry", "date", "", "fig", "grape"])


def test_behaves_as_an_object_array() -> None:
    strings = ArrowStrings(WORDS)
    objects = np.array(WORDS.to_pylist(), dtype=object)
    assert len(strings) == 7 and strings.shape == (7,) and strings.dtype == object
    assert strings[0] == "apple" and strings[-1] == "grape" and strings[1] is None
    np.testing.assert_array_equal(np.asarray(strings), objects)
    np.testing.assert_array_equal(strings == "fig", objects == "fig")
    assert list(strings) == WORDS.to_pylist() and strings.tolist() == WORDS.to_pylist()
    np.testing.assert_array_equal(np.concatenate([strings, objects]), np.concatenate([objects] * 2))
    assert list(np.char.upper(strings[[0, 2]].astype(str))) == ["APPLE", "CHERRY"]
    np.testing.assert_array_equal(
        np.where(strings == "", "empty", strings), np.where(objects == "", "empty", objects)
    )
    with pytest.raises(IndexError):
        strings[7]
    with pytest.raises(ValueError):
        np.asarray(strings)[0] = "changed"  # read-only, as numeric views are


def test_selecting_rows_stays_in_arrow() -> None:
    strings = ArrowStrings(WORDS)
    mask = np.array([True, False, True, False, True, False, True])
    for selected, expected in [
        (strings[mask], np.array(WORDS.to_pylist(), dtype=object)[mask]),
        (strings[2:5], WORDS.to_pylist()[2:5]),
        (strings[::3], WORDS.to_pylist()[::3]),
        (strings[[6, 0, -1]], ["grape", "apple", "grape"]),
        (strings[np.array([], dtype=np.int64)], []),
        (strings[[1, 1]], [None, None]),
        (strings[strings == "fig"], ["fig"]),
    ]:
        assert isinstance(selected, ArrowStrings)
        assert selected.tolist() == list(expected)
    assert strings[mask].to_arrow().type == pa.string()
    with pytest.raises(IndexError):
        strings[np.array([True])]


def test_assignment_makes_its_own_copy() -> None:
    strings = ArrowStrings(WORDS)
    strings[0] = "avocado"
    assert strings[0] == "avocado" and strings.changed
    assert strings.to_arrow().to_pylist()[0] == "avocado"
    assert WORDS[0].as_py() == "apple"


def test_map_batches_selects_and_transforms_strings_like_pandas() -> None:
    rows = 3000
    df = pd.DataFrame({"id": np.arange(rows), "text": [f"w{i % 17}" for i in range(rows)]})

    def pick(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        mask = batch["id"] % 3 == 0
        return {name: column[mask] for name, column in batch.items()}

    def shout(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch["loud"] = np.char.upper(batch["text"].astype(str))
        batch["first"] = np.array([value[:2] for value in batch["text"]])
        return batch

    ds = nd.from_pandas(df).repartition(3).map_batches(pick).map_batches(shout)
    got = ds.to_pandas()
    want = df[df["id"] % 3 == 0].reset_index(drop=True)
    want = want.assign(loud=want["text"].str.upper(), first=want["text"].str[:2])
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert ds.schema().field("text").type == nd.from_pandas(df).schema().field("text").type


def test_a_dataframe_built_from_a_batch() -> None:
    table = pa.table({"id": np.arange(10), "text": [str(i) for i in range(10)]})

    def through_pandas(batch: dict[str, np.ndarray]) -> pd.DataFrame:
        frame = pd.DataFrame({"id": batch["id"], "text": np.asarray(batch["text"])})
        return frame[frame["id"] > 4]

    block = map_numpy_batches(table, through_pandas, 4)
    assert block.column("text").to_pylist() == [str(i) for i in range(5, 10)]


def test_large_strings_and_binary_keep_their_types() -> None:
    table = pa.table(
        {
            "big": pa.array(["a", "b", "c", "d"], type=pa.large_string()),
            "raw": pa.array([b"1", b"2", None, b"4"], type=pa.binary()),
        }
    )

    def every_other(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: column[::2] for name, column in batch.items()}

    block = map_numpy_batches(table, every_other, 2)
    assert block.schema == table.schema
    assert block.column("raw").to_pylist() == [b"1", None]


PANDAS_FREE = """
import sys
import nebula, nebula.data as nd, numpy as np, pyarrow as pa, pyarrow.parquet as pq

def add_z(batch):
    batch["z"] = batch["x"] * 2.0 + 1
    return batch

def keep(batch):
    mask = batch["z"] > 0
    out = {name: column[mask] for name, column in batch.items()}
    out["pandas"] = np.array(["pandas" in sys.modules] * int(mask.sum()))
    return out

table = pa.table({"x": [1.0, -2.0, 3.0, 0.5, 2.0], "s": ["a", "b", "c", "d", "e"]})
pq.write_table(table, sys.argv[1] + "/in.parquet")
nebula.init(num_cpus=2)
for run in range(2):  # the second run sees what the first one imported
    ds = nd.read_parquet(sys.argv[1] + "/in.parquet").map_batches(add_z, batch_size=2)
    ds.map_batches(keep, batch_size=2).sort("z").write_parquet(sys.argv[1] + f"/out{run}")
out = pq.read_table(sys.argv[1] + "/out1")
assert out.column("s").to_pylist() == ["d", "a", "e", "c"], out
assert out.column("pandas").to_pylist() == [False] * 4
nebula.shutdown()
"""


def test_selecting_strings_and_sorting_do_not_import_pandas_in_workers(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", PANDAS_FREE, str(tmp_path)], check=True, timeout=120)
