"""Sort and random shuffle as one map/reduce exchange over shared memory.

Each map task reorders its block once (by the sort key, or at random) so that the rows of
every output partition are contiguous, and returns that one block with the offsets where
partitions start. Reduce task ``p`` receives every map block (mapped from the object
store, zero-copy), slices partition ``p`` out of each and, with one more ``take``, merges
(sort: a stable argsort over sorted runs, which timsort merges in linear passes) or
permutes them. No piece is ever stored on its own, so no row is copied between the map's
reorder and the reduce's. Reduce outputs are handed on as each finishes, in partition
order, so a writer downstream starts on the first range while later ones are merged.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from nebula.data import _blocks
from nebula.data._blocks import Block, BlockMetadata, DeferredBundle, PendingBundle, RefBundle
from nebula.data._transforms import BlockTransform, TaskContext
from nebula.data._zero_copy import arrow_from_numpy, numpy_view

import nebula
from nebula.util.scheduling_strategies import NodeAffinitySchedulingStrategy

SHUFFLE_KEY = "__nebula_shuffle_key"  # a row's random place, added where blocks are made
KEY_SPACE = 2**16  # shuffle keys are uint16: any number of partitions up to this

# Keys that numpy sorts exactly as Arrow does (no nulls: Arrow puts them last).
_NUMPY_SORTABLE = "iuf"


def _key_array(block: Block, key: str) -> np.ndarray | None:
    """The key column as numpy when numpy can order it, else None (Arrow sorts it)."""
    column = block.column(key)
    if column.null_count or not (
        pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    ):
        return None
    values = numpy_view(column)
    if values is None:
        return None
    if values.dtype.kind == "f" and np.isnan(values).any():
        return None  # Arrow orders NaN after numbers; numpy does too, but not stably with -0.0
    return values


def _sort_order(block: Block, keys: Sequence[str], descending: bool) -> np.ndarray:
    """Row positions that sort ``block`` (stable: equal keys keep their order)."""
    values = _key_array(block, keys[0]) if len(keys) == 1 else None
    if values is not None:
        if descending:
            # Reverse a stable ascending sort of the reversed rows: still stable.
            order = np.argsort(values[::-1], kind="stable")[::-1]
            return len(values) - 1 - order  # type: ignore[no-any-return]
        return np.argsort(values, kind="stable")
    direction = "descending" if descending else "ascending"
    return pc.sort_indices(block, sort_keys=[(key, direction) for key in keys]).to_numpy()


def indices(values: np.ndarray) -> pa.Array:
    """Row positions as Arrow, sharing memory (``pa.array`` would import pandas)."""
    shared = arrow_from_numpy(np.ascontiguousarray(values, dtype=np.int64))
    return shared if shared is not None else pa.array(values)


def _ordered_prefix(column: pa.ChunkedArray) -> Any:
    """The values of a sorted key column before its nulls and NaNs (which sort last)."""
    prefix = column.slice(0, len(column) - column.null_count)
    view = numpy_view(prefix)
    values = view if view is not None else prefix.to_numpy(zero_copy_only=False)
    # NaNs sort last: the last value tells whether there are any.
    if len(values) and values.dtype.kind == "f" and np.isnan(values[-1]):
        values = values[: len(values) - int(np.count_nonzero(np.isnan(values)))]
    return values


def _range_cuts(
    block: Block, keys: Sequence[str], descending: bool, boundaries: np.ndarray
) -> np.ndarray:
    """Where each range partition starts in ``block``, sorted by ``keys`` (plus the end).

    ``boundaries`` are in output order (descending for a descending sort); nulls and NaNs
    sort last, so they fall in the last partition.
    """
    if not block.num_rows:
        return np.zeros(len(boundaries) + 2, dtype=np.int64)
    if not len(boundaries):
        return np.array([0, block.num_rows], dtype=np.int64)
    values = _ordered_prefix(block.column(keys[0]))
    if descending:  # values >= boundary come first
        cuts = len(values) - np.searchsorted(values[::-1], boundaries, side="left")
    else:  # values <= boundary come first
        cuts = np.searchsorted(values, boundaries, side="right")
    return np.concatenate([[0], cuts, [block.num_rows]]).astype(np.int64)


@nebula.remote(num_returns=2)
def _sort_map(
    block: Block, keys: list[str], descending: bool, boundaries: np.ndarray
) -> tuple[Block, np.ndarray]:
    """``block`` sorted, and where each range partition starts in it.

    ``boundaries`` are in output order (descending for a descending sort); nulls and NaNs
    sort last, so they fall in the last partition.
    """
    block = SortMapTransform(keys, descending)(block)
    return block, _range_cuts(block, keys, descending, boundaries)


@nebula.remote(num_returns=2)
def _shuffle_map(block: Block, parts: int, seed: int | None) -> tuple[Block, np.ndarray]:
    """``block`` with its rows grouped by a random output partition each, and where each
    partition starts. Rows keep their order within a partition (the reduce permutes them),
    which makes this ``take`` read memory nearly in order."""
    rng = np.random.default_rng(seed)
    kind = np.int16 if parts < 2**15 else np.int64
    return group_rows(block, rng.integers(0, parts, size=block.num_rows, dtype=kind), parts)


def group_rows(block: Block, ids: np.ndarray, parts: int) -> tuple[Block, np.ndarray]:
    """``block`` with the rows of each partition ``ids`` names contiguous (in their order),
    and where each partition starts (plus the end)."""
    counts = np.bincount(ids, minlength=parts) if len(ids) else np.zeros(parts, dtype=np.int64)
    if block.num_rows and parts > 1 and np.count_nonzero(counts) > 1:
        block = block.take(indices(np.argsort(ids, kind="stable")))
    return block, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def slice_part(
    offsets: Sequence[np.ndarray], blocks: Sequence[Block], part: int, keep_empty: bool = False
) -> list[Block]:
    """Partition ``part`` of each map output (empty ones only with ``keep_empty``, so a
    reduce always has a schema)."""
    pieces = []
    for cuts, block in zip(offsets, blocks):
        start, stop = int(cuts[part]), int(cuts[part + 1])
        if stop > start or keep_empty:
            pieces.append(block.slice(start, stop - start))
    return pieces


def _pieces(part: int, count: int, args: Sequence[Any]) -> list[Block]:
    """Partition ``part`` of each of ``count`` map outputs: offsets first, then blocks."""
    return slice_part(args[:count], args[count:], part)


@nebula.remote(num_returns=2)
def _sort_reduce(
    part: int, count: int, keys: list[str], descending: bool, *args: Any
) -> tuple[Block, BlockMetadata]:
    return _merge_sorted(_pieces(part, count, args), args[count], keys, descending)


@nebula.remote(num_returns=2)
def _shuffle_reduce(part: int, count: int, seed: int | None, *args: Any) -> tuple[Block, Any]:
    pieces = _pieces(part, count, args)
    if not pieces:
        return _empty(args[count]), BlockMetadata(0, 0, args[count].schema)
    block = _blocks.concat(pieces)
    block = block.take(indices(np.random.default_rng(seed).permutation(block.num_rows)))
    return block, BlockMetadata.of(block)


def _empty(like: Block) -> Block:
    return like.schema.empty_table()


@nebula.remote
def _sample(block: Block, key: str, count: int) -> np.ndarray:
    column = block.column(key).drop_null()
    if len(column) == 0:
        return np.array([])
    view = numpy_view(column)
    values = view if view is not None else column.to_numpy(zero_copy_only=False)
    picks = np.random.default_rng(len(values)).choice(len(values), size=min(count, len(values)))
    return values[picks]  # type: ignore[no-any-return]


def sample_boundaries(
    bundles: Sequence[RefBundle], key: str, descending: bool, parts: int, per_block: int
) -> np.ndarray:
    """Values of ``key`` that cut the rows of ``bundles`` into about ``parts`` ranges of
    equal size, from ``per_block`` values sampled in each block, in output order."""
    if parts <= 1:
        return np.array([])
    samples = nebula.get([_sample.remote(b.ref, key, per_block) for b in bundles])
    present = [sample for sample in samples if len(sample)]
    present = [s[~np.isnan(s)] if s.dtype.kind == "f" else s for s in present]
    boundaries = np.array([])
    if present:
        pooled = np.sort(np.concatenate(present))
        cuts = np.linspace(0, len(pooled), num=parts + 1)[1:-1].astype(int)
        boundaries = np.unique(pooled[cuts])
        if descending:
            boundaries = boundaries[::-1]
    return boundaries


def output_partitions(bundles: Sequence[RefBundle], requested: int | None = None) -> int:
    """How many blocks an exchange makes: ``requested``, else as many as it was given, or
    more when that keeps them under the context's ``target_max_block_size``."""
    if requested:
        return requested
    from nebula.data._executor import DataContext

    target = max(1, DataContext.get_current().target_max_block_size)
    total = sum(bundle.meta.size_bytes for bundle in bundles)
    return max(len(bundles), -(-total // target), 1)


def sort(bundles: list[RefBundle], params: dict[str, Any]) -> list[Any]:
    """Sample boundaries of the first key, sort and range-cut each block in a map task,
    merge each range in a reduce task; ranges come out in order.

    Equal first-key values always land in the same range, so sorting each range on all
    keys and handing the ranges on in order sorts the whole dataset.
    """
    keys: list[str] = params["keys"]
    descending: bool = params["descending"]
    bundles = [bundle for bundle in bundles if bundle.meta.num_rows]
    if not bundles:
        return []
    split = larger_than_store(bundles)
    parts = _partitions_by_size(bundles) if split else output_partitions(bundles)
    boundaries = sample_boundaries(bundles, keys[0], descending, parts, 4 * parts)
    parts = len(boundaries) + 1
    if split and parts > 1:
        presorted = bool(params.get("sorted_blocks"))
        return split_and_merge(bundles, keys, descending, boundaries, presorted=presorted)
    if params.get("sorted_blocks"):  # blocks come sorted by SortMapTransform
        blocks = [bundle.ref for bundle in bundles]
        return [
            DeferredBundle(
                partial(_submit, _sorted_blocks_reduce, part, keys, descending, boundaries, *blocks)
            )
            for part in range(parts)
        ]
    maps = [_sort_map.remote(b.ref, keys, descending, boundaries) for b in bundles]
    offsets = [offset_ref for _, offset_ref in maps]
    blocks = [block_ref for block_ref, _ in maps]
    return [
        DeferredBundle(
            partial(_submit, _sort_reduce, part, len(maps), keys, descending, *offsets, *blocks)
        )
        for part in range(parts)
    ]


@dataclass
class ShuffleMapTransform(BlockTransform):
    """The map side of a random shuffle, run in the task that reads or maps each block.

    Every row draws a random key, and the block comes out ordered by it, with the key as
    an extra column. However many partitions the exchange picks later, each is a range of
    keys, contiguous in every block: a reduce finds its rows with two binary searches. The
    input blocks are then never stored, only their shuffled form.
    """

    seed: int | None

    def apply(self, block: Block, context: TaskContext) -> Block:
        seed = None if self.seed is None else self.seed + context.task_index
        keys = np.random.default_rng(seed).integers(
            0, KEY_SPACE, size=block.num_rows, dtype=np.uint16
        )
        if block.num_rows > 1:
            order = np.argsort(keys, kind="stable")  # a radix sort for 16-bit keys
            block, keys = block.take(indices(order)), keys[order]
        shuffle_keys = arrow_from_numpy(keys)
        assert shuffle_keys is not None
        return block.append_column(SHUFFLE_KEY, shuffle_keys)

    def __call__(self, block: Block) -> Block:
        return self.apply(block, TaskContext())


@dataclass
class SortMapTransform(BlockTransform):
    """The map side of a sort, run in the task that reads or maps each block: the block
    sorted by the keys. The exchange samples the sorted blocks for range boundaries, and
    each reduce finds its range in every block with a binary search, so the input blocks
    are never stored, only their sorted form."""

    keys: list[str]
    descending: bool
    what: str = "sort"  # the operation named in errors ("join" when a join sorts its input)

    def __call__(self, block: Block) -> Block:
        missing = [key for key in self.keys if key not in block.column_names]
        if missing:
            raise KeyError(
                f"{self.what}: no key column {missing[0]!r}; the dataset has {block.column_names}."
            )
        if block.num_rows > 1:
            block = block.take(indices(_sort_order(block, self.keys, self.descending)))
        return block


@nebula.remote(num_returns=2)
def _sorted_blocks_reduce(
    part: int, keys: list[str], descending: bool, boundaries: np.ndarray, *blocks: Block
) -> tuple[Block, BlockMetadata]:
    """Range ``part`` of blocks each sorted by ``keys``, merged."""
    offsets = [_range_cuts(block, keys, descending, boundaries) for block in blocks]
    return _merge_sorted(slice_part(offsets, blocks, part), blocks[0], keys, descending)


def _merge_sorted(
    pieces: list[Block], like: Block, keys: list[str], descending: bool
) -> tuple[Block, BlockMetadata]:
    if not pieces:
        return _empty(like), BlockMetadata(0, 0, like.schema)
    block = _blocks.concat(pieces)
    if len(pieces) > 1:
        block = block.take(indices(_sort_order(block, keys, descending)))
    block = _blocks.compact(block)
    return block, BlockMetadata.of(block)


@nebula.remote(num_returns=2)
def _keyed_shuffle_reduce(
    low: int, high: int, seed: int | None, *blocks: Block
) -> tuple[Block, BlockMetadata]:
    """The rows whose shuffle keys are in ``[low, high)``, in a random order."""
    pieces = []
    for block in blocks:
        keys = numpy_view(block.column(SHUFFLE_KEY))
        assert keys is not None
        start, stop = (int(cut) for cut in np.searchsorted(keys, [low, high], side="left"))
        if stop > start:
            pieces.append(block.slice(start, stop - start).drop_columns([SHUFFLE_KEY]))
    if not pieces:
        empty = _empty(blocks[0].drop_columns([SHUFFLE_KEY]))
        return empty, BlockMetadata.of(empty)
    block = _blocks.concat(pieces)
    if block.num_rows > 1:
        block = block.take(indices(np.random.default_rng(seed).permutation(block.num_rows)))
    block = _blocks.compact(block)
    return block, BlockMetadata.of(block)


# ---- larger than the store: blocks split into a piece per partition -------------------
#
# A reduce that takes whole blocks maps every one of them; once they are spilled, each
# reduce would bring every block back from disk, and the exchange would copy the data once
# per reduce. So when the blocks are larger than half the store, each is split once into
# a piece per partition, stored on its own, and a reduce reads only its own pieces. A sort
# whose blocks come sorted, and a shuffle whose blocks come keyed, split each as it arrives
# instead (``_sort_stream``, ``_shuffle_stream``), before it is spilled whole.


def several_nodes() -> bool:
    """Whether the tasks of an exchange may run on more than one node (live, with CPUs)."""
    if not nebula.is_initialized():
        return False
    nodes = [node for node in nebula.nodes() if node["Alive"]]
    return sum(1 for node in nodes if node["Resources"].get("CPU", 0) > 0) > 1


def near(task: Any, bundle: RefBundle, spread: bool) -> Any:
    """``task`` placed on the node that holds ``bundle``'s block when the exchange is
    ``spread`` over several nodes, so that the block is not moved whole only to be split
    (elsewhere when that node is gone)."""
    node = bundle.meta.node_id
    if not spread or node is None:
        return task
    return task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True))


def larger_than_store(bundles: Sequence[RefBundle]) -> bool:
    """Whether an exchange over ``bundles`` would not fit in the object store."""
    from nebula.data._budget import object_store_capacity

    return sum(bundle.meta.size_bytes for bundle in bundles) > object_store_capacity() // 2


class HeldBlocks:
    """The blocks an exchange stream holds until they outgrow the store, from when on it
    splits each block as it comes (``_sort_stream``, ``_shuffle_stream``)."""

    def __init__(self) -> None:
        self.bundles: list[RefBundle] = []
        self.bytes = 0
        self._capacity: int | None = None  # the store's bytes, asked at the first block

    def hold(self, bundle: RefBundle) -> None:
        self.bundles.append(bundle)
        self.bytes += bundle.meta.size_bytes

    def add(self, bundle: RefBundle, to_come: int | None) -> int | None:
        """Hold ``bundle``. Once the blocks held fill half the store and the exchange would
        not fit in it, the bytes expected in all: those seen, and as many a block for the
        ``to_come`` blocks still to come (unknown: as many blocks again); else None."""
        from nebula.data._budget import object_store_capacity

        self.hold(bundle)
        if self._capacity is None:
            self._capacity = object_store_capacity()
        if self.bytes <= self._capacity // 2 or not larger_than_store(self.bundles):
            return None
        count = len(self.bundles)
        return self.bytes + self.bytes * (count if to_come is None else to_come) // count

    def take(self) -> list[RefBundle]:
        bundles, self.bundles = self.bundles, []
        return bundles


def _partitions_by_size(bundles: Sequence[RefBundle]) -> int:
    return partitions_for(sum(bundle.meta.size_bytes for bundle in bundles))


def partitions_for(size: int) -> int:
    """The partitions of a split exchange of ``size`` bytes: as many as output blocks of
    ``target_max_block_size`` need (fewer than the blocks, so that pieces are not too small
    to be worth storing one by one)."""
    from nebula.data._executor import DataContext

    target = max(1, DataContext.get_current().target_max_block_size)
    return max(1, -(-size // target))


def _pieces_of(block: Block, cuts: Sequence[int]) -> tuple[Block, ...]:
    return tuple(
        _blocks.compact(block.slice(int(start), int(stop - start)))
        for start, stop in itertools.pairwise(cuts)
    )


@nebula.remote
def _split_sorted(
    block: Block, keys: list[str], descending: bool, boundaries: np.ndarray, presorted: bool
) -> tuple[Block, ...]:
    if not presorted:
        block = SortMapTransform(keys, descending)(block)
    return _pieces_of(block, list(_range_cuts(block, keys, descending, boundaries)))


def split_and_merge(
    bundles: Sequence[RefBundle],
    keys: list[str],
    descending: bool,
    boundaries: np.ndarray,
    *,
    presorted: bool = True,
) -> list[Any]:
    """Each of ``bundles`` (sorted blocks, else sorted first in the same task) split once
    into a piece per range of ``boundaries``; each range's pieces merged when its output
    is taken."""
    parts = len(boundaries) + 1
    splitter = _split_sorted.options(num_returns=parts)
    spread = several_nodes()
    pieces = [
        near(splitter, b, spread).remote(b.ref, keys, descending, boundaries, presorted)
        for b in bundles
    ]
    pieces = _merge_in_groups(pieces, parts, partial(_merge_sorted_pieces.remote, keys, descending))
    return [
        DeferredBundle(
            partial(_submit, _merge_pieces, keys, descending, *[p[part] for p in pieces])
        )
        for part in range(parts)
    ]


def _keyed_pieces(block: Block, key_cuts: np.ndarray) -> tuple[Block, ...]:
    keys = numpy_view(block.column(SHUFFLE_KEY))
    assert keys is not None
    cuts = np.searchsorted(keys, key_cuts, side="left")
    return _pieces_of(block.drop_columns([SHUFFLE_KEY]), list(cuts))


@nebula.remote
def _split_keyed(block: Block, key_cuts: np.ndarray) -> tuple[Block, ...]:
    return _keyed_pieces(block, key_cuts)


@nebula.remote
def _key_and_split(block: Block, key_cuts: np.ndarray, seed: int | None) -> tuple[Block, ...]:
    """A block not keyed yet (a materialized dataset's): keyed, then split."""
    return _keyed_pieces(ShuffleMapTransform(seed)(block), key_cuts)


@nebula.remote(num_returns=2)
def _merge_pieces(keys: list[str], descending: bool, *pieces: Block) -> tuple[Block, Any]:
    return _merge_sorted([p for p in pieces if p.num_rows], pieces[0], keys, descending)


@nebula.remote(num_returns=2)
def _permute_pieces(seed: int | None, *pieces: Block) -> tuple[Block, Any]:
    block = _blocks.concat([p for p in pieces if p.num_rows] or [pieces[0]])
    if block.num_rows > 1:
        block = block.take(indices(np.random.default_rng(seed).permutation(block.num_rows)))
    block = _blocks.compact(block)
    return block, BlockMetadata.of(block)


# ---- many blocks: their pieces merged in two stages ------------------------------------
#
# With very many input blocks, each reduce would take a piece from every one of them: as
# many small reads (from disk, once spilled) and task arguments. Past
# ``DataContext.shuffle_merge_fan_in`` blocks, each partition's pieces are first merged
# group by group, each group's merge running as soon as its blocks are split, and a
# reduce then takes one piece per group.


def _merge_in_groups(pieces: list[Any], parts: int, merge: Any) -> list[Any]:
    """``pieces[block][part]`` as ``merged[group][part]`` when there are more blocks than the
    fan-in (else unchanged); ``merge(*pieces)`` merges one partition's pieces of a group."""
    from nebula.data._executor import DataContext

    fan_in = max(2, DataContext.get_current().shuffle_merge_fan_in)
    if len(pieces) <= fan_in:
        return pieces
    groups = np.array_split(np.arange(len(pieces)), -(-len(pieces) // fan_in))
    return [[merge(*[pieces[i][part] for i in group]) for part in range(parts)] for group in groups]


@nebula.remote
def _merge_sorted_pieces(keys: list[str], descending: bool, *pieces: Block) -> Block:
    return _merge_sorted([p for p in pieces if p.num_rows], pieces[0], keys, descending)[0]


@nebula.remote
def _concat_pieces(*pieces: Block) -> Block:
    return _blocks.compact(_blocks.concat([p for p in pieces if p.num_rows] or [pieces[0]]))


def _block_seed(seed: int | None, index: int) -> int | None:
    return None if seed is None else seed + index


def _reduce_seed(seed: int | None, part: int) -> int | None:
    return None if seed is None else seed * 7919 + part


def key_cuts(parts: int) -> np.ndarray:
    """The shuffle keys where each of ``parts`` partitions starts, plus the end."""
    return np.arange(parts + 1, dtype=np.int64) * KEY_SPACE // parts


def split_keyed(bundle: RefBundle, cuts: np.ndarray, spread: bool) -> list[Any]:
    """A keyed block split into a piece per partition of ``cuts`` (more than one), on its
    own node when the exchange is ``spread`` over several."""
    splitter = near(_split_keyed.options(num_returns=len(cuts) - 1), bundle, spread)
    return list(splitter.remote(bundle.ref, cuts))


def permute_split(pieces: list[list[Any]], parts: int, seed: int | None) -> list[Any]:
    """Outputs from ``pieces[block][part]``: each partition's pieces, merged in groups
    first when the blocks are many, concatenated in the blocks' order and permuted."""
    pieces = _merge_in_groups(pieces, parts, _concat_pieces.remote)
    return [
        DeferredBundle(
            partial(_submit, _permute_pieces, _reduce_seed(seed, part), *[p[part] for p in pieces])
        )
        for part in range(parts)
    ]


def _shuffle_parts(bundles: list[RefBundle], params: dict[str, Any], split: bool) -> int:
    """A shuffle's output blocks: as many as asked, else by size when the blocks are split
    (``_partitions_by_size``), else ``output_partitions``; at most one per key."""
    requested = params.get("num_blocks")
    parts = requested or (_partitions_by_size(bundles) if split else output_partitions(bundles))
    return min(parts, KEY_SPACE)


def _keyed_shuffle(bundles: list[RefBundle], params: dict[str, Any]) -> list[Any]:
    seed: int | None = params.get("seed")
    split = larger_than_store(bundles)
    parts = _shuffle_parts(bundles, params, split)
    cuts = key_cuts(parts)
    if split and parts > 1:
        spread = several_nodes()
        pieces = [split_keyed(bundle, cuts, spread) for bundle in bundles]
        return permute_split(pieces, parts, seed)
    blocks = [bundle.ref for bundle in bundles]
    return [
        DeferredBundle(
            partial(
                _submit,
                _keyed_shuffle_reduce,
                int(cuts[part]),
                int(cuts[part + 1]),
                _reduce_seed(seed, part),
                *blocks,
            )
        )
        for part in range(parts)
    ]


def _submit(task: Any, *args: Any) -> PendingBundle:
    return PendingBundle(*task.remote(*args))


def random_shuffle(bundles: list[RefBundle], params: dict[str, Any]) -> list[Any]:
    """Every row to a random output block, in a random order within it."""
    seed: int | None = params.get("seed")
    bundles = [bundle for bundle in bundles if bundle.meta.num_rows]
    if not bundles:
        return []
    if params.get("keyed"):  # blocks come shuffled by ShuffleMapTransform
        return _keyed_shuffle(bundles, params)
    if larger_than_store(bundles):  # keyed and split in one task per block
        parts = _shuffle_parts(bundles, params, split=True)
        if parts > 1:
            cuts = key_cuts(parts)
            splitter = _key_and_split.options(num_returns=parts)
            spread = several_nodes()
            pieces = [
                list(near(splitter, b, spread).remote(b.ref, cuts, _block_seed(seed, index)))
                for index, b in enumerate(bundles)
            ]
            return permute_split(pieces, parts, seed)
    parts = output_partitions(bundles, params.get("num_blocks"))
    maps = [
        _shuffle_map.remote(b.ref, parts, _block_seed(seed, index))
        for index, b in enumerate(bundles)
    ]
    offsets = [offset_ref for _, offset_ref in maps]
    blocks = [block_ref for block_ref, _ in maps]
    return [
        PendingBundle(
            *_shuffle_reduce.remote(part, len(maps), _reduce_seed(seed, part), *offsets, *blocks)
        )
        for part in range(parts)
    ]
