"""Splitting the blocks of a materialized dataset into pieces, keeping the row order.

Whole blocks are shared by reference; a block that a boundary cuts is sliced in a task.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from nebula.data._blocks import Block, BlockMetadata, RefBundle

import nebula


@nebula.remote(num_returns=2)
def _slice_block(block: Block, offset: int, length: int) -> tuple[Block, BlockMetadata]:
    piece = block.slice(offset, length)
    return piece, BlockMetadata.of(piece)


def check_indices(indices: Sequence[int]) -> list[int]:
    indices = list(indices)
    if not indices:
        raise ValueError("split_at_indices needs at least one index.")
    if any(not isinstance(i, int) or isinstance(i, bool) for i in indices):
        raise TypeError(f"split_at_indices takes integer indices, got {indices!r}.")
    if sorted(indices) != indices:
        raise ValueError(f"split_at_indices needs indices in ascending order, got {indices}.")
    if indices[0] < 0:
        raise ValueError(f"split_at_indices needs indices >= 0, got {indices}.")
    return indices


def split_at(bundles: Sequence[RefBundle], indices: Sequence[int]) -> list[list[RefBundle]]:
    """The rows ``[0, i0)``, ``[i0, i1)``, ..., ``[ik, end)``; indices past the end give
    empty pieces, as ``numpy.split`` does."""
    total = sum(bundle.meta.num_rows for bundle in bundles)
    bounds = [0, *(min(index, total) for index in indices), total]
    pieces: list[list[Any]] = []
    for low, high in itertools.pairwise(bounds):
        piece: list[Any] = []
        start = 0
        for bundle in bundles:
            stop = start + bundle.meta.num_rows
            first, last = max(low, start), min(high, stop)
            if first < last:
                whole = first == start and last == stop
                piece.append(
                    bundle
                    if whole
                    else _slice_block.remote(bundle.ref, first - start, last - first)
                )
            start = stop
        pieces.append(piece)
    sliced = [item for piece in pieces for item in piece if not isinstance(item, RefBundle)]
    metas = iter(nebula.get([meta_ref for _, meta_ref in sliced]))
    return [
        [item if isinstance(item, RefBundle) else RefBundle(item[0], next(metas)) for item in piece]
        for piece in pieces
    ]


def split_blocks(bundles: Sequence[RefBundle], n: int) -> list[list[RefBundle]]:
    """``n`` runs of whole blocks, in order, with row counts as even as the blocks allow."""
    total = sum(bundle.meta.num_rows for bundle in bundles)
    pieces: list[list[RefBundle]] = [[] for _ in range(n)]
    start = 0
    for position, bundle in enumerate(bundles):
        if total:
            middle = start + bundle.meta.num_rows / 2
            index = min(n - 1, int(middle * n / total))
        else:
            index = position * n // len(bundles)
        pieces[index].append(bundle)
        start += bundle.meta.num_rows
    return pieces


def split_equal(bundles: Sequence[RefBundle], n: int) -> list[list[RefBundle]]:
    """``n`` pieces of exactly ``rows // n`` rows each; the last ``rows % n`` rows are dropped."""
    each = sum(bundle.meta.num_rows for bundle in bundles) // n
    return split_at(bundles, [each * index for index in range(1, n + 1)])[:n]
