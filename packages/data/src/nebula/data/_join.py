"""``Dataset.join``: the rows of two datasets matched on key columns, as Arrow hash joins.

Both inputs are range-partitioned on the first key column with the same boundaries (taken
from a sample of both sides' keys), so rows with equal keys meet in the same partition;
each partition pair is then joined in one task with ``pyarrow.Table.join``.

An input that ends in a read or a map comes with each block already sorted by its key
(``JoinSortMapRule`` runs the sort in the task that makes the block), and each join task
finds its range in every such block with a binary search: the exchange stores only those
sorted blocks. Other inputs get a ``_partition`` task per block that groups its rows by
range in a copy. Rows whose first key is null go to the last range (where a sorted block
has them): they match nothing, but outer joins keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
from nebula.data import _blocks
from nebula.data._blocks import Block, BlockMetadata, DeferredBundle, PendingBundle, RefBundle
from nebula.data._exchange import key_boundaries, partition_ids
from nebula.data._logical import NAryOperator
from nebula.data._physical import AllToAllOperator, Input
from nebula.data._shuffle import _range_cuts, group_rows, slice_part

import nebula

# Ray's names for the join types, and pyarrow's.
JOIN_TYPES = {
    "inner": "inner",
    "left_outer": "left outer",
    "right_outer": "right outer",
    "full_outer": "full outer",
    "left_semi": "left semi",
    "right_semi": "right semi",
    "left_anti": "left anti",
    "right_anti": "right anti",
}


@dataclass(frozen=True)
class JoinSpec:
    join_type: str
    on: tuple[str, ...]
    right_on: tuple[str, ...]
    left_suffix: str | None
    right_suffix: str | None
    num_partitions: int | None
    # Whether each input's (left, right) blocks come sorted by its first key.
    sorted_inputs: tuple[bool, bool] = (False, False)


@dataclass(frozen=True, eq=False)
class Join(NAryOperator):
    """Two inputs (left, right) joined on key columns."""

    spec: JoinSpec | None = None

    @property
    def name(self) -> str:
        assert self.spec is not None
        return f"Join[{self.spec.join_type}, on={list(self.spec.on)}]"


def make_spec(
    join_type: str,
    num_partitions: int | None,
    on: str | Sequence[str],
    right_on: str | Sequence[str] | None,
    left_suffix: str | None,
    right_suffix: str | None,
) -> JoinSpec:
    if join_type not in JOIN_TYPES:
        raise ValueError(
            f"join_type must be one of {', '.join(map(repr, JOIN_TYPES))}, got {join_type!r}."
        )
    if num_partitions is not None and (
        isinstance(num_partitions, bool)
        or not isinstance(num_partitions, int)
        or num_partitions < 1
    ):
        raise ValueError(f"num_partitions must be a positive integer, got {num_partitions!r}.")
    left_keys = (on,) if isinstance(on, str) else tuple(on)
    right_keys = (
        left_keys
        if right_on is None
        else ((right_on,) if isinstance(right_on, str) else tuple(right_on))
    )
    if not left_keys or len(left_keys) != len(right_keys):
        raise ValueError(
            f"join needs as many right_on keys as on keys (and at least one), got on={left_keys} "
            f"and right_on={right_keys}."
        )
    return JoinSpec(join_type, left_keys, right_keys, left_suffix, right_suffix, num_partitions)


def check_keys(spec: JoinSpec, left: pa.Schema | None, right: pa.Schema | None) -> None:
    """Raise when a schema lacks a key column, or when both sides have a non-key column of
    the same name and no suffix tells them apart (at once for schemas known up front)."""
    for side, keys, schema in (("left", spec.on, left), ("right", spec.right_on, right)):
        if schema is None:
            continue
        missing = [key for key in keys if key not in schema.names]
        if missing:
            raise ValueError(
                f"join: the {side} dataset has no column(s) {missing}; it has {schema.names}."
            )
    if left is None or right is None or spec.left_suffix or spec.right_suffix:
        return
    shared = sorted((set(left.names) - set(spec.on)) & (set(right.names) - set(spec.right_on)))
    if shared:
        raise ValueError(
            f"join: both datasets have the column(s) {shared}; pass left_suffix= or "
            "right_suffix= to tell them apart, or drop or rename them first."
        )


@nebula.remote(num_returns=2)
def _partition(block: Block, key: str, boundaries: np.ndarray) -> tuple[Block, np.ndarray]:
    """``block`` with each key range's rows contiguous, and where each range starts."""
    _check_key(block, key)
    # A key equal to a boundary goes to the range before it, as in a sorted block.
    ids = partition_ids(block.column(key), boundaries, null_part=len(boundaries), side="left")
    return group_rows(block, ids, len(boundaries) + 1)


def _check_key(block: Block, key: str) -> None:
    if key not in block.column_names:
        raise KeyError(f"join: no key column {key!r}; the dataset has {block.column_names}.")


def _side(
    offsets: Sequence[np.ndarray | None],
    blocks: Sequence[Block],
    key: str,
    boundaries: np.ndarray,
    part: int,
) -> Block:
    """Range ``part`` of one input's blocks: a partitioned block's from its offsets, a
    sorted block's (offsets None) found by binary search on ``key``."""
    cuts = []
    for offset, block in zip(offsets, blocks):
        if offset is None:
            if block.num_rows:
                _check_key(block, key)
            offset = _range_cuts(block, [key], False, boundaries)
        cuts.append(offset)
    return _blocks.concat(slice_part(cuts, blocks, part, True))


@nebula.remote(num_returns=2)
def _join_partition(
    spec: JoinSpec,
    part: int,
    boundaries: np.ndarray,
    left_count: int,
    right_count: int,
    *args: Any,
) -> tuple[Block, BlockMetadata]:
    """Join range ``part``: ``args`` are the left inputs' offsets, the right inputs' offsets
    (None for a sorted block), then the left blocks and the right blocks."""
    counts = left_count + right_count
    offsets, blocks = args[:counts], args[counts:]
    left_key, right_key = spec.on[0], spec.right_on[0]
    left = _side(offsets[:left_count], blocks[:left_count], left_key, boundaries, part)
    right = _side(offsets[left_count:], blocks[left_count:], right_key, boundaries, part)
    check_keys(spec, left.schema, right.schema)
    joined = left.join(
        right,
        keys=list(spec.on),
        right_keys=list(spec.right_on),
        join_type=JOIN_TYPES[spec.join_type],
        left_suffix=spec.left_suffix,
        right_suffix=spec.right_suffix,
        coalesce_keys=True,
    )
    joined = joined.combine_chunks()
    return joined, BlockMetadata.of(joined)


def run_join(spec: JoinSpec, left: list[RefBundle], right: list[RefBundle]) -> list[Any]:
    for side, bundles in (("left", left), ("right", right)):
        if not bundles:
            raise ValueError(f"join: the {side} dataset has no blocks (not even empty ones).")
    parts = spec.num_partitions or max(len(left), len(right))
    keys = [spec.on[0]] * len(left) + [spec.right_on[0]] * len(right)
    boundaries = key_boundaries([*left, *right], keys, parts, "join")
    parts = len(boundaries) + 1
    offsets: list[Any] = []
    blocks: list[Any] = []
    sides = zip((left, right), (spec.on[0], spec.right_on[0]), spec.sorted_inputs)
    for bundles, key, is_sorted in sides:
        if is_sorted:  # each reduce finds its range in the block itself
            offsets += [None] * len(bundles)
            blocks += [bundle.ref for bundle in bundles]
        else:
            maps = [_partition.remote(bundle.ref, key, boundaries) for bundle in bundles]
            offsets += [offset for _, offset in maps]
            blocks += [block for block, _ in maps]
    args = (boundaries, len(left), len(right), *offsets, *blocks)
    if parts == 1:  # keep the one block even when it is empty (its schema)
        block_ref, meta_ref = _join_partition.remote(spec, 0, *args)
        return [RefBundle(block_ref, nebula.get(meta_ref))]
    # Submitted as the writer downstream takes the joined blocks, so they do not pile up.
    return [DeferredBundle(partial(_submit_join, spec, part, *args)) for part in range(parts)]


def _submit_join(*args: Any) -> PendingBundle:
    return PendingBundle(*_join_partition.remote(*args))


class JoinOperator(AllToAllOperator):
    """Collects both inputs' blocks, then partitions and joins them all at once."""

    def __init__(self, name: str, spec: JoinSpec) -> None:
        super().__init__(name, self._join, {})
        self._spec = spec
        self._right: list[RefBundle] = []

    def add_input_from(self, item: Input, index: int) -> None:
        assert isinstance(item, RefBundle)
        if index == 0:
            self.add_input(item)
        else:
            self._right.append(item)

    def _join(self, left: list[RefBundle], params: dict[str, Any]) -> list[Any]:
        right, self._right = self._right, []
        return run_join(self._spec, left, right)
