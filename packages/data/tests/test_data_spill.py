"""Larger than memory: a sort and a shuffle through an object store a tenth of the data
finish, spilling, with every row checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nebula.data as nd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _data_tasks import tasks_named
from nebula.data import _shuffle
from nebula.data._shuffle import larger_than_store

import nebula
from nebula.testing import wait_for_condition

FILES = 16
ROWS = 125_000  # 16 files x 125k rows x (3 x 8 bytes + ~12 bytes of text) ~ 75 MB in memory
STORE = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("spill_source")
    rng = np.random.default_rng(11)
    for f in range(FILES):
        ids = np.arange(f * ROWS, (f + 1) * ROWS)
        table = pa.table(
            {
                "id": ids,
                "x": rng.standard_normal(ROWS),
                "y": rng.standard_normal(ROWS),
                "text": pa.array([f"row-{i:09d}" for i in ids]),
            }
        )
        pq.write_table(table, folder / f"part-{f}.parquet")
    nebula.init(num_cpus=2, object_store_memory=STORE)
    yield folder
    nebula.shutdown()


def test_sort_through_a_store_a_tenth_of_the_data(source: Path, tmp_path: Path) -> None:
    nd.read_parquet(str(source)).sort("x").write_parquet(str(tmp_path / "out"))
    got = pq.read_table(tmp_path / "out")
    x = got.column("x").to_numpy()
    assert got.num_rows == FILES * ROWS
    assert bool(np.all(x[1:] >= x[:-1]))
    ids = got.column("id").to_numpy()
    assert np.array_equal(np.sort(ids), np.arange(FILES * ROWS))
    texts = got.column("text").to_pylist()
    assert all(t == f"row-{i:09d}" for t, i in zip(texts, ids.tolist()))


def test_random_shuffle_through_a_small_store(source: Path) -> None:
    ids = nd.read_parquet(str(source)).random_shuffle(seed=5).select_columns(["id"])
    got = np.concatenate([b["id"] for b in ids.iter_batches(batch_format="numpy")])
    assert np.array_equal(np.sort(got), np.arange(FILES * ROWS))
    assert not np.array_equal(got, np.arange(FILES * ROWS))


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Output blocks of 2 MB, and what the exchanges decided about splitting."""
    context = nd.DataContext.get_current()
    saved = context.target_max_block_size
    context.target_max_block_size = 2 * 1024 * 1024
    decisions: list[bool] = []

    def recorded(bundles: list[object]) -> bool:
        decisions.append(larger_than_store(bundles))  # type: ignore[arg-type]
        return decisions[-1]

    monkeypatch.setattr(_shuffle, "larger_than_store", recorded)
    yield decisions
    context.target_max_block_size = saved


def test_sort_in_pieces_per_partition(source: Path, small_blocks: list[bool]) -> None:
    # Blocks larger than the store are split once, a piece per output range.
    refs = nd.read_parquet(str(source)).sort("x", descending=True).to_arrow_refs()
    assert len(refs) > FILES
    previous, ids = np.inf, []
    for ref in refs:
        block = nebula.get(ref)
        x = block.column("x").to_numpy()
        assert x[0] <= previous and bool(np.all(x[1:] <= x[:-1]))
        previous = x[-1]
        ids.append(block.column("id").to_numpy())
    assert np.array_equal(np.sort(np.concatenate(ids)), np.arange(FILES * ROWS))
    assert small_blocks == [True]


def test_random_shuffle_in_pieces_per_partition(source: Path, small_blocks: list[bool]) -> None:
    ds = nd.read_parquet(str(source)).random_shuffle(seed=3)
    refs = ds.to_arrow_refs()
    assert len(refs) > FILES
    first = np.concatenate([nebula.get(ref).column("id").to_numpy() for ref in refs])
    again = np.concatenate(
        [
            b["id"]
            for b in nd.read_parquet(str(source))
            .random_shuffle(seed=3)
            .iter_batches(batch_format="numpy")
        ]
    )
    assert np.array_equal(np.sort(first), np.arange(FILES * ROWS))
    assert np.array_equal(first, again)
    assert small_blocks == [True, True]


@pytest.fixture
def fan_in_4(small_blocks: list[bool]) -> Iterator[list[bool]]:
    """More blocks (16) than the merge fan-in: pieces are merged in two stages."""
    context = nd.DataContext.get_current()
    saved = context.shuffle_merge_fan_in
    context.shuffle_merge_fan_in = 4
    yield small_blocks
    context.shuffle_merge_fan_in = saved


def test_sort_merges_many_blocks_in_two_stages(source: Path, fan_in_4: list[bool]) -> None:
    merges_before = tasks_named("_merge_sorted_pieces")
    refs = nd.read_parquet(str(source)).sort("x").to_arrow_refs()
    previous, ids = -np.inf, []
    for ref in refs:
        block = nebula.get(ref)
        x = block.column("x").to_numpy()
        assert x[0] >= previous and bool(np.all(x[1:] >= x[:-1]))
        previous = x[-1]
        ids.append(block.column("id").to_numpy())
    assert np.array_equal(np.sort(np.concatenate(ids)), np.arange(FILES * ROWS))
    assert fan_in_4 == [True]
    # 4 groups of 4 blocks, each merging every output range's pieces once.
    wait_for_condition(lambda: tasks_named("_merge_sorted_pieces") - merges_before == 4 * len(refs))


def test_shuffle_merged_in_two_stages_keeps_its_seeded_order(
    source: Path, small_blocks: list[bool]
) -> None:
    def shuffled() -> np.ndarray:
        ds = nd.read_parquet(str(source)).random_shuffle(seed=9).select_columns(["id"])
        return np.concatenate([b["id"] for b in ds.iter_batches(batch_format="numpy")])

    direct = shuffled()
    context = nd.DataContext.get_current()
    saved, context.shuffle_merge_fan_in = context.shuffle_merge_fan_in, 4
    concats_before = tasks_named("_concat_pieces")
    try:
        merged = shuffled()
    finally:
        context.shuffle_merge_fan_in = saved
    assert np.array_equal(np.sort(merged), np.arange(FILES * ROWS))
    assert np.array_equal(merged, direct)
    assert small_blocks == [True, True]
    wait_for_condition(lambda: tasks_named("_concat_pieces") > concats_before)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_of_rows_already_in_key_order_keeps_its_blocks_small(
    source: Path, small_blocks: list[bool], descending: bool
) -> None:
    # Range boundaries are sampled from the first blocks, which hold only the smallest ids:
    # every later row falls in one range, which is then sorted again on its own.
    target = nd.DataContext.get_current().target_max_block_size
    refs = nd.read_parquet(str(source)).sort("id", descending=descending).to_arrow_refs()
    blocks = [nebula.get(ref) for ref in refs]
    ids = np.concatenate([block.column("id").to_numpy() for block in blocks])
    expected = np.arange(FILES * ROWS)
    assert np.array_equal(ids, expected[::-1] if descending else expected)
    texts = pa.concat_arrays([block.column("text").combine_chunks() for block in blocks])
    assert all(t == f"row-{i:09d}" for t, i in zip(texts.to_pylist(), ids.tolist()))
    assert max(block.nbytes for block in blocks) <= 3 * target
    assert small_blocks == [True]


def test_sort_with_nulls_and_nans_through_a_small_store(
    source: Path, small_blocks: list[bool]
) -> None:
    rng = np.random.default_rng(4)
    keys = rng.standard_normal(400_000)
    keys[::97] = np.nan
    mask = np.zeros(len(keys), dtype=bool)
    mask[::101] = True
    table = pa.table(
        {"k": pa.array(keys, mask=mask), "i": np.arange(len(keys)), "pad": np.zeros(len(keys))}
    )
    ds = nd.from_arrow([table.slice(i, 25_000) for i in range(0, len(keys), 25_000)])
    ds = ds.map_batches(lambda batch: batch, batch_format="pyarrow")  # sorted where mapped
    got = pa.concat_tables(
        [nebula.get(ref) for ref in ds.sort("k", descending=True).to_arrow_refs()]
    )
    expected = table.sort_by([("k", "descending")])
    for column in (got.column("k"), expected.column("k")):
        assert column.null_count == len(mask[mask])
    assert got.column("k").is_null().equals(expected.column("k").is_null())
    values = got.column("k").fill_null(0.0).to_numpy()
    assert np.array_equal(values, expected.column("k").fill_null(0.0).to_numpy(), equal_nan=True)
    assert np.array_equal(np.sort(got.column("i").to_numpy()), np.arange(len(keys)))
    assert small_blocks == [True]


def _shuffled_table(source: Path, seed: int) -> pa.Table:
    ds = nd.read_parquet(str(source)).random_shuffle(seed=seed)
    return pa.concat_tables([nebula.get(ref) for ref in ds.to_arrow_refs()])


def test_random_shuffle_through_a_small_store_keeps_every_row_once(
    source: Path, fan_in_4: list[bool]
) -> None:
    got = _shuffled_table(source, 21)
    again = _shuffled_table(source, 21)
    assert got.column_names == ["id", "x", "y", "text"]
    ids = got.column("id").to_numpy()
    assert np.array_equal(np.sort(ids), np.arange(FILES * ROWS))
    assert not np.array_equal(ids, np.arange(FILES * ROWS))
    source_table = pq.read_table(source).sort_by("id")
    moved = got.sort_by("id")
    for name in ("x", "y"):
        assert np.array_equal(moved.column(name).to_numpy(), source_table.column(name).to_numpy())
    assert moved.column("text").equals(source_table.column("text"))
    assert got.equals(again)
    assert fan_in_4 == [True, True]


def test_random_shuffle_splits_each_block_as_it_arrives(
    source: Path, small_blocks: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nebula.data._shuffle_stream import ShuffleStream

    splits_before: list[int] = []  # blocks split when each block arrived
    add = ShuffleStream.add

    def recorded(self: ShuffleStream, bundle: object, to_come: int | None) -> None:
        splits_before.append(len(self._pieces))
        add(self, bundle, to_come)  # type: ignore[arg-type]

    monkeypatch.setattr(ShuffleStream, "add", recorded)
    splits = tasks_named("_split_keyed")
    refs = nd.read_parquet(str(source)).random_shuffle(seed=2).to_arrow_refs()
    ids = np.concatenate([nebula.get(ref).column("id").to_numpy() for ref in refs])
    assert np.array_equal(np.sort(ids), np.arange(FILES * ROWS))
    # Every block but the last was split before the last one came, each split once.
    assert len(splits_before) == FILES
    assert splits_before[-1] == FILES - 1
    assert small_blocks == [True]
    wait_for_condition(lambda: tasks_named("_split_keyed") - splits == FILES)


def test_repartition_with_shuffle_through_a_small_store_makes_the_blocks_asked(
    source: Path, small_blocks: list[bool]
) -> None:
    refs = nd.read_parquet(str(source)).repartition(20, shuffle=True).to_arrow_refs()
    blocks = [nebula.get(ref) for ref in refs]
    assert len(blocks) == 20
    ids = np.concatenate([block.column("id").to_numpy() for block in blocks])
    assert np.array_equal(np.sort(ids), np.arange(FILES * ROWS))
    assert small_blocks == [True]


def test_a_materialized_dataset_sorts_and_shuffles_in_pieces(
    source: Path, small_blocks: list[bool]
) -> None:
    # No read or map before the exchange to run its map side: each stored block is sorted
    # (or keyed) and split into its pieces in one task, read back from disk once.
    ds = nd.read_parquet(str(source)).materialize()
    splits, sort_maps = tasks_named("_split_sorted"), tasks_named("_sort_map")
    x = np.concatenate([b["x"] for b in ds.sort("x").iter_batches(batch_format="numpy")])
    assert len(x) == FILES * ROWS and bool(np.all(x[1:] >= x[:-1]))
    wait_for_condition(lambda: tasks_named("_split_sorted") - splits == FILES)
    assert tasks_named("_sort_map", settled=True) == sort_maps

    keyed = tasks_named("_key_and_split")

    def shuffled() -> pa.Table:
        return pa.concat_tables(
            nebula.get(ref) for ref in ds.random_shuffle(seed=2).to_arrow_refs()
        )

    first, again = shuffled(), shuffled()
    ids = first.column("id").to_numpy()
    assert np.array_equal(np.sort(ids), np.arange(FILES * ROWS))
    assert not np.array_equal(ids, np.arange(FILES * ROWS))
    texts = first.column("text").to_pylist()
    assert all(t == f"row-{i:09d}" for t, i in zip(texts, ids.tolist()))
    assert first.equals(again)
    wait_for_condition(lambda: tasks_named("_key_and_split") - keyed == 2 * FILES)
    assert small_blocks == [True, True, True]
