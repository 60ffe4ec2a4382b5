"""All-to-all exchanges: repartition, block order, and the key ranges join and group-by cut.

Each exchange takes every input block reference with its metadata and returns new ones;
blocks move between tasks through the object store, never through the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from nebula.data import _blocks
from nebula.data._blocks import Block, BlockMetadata, RefBundle
from nebula.data._zero_copy import arrow_from_numpy, numpy_view

import nebula


def _with_meta(block: Block) -> tuple[Block, BlockMetadata]:
    return block, BlockMetadata.of(block)


def _collect(pairs: list[tuple[Any, Any]]) -> list[RefBundle]:
    """Wait for (block ref, metadata ref) pairs and bundle them in order."""
    metas = nebula.get([meta_ref for _, meta_ref in pairs])
    return [RefBundle(block_ref, meta) for (block_ref, _), meta in zip(pairs, metas)]


def as_list(refs: Any) -> list[Any]:
    return refs if isinstance(refs, list) else [refs]


@nebula.remote(num_returns=2)
def _concat_slices(specs: list[tuple[int, int]], *blocks: Block) -> tuple[Block, BlockMetadata]:
    pieces = [block.slice(offset, length) for (offset, length), block in zip(specs, blocks)]
    return _with_meta(_blocks.concat(pieces))


def repartition(bundles: list[RefBundle], params: dict[str, Any]) -> list[RefBundle]:
    """``num_blocks`` blocks of nearly equal row counts, rows kept in order."""
    num_blocks: int = params["num_blocks"]
    starts, total = [], 0
    for bundle in bundles:
        starts.append(total)
        total += bundle.meta.num_rows
    base, extra = divmod(total, num_blocks)
    pairs, begin = [], 0
    for index in range(num_blocks):
        end = begin + base + (1 if index < extra else 0)
        specs, refs = [], []
        for bundle, start in zip(bundles, starts):
            stop = start + bundle.meta.num_rows
            low, high = max(begin, start), min(end, stop)
            if low < high:
                specs.append((low - start, high - low))
                refs.append(bundle.ref)
        pairs.append(_concat_slices.remote(specs, *refs))
        begin = end
    return _collect(pairs)


def randomize_blocks(bundles: list[RefBundle], params: dict[str, Any]) -> list[RefBundle]:
    """The same blocks in a random order (no data moves)."""
    order = np.random.default_rng(params.get("seed")).permutation(len(bundles))
    return [bundles[index] for index in order]


# ---- range partitioning on a key, shared by join and group-by aggregation -------------


@nebula.remote
def _sample_column(block: Block, key: str, count: int) -> np.ndarray:
    column = block.column(key).drop_null() if key in block.column_names else pa.array([])
    if len(column) == 0:
        return np.array([])
    view = numpy_view(column)
    values = view if view is not None else column.to_numpy(zero_copy_only=False)
    if view is not None and bool(np.all(view[:-1] <= view[1:])):  # sorted already: quantiles
        picks = np.linspace(0, len(values) - 1, num=min(count, len(values))).astype(int)
        return values[picks]  # type: ignore[no-any-return]
    # Rows at random positions: sorting the whole column for a few values costs more than
    # the boundaries gain from exact quantiles.
    picks = np.random.default_rng(len(values)).choice(len(values), size=min(count, len(values)))
    return np.sort(values[picks])  # type: ignore[no-any-return]


def key_boundaries(
    bundles: Sequence[RefBundle], keys: Sequence[str], parts: int, what: str
) -> np.ndarray:
    """Up to ``parts - 1`` ascending cut values of key ``keys[i]`` of ``bundles[i]``, from a
    sample of each block, so that range partitions hold similar numbers of rows."""
    samples = nebula.get(
        [_sample_column.remote(bundle.ref, key, 32) for bundle, key in zip(bundles, keys)]
    )
    present = [sample for sample in samples if len(sample)]
    if not present or parts <= 1:
        return np.array([])
    try:
        pooled = np.sort(np.concatenate(present))
    except TypeError as exc:
        raise TypeError(f"{what}: the key columns hold values that do not compare: {exc}") from exc
    cuts = np.linspace(0, len(pooled), num=parts + 1)[1:-1].astype(int)
    return np.unique(pooled[cuts])


def partition_ids(
    column: Any, boundaries: np.ndarray, null_part: int, side: Literal["left", "right"] = "right"
) -> np.ndarray:
    """Each row's range partition: ``searchsorted`` on the boundaries; nulls to
    ``null_part`` (with no boundaries, one partition: every row in 0). A value equal to a
    boundary goes to the range after it (``side="right"``), or before it (``"left"``)."""
    ids = np.full(len(column), null_part if len(boundaries) else 0, dtype=np.int64)
    view = numpy_view(column) if len(boundaries) else None
    if view is not None:  # no nulls
        ids[:] = np.searchsorted(boundaries, view, side=side)
        return ids
    valid = np.asarray(column.is_valid())
    if len(boundaries) and valid.any():
        values = column.filter(arrow_from_numpy(valid)).to_numpy(zero_copy_only=False)
        ids[valid] = np.searchsorted(boundaries, values, side=side)
    return ids
