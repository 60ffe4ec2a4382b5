"""Datasets to and from references of DataFrames, tables and arrays, numpy files, and
Hugging Face datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def test_from_refs_build_one_block_per_reference() -> None:
    frames = [nebula.put(pd.DataFrame({"a": [1, 2]})), nebula.put(pd.DataFrame({"a": [3]}))]
    ds = nd.from_pandas_refs(frames)
    assert ds.take_all() == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert ds.materialize().num_blocks() == 2
    assert nd.from_arrow_refs(nebula.put(pa.table({"b": [7]}))).take_all() == [{"b": 7}]
    arrays = nd.from_numpy_refs([nebula.put(np.arange(6).reshape(3, 2))])
    assert np.array_equal(arrays.take_batch(3)["data"], np.arange(6).reshape(3, 2))
    with pytest.raises(TypeError, match="takes ObjectRefs"):
        nd.from_pandas_refs([pd.DataFrame({"a": [1]})])


def test_to_refs_give_one_reference_per_block() -> None:
    ds = nd.range(10, override_num_blocks=2)
    frames = nebula.get(ds.to_pandas_refs())
    assert [list(frame["id"]) for frame in frames] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    columns = nebula.get(ds.to_numpy_refs(column="id"))
    assert np.concatenate(columns).tolist() == list(range(10))
    batches = nebula.get(ds.to_numpy_refs())
    assert [batch["id"].tolist() for batch in batches] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    tables = nebula.get(ds.to_arrow_refs())
    assert sum(table.num_rows for table in tables) == 10
    with pytest.raises(KeyError, match="no column 'nope'"):
        nebula.get(ds.to_numpy_refs(column="nope"))


def test_numpy_files_round_trip(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.float32).reshape(12, 2)
    nd.from_numpy(data).repartition(3).write_numpy(tmp_path / "npy")
    assert len(list((tmp_path / "npy").glob("*.npy"))) == 3
    back = nd.read_numpy(tmp_path / "npy").take_batch(20)["data"]
    assert back.dtype == np.float32 and np.array_equal(back, data)
    with pytest.raises(KeyError, match="no column 'missing'"):
        nd.range(3).write_numpy(tmp_path / "bad", column="missing")


def test_from_huggingface_keeps_the_rows_and_their_order() -> None:
    datasets = pytest.importorskip("datasets")
    hf = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(20)], "label": range(20)})
    ds = nd.from_huggingface(hf, override_num_blocks=4)
    assert ds.materialize().num_blocks() == 4
    assert [row["label"] for row in ds.take_all()] == list(range(20))
    view = hf.shuffle(seed=0).select(range(5))
    assert nd.from_huggingface(view).take_all() == [dict(row) for row in view]
    with pytest.raises(TypeError, match=r"from_huggingface takes a datasets\.Dataset"):
        nd.from_huggingface([{"text": "x"}])
