"""A sort larger than the object store, each block split into ranges as it arrives.

A sort whose blocks exceed the store splits each sorted block into a piece per output
range (``_shuffle.split_and_merge``). Waiting for the last block before splitting the first
means every block is spilled to disk once whole and read back to be split, and its pieces
spilled again: the data crosses the disk twice each way. Here the range boundaries are
sampled from the first blocks, as soon as they fill half the store, and every block is
split as it comes (still in memory); only its pieces are stored, and the block is freed.

Boundaries sampled early only balance the ranges as well as the first blocks resemble the
rest. Each split reports its pieces' row counts, so once every block is split a range that
came out much larger than ``target_max_block_size`` (the input was ordered by the key,
say) is sorted again on its own, its pieces taken as the blocks of a smaller sort: the
result is the same, only slower.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from nebula.data._blocks import Block, BlockMetadata, DeferredBundle, RefBundle
from nebula.data._shuffle import (
    HeldBlocks,
    _merge_pieces,
    _merge_sorted_pieces,
    _pieces_of,
    _range_cuts,
    _submit,
    near,
    partitions_for,
    sample_boundaries,
    several_nodes,
    sort,
    split_and_merge,
)

import nebula

# Values sampled in all from the first blocks (the full sort takes 4 per range per block).
_SAMPLES = 65_536
# A range more than this many times the target block size is sorted again on its own.
_OVERSIZE = 2


@nebula.remote
def _split_counted(
    block: Block, keys: list[str], descending: bool, boundaries: np.ndarray
) -> tuple[Any, ...]:
    """``block``'s piece per range, then the row counts of the pieces."""
    cuts = _range_cuts(block, keys, descending, boundaries)
    return (*_pieces_of(block, list(cuts)), np.diff(cuts))


class _SplitBlock:
    """One block's pieces (references) and its bytes per row."""

    __slots__ = ("counts", "pieces", "row_bytes", "schema")

    def __init__(self, pieces: list[Any], counts: Any, bundle: RefBundle) -> None:
        self.pieces = pieces
        self.counts: Any = counts  # a reference until ``finish`` fetches it
        self.row_bytes = bundle.meta.size_bytes / max(1, bundle.meta.num_rows)
        self.schema = bundle.meta.schema


class SortStream:
    """The ``ExchangeStream`` of a sort whose blocks come sorted (``sorted_blocks``)."""

    def __init__(self, params: dict[str, Any]) -> None:
        from nebula.data._executor import DataContext

        self._params = params
        self._keys: list[str] = params["keys"]
        self._descending: bool = params["descending"]
        context = DataContext.get_current()
        self._target = max(1, context.target_max_block_size)
        self._fan_in = max(2, context.shuffle_merge_fan_in)
        self._held = HeldBlocks()  # blocks that came before the boundaries were chosen
        self._boundaries: np.ndarray | None = None
        self._split: list[_SplitBlock] = []
        self._spread = False  # whether blocks are split on their own nodes (several nodes)

    def add(self, bundle: RefBundle, to_come: int | None) -> None:
        if not bundle.meta.num_rows:
            return
        if self._boundaries is not None:
            self._split_one(bundle)
            return
        expected = self._held.add(bundle, to_come)
        if expected is None:
            return
        held = self._held.take()
        parts = partitions_for(expected)
        per_block = max(4 * parts, _SAMPLES // len(held))
        self._boundaries = sample_boundaries(
            held, self._keys[0], self._descending, parts, per_block
        )
        self._spread = several_nodes()
        for block in held:
            self._split_one(block)

    def _split_one(self, bundle: RefBundle) -> None:
        assert self._boundaries is not None
        splitter = _split_counted.options(num_returns=len(self._boundaries) + 2)
        splitter = near(splitter, bundle, self._spread)
        refs = splitter.remote(bundle.ref, self._keys, self._descending, self._boundaries)
        self._split.append(_SplitBlock(list(refs[:-1]), refs[-1], bundle))

    def finish(self) -> list[Any]:
        if self._boundaries is None:  # everything fits in the store: the sort as usual
            return sort(self._held.take(), self._params)
        counts = nebula.get([block.counts for block in self._split])
        outputs: list[Any] = []
        for part in range(len(self._boundaries) + 1):
            pieces = [
                RefBundle(
                    block.pieces[part],
                    BlockMetadata(int(rows[part]), int(rows[part] * block.row_bytes), block.schema),
                )
                for block, rows in zip(self._split, counts)
                if rows[part]
            ]
            outputs.extend(self._merge(pieces))
        self._split = []
        return outputs

    def _merge(self, pieces: list[RefBundle]) -> list[Any]:
        """One range's outputs: its pieces merged, or sorted again when they are too many
        bytes for one block."""
        if not pieces:
            return []
        size = sum(piece.meta.size_bytes for piece in pieces)
        rows = sum(piece.meta.num_rows for piece in pieces)
        if size > _OVERSIZE * self._target and rows > 1:
            parts = -(-size // self._target)
            per_block = max(4 * parts, _SAMPLES // len(pieces))
            boundaries = sample_boundaries(
                pieces, self._keys[0], self._descending, parts, per_block
            )
            if len(boundaries):
                return split_and_merge(pieces, self._keys, self._descending, boundaries)
        refs = [piece.ref for piece in pieces]
        while len(refs) > self._fan_in:  # merged in groups first, as the full sort does
            groups = [refs[i : i + self._fan_in] for i in range(0, len(refs), self._fan_in)]
            refs = [
                _merge_sorted_pieces.remote(self._keys, self._descending, *group)
                for group in groups
            ]
        return [
            DeferredBundle(partial(_submit, _merge_pieces, self._keys, self._descending, *refs))
        ]


def sort_stream(params: dict[str, Any]) -> SortStream | None:
    """A stream for a sort whose blocks come sorted; None for one that sorts them itself."""
    return SortStream(params) if params.get("sorted_blocks") else None


__all__ = ["SortStream", "sort_stream"]
