"""Column renames, sampling, train/test splits, sizes, and the ways to iterate a dataset
that training loops use (local shuffle, drop_last, ``iterator()``, torch batches)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pytest

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def test_rename_columns_by_dict_and_by_list() -> None:
    ds = nd.from_items([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    assert ds.rename_columns({"a": "x"}).take_all() == [{"x": 1, "b": 2}, {"x": 3, "b": 4}]
    assert ds.rename_columns(["p", "q"]).columns() == ["p", "q"]
    with pytest.raises(ValueError, match="2 columns"):
        ds.rename_columns(["only"])
    with pytest.raises(ValueError, match="same name"):
        ds.rename_columns({"a": "b", "b": "b"})
    with pytest.raises(KeyError, match=r"cannot rename column.*'nope'"):
        ds.rename_columns({"nope": "x"}).take_all()


def test_random_sample_keeps_about_the_fraction_and_repeats_with_a_seed() -> None:
    ds = nd.range(10_000, parallelism=8)
    first = [row["id"] for row in ds.random_sample(0.1, seed=7).take_all()]
    again = [row["id"] for row in ds.random_sample(0.1, seed=7).take_all()]
    assert first == again
    assert 800 < len(first) < 1200
    assert first == sorted(set(first))  # a subset, in the dataset's order
    assert ds.random_sample(0.0).count() == 0
    assert ds.random_sample(1.0).count() == 10_000
    with pytest.raises(ValueError, match="between 0 and 1"):
        ds.random_sample(1.5)


def test_train_test_split_by_fraction_count_and_shuffled() -> None:
    ds = nd.range(100, parallelism=4)
    train, test = ds.train_test_split(0.25)
    assert [row["id"] for row in train.take_all()] == list(range(75))
    assert [row["id"] for row in test.take_all()] == list(range(75, 100))
    train, test = ds.train_test_split(10)
    assert (train.count(), test.count()) == (90, 10)
    train, test = ds.train_test_split(0.2, shuffle=True, seed=3)
    train_ids = {row["id"] for row in train.take_all()}
    test_ids = [row["id"] for row in test.take_all()]
    assert len(test_ids) == 20 and not train_ids & set(test_ids)
    assert train_ids | set(test_ids) == set(range(100))
    assert test_ids != list(range(80, 100))
    with pytest.raises(ValueError, match="between 0 and 1"):
        ds.train_test_split(1.0)
    with pytest.raises(ValueError, match="more than the dataset's 100 rows"):
        ds.train_test_split(101)


def test_size_bytes_counts_the_blocks() -> None:
    ds = nd.from_numpy(np.zeros((1000, 4), dtype=np.float64))
    assert ds.size_bytes() >= 1000 * 4 * 8
    assert nd.range(1000).map_batches(lambda b: b).size_bytes() == 1000 * 8


def test_local_shuffle_drop_last_and_iterator() -> None:
    ds = nd.range(100, parallelism=10)
    batches = list(
        ds.iter_batches(batch_size=30, local_shuffle_buffer_size=40, local_shuffle_seed=1)
    )
    ids = np.concatenate([batch["id"] for batch in batches])
    assert sorted(ids.tolist()) == list(range(100))
    assert ids.tolist() != list(range(100))
    again = ds.iter_batches(batch_size=30, local_shuffle_buffer_size=40, local_shuffle_seed=1)
    assert np.concatenate([batch["id"] for batch in again]).tolist() == ids.tolist()
    sizes = [len(batch["id"]) for batch in ds.iter_batches(batch_size=30, drop_last=True)]
    assert sizes == [30, 30, 30]
    iterator = ds.iterator()
    assert isinstance(iterator, nd.DataIterator)
    for _ in range(2):  # each pass runs the dataset again
        assert sum(len(b["id"]) for b in iterator.iter_batches(batch_size=None)) == 100
    with pytest.raises(ValueError, match="local_shuffle_buffer_size"):
        next(ds.iter_batches(local_shuffle_buffer_size=0))


def test_iter_torch_batches_without_torch_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match="pip install torch"):
        next(nd.range(4).iter_torch_batches())


def test_iter_torch_batches_gives_tensors() -> None:
    torch = pytest.importorskip("torch")
    ds = nd.range(10).map_batches(lambda b: {"x": b["id"], "y": b["id"] * 0.5})
    batches = list(ds.iter_torch_batches(batch_size=4, dtypes={"x": torch.float32}))
    assert [tuple(batch["x"].shape) for batch in batches] == [(4,), (4,), (2,)]
    assert batches[0]["x"].dtype == torch.float32 and batches[0]["y"].dtype == torch.float64
    assert torch.cat([batch["x"] for batch in batches]).tolist() == list(range(10))
    split = ds.streaming_split(1)[0]
    collated = list(split.iter_torch_batches(batch_size=5, collate_fn=lambda b: len(b["x"])))
    assert collated == [5, 5]


def test_with_column_computes_expressions_in_arrow() -> None:
    import pyarrow.compute as pc
    from nebula.data.expressions import col, lit

    ds = nd.range(5)
    odd = ds.with_column("z", col("id") * 2 + 1)
    assert [row["z"] for row in odd.take_all()] == [1, 3, 5, 7, 9]
    assert [row["z"] for row in ds.with_column("z", "id * 3").take_all()] == [0, 3, 6, 9, 12]
    assert {row["c"] for row in ds.with_column("c", lit(7)).take_all()} == {7}
    assert [row["p"] for row in ds.with_column("p", pc.field("id") + 10).take(2)] == [10, 11]
    replaced = ds.with_column("id", col("id") - 1)
    assert replaced.columns() == ["id"] and replaced.min("id") == -1
    with pytest.raises(KeyError, match="nope"):
        ds.with_column("z", col("nope") + 1).take_all()
    with pytest.raises(TypeError, match="with_column takes a string"):
        ds.with_column("z", 3)


def test_split_proportionately_randomize_block_order_and_input_files(tmp_path: Path) -> None:
    ds = nd.range(100, override_num_blocks=10)
    pieces = ds.split_proportionately([0.2, 0.3])
    assert [piece.count() for piece in pieces] == [20, 30, 50]
    assert [row["id"] for row in pieces[1].take(2)] == [20, 21]
    with pytest.raises(ValueError, match="less than 1"):
        ds.split_proportionately([0.5, 0.5])

    shuffled = [row["id"] for row in ds.randomize_block_order(seed=3).take_all()]
    assert sorted(shuffled) == list(range(100)) and shuffled != list(range(100))
    firsts = shuffled[::10]  # whole blocks move: each block's rows stay together, in order
    assert all(
        shuffled[i : i + 10] == list(range(f, f + 10)) for i, f in zip(range(0, 100, 10), firsts)
    )

    for index in range(3):
        (tmp_path / f"part{index}.txt").write_text(f"line {index}\n")
    files = nd.read_text(tmp_path).map(lambda row: row).input_files()
    assert files == [str(tmp_path / f"part{index}.txt") for index in range(3)]
    assert ds.input_files() == []
