"""``Dataset.join``: the rows of two datasets matched on key columns, as Arrow hash joins.

Both inputs are range-partitioned on the first key column with the same boundaries (taken
from a sample of both sides' keys), so rows with equal keys meet in the same partition;
each partition pair is then joined in one task with ``pyarrow.Table.join``. Rows whose first
key is null go to partition 0: they match nothing, but outer joins keep them.
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
from nebula.data._shuffle import group_rows, slice_part

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
    parts = len(boundaries) + 1
    if key not in block.column_names:
        raise KeyError(f"join: no key column {key!r}; the dataset has {block.column_names}.")
    ids = partition_ids(block.column(key), boundaries, null_part=0)
    return group_rows(block, ids, parts)


@nebula.remote(num_returns=2)
def _join_partition(
    spec: JoinSpec, part: int, left_count: int, right_count: int, *args: Any
) -> tuple[Block, BlockMetadata]:
    """Join range ``part``: ``args`` are the left maps' offsets, the right maps' offsets,
    then the left maps' blocks and the right maps' blocks."""
    counts = left_count + right_count
    offsets, blocks = args[:counts], args[counts:]
    left = _blocks.concat(slice_part(offsets[:left_count], blocks[:left_count], part, True))
    right = _blocks.concat(slice_part(offsets[left_count:], blocks[left_count:], part, True))
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
    left_maps = [_partition.remote(b.ref, spec.on[0], boundaries) for b in left]
    right_maps = [_partition.remote(b.ref, spec.right_on[0], boundaries) for b in right]
    offsets = [offset for _, offset in left_maps + right_maps]
    blocks = [block for block, _ in left_maps + right_maps]
    counts = (len(left_maps), len(right_maps))
    if parts == 1:  # keep the one block even when it is empty (its schema)
        block_ref, meta_ref = _join_partition.remote(spec, 0, *counts, *offsets, *blocks)
        return [RefBundle(block_ref, nebula.get(meta_ref))]
    # Submitted as the writer downstream takes the joined blocks, so they do not pile up.
    return [
        DeferredBundle(partial(_submit_join, spec, part, *counts, *offsets, *blocks))
        for part in range(parts)
    ]


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
