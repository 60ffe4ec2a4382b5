"""A random shuffle larger than the object store, each block split into parts as it arrives.

A shuffle whose blocks exceed the store splits each keyed block into a piece per output
partition (``_shuffle._keyed_shuffle``). Waiting for the last block before splitting the
first means every block is spilled to disk once whole and read back to be split, and its
pieces spilled again: the data crosses the disk twice each way. Here the number of
partitions is fixed as soon as the blocks held fill half the store, from the bytes seen and
the blocks still to come, and every block is split as it comes (still in memory); only its
pieces are stored, and the block is freed.

The partitions are fixed ranges of the shuffle key, so, unlike a sort's, they need no
sample: fixing them early only guesses their number, which sets the output block size.
Each partition's pieces are combined in the order the blocks arrived, which is the order
their map tasks were submitted (a map operator hands on its outputs in that order), so a
seeded shuffle gives the same rows in the same order on every run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nebula.data._blocks import RefBundle
from nebula.data._shuffle import (
    KEY_SPACE,
    HeldBlocks,
    key_cuts,
    partitions_for,
    permute_split,
    random_shuffle,
    several_nodes,
    split_keyed,
)


class ShuffleStream:
    """The ``ExchangeStream`` of a random shuffle whose blocks come keyed (``keyed``)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = params
        self._seed: int | None = params.get("seed")
        self._requested: int | None = params.get("num_blocks")
        self._held = HeldBlocks()  # blocks that came before the parts were fixed
        self._cuts: np.ndarray | None = None  # the parts' key ranges, once fixed
        self._decided = False  # whether the blocks are split as they come (``_cuts``) or held
        self._pieces: list[list[Any]] = []  # per block split, its piece per part
        self._spread = False  # whether blocks are split on their own nodes (several nodes)

    def add(self, bundle: RefBundle, to_come: int | None) -> None:
        if not bundle.meta.num_rows:
            return
        if self._cuts is not None:
            self._pieces.append(split_keyed(bundle, self._cuts, self._spread))
            return
        if self._decided:
            self._held.hold(bundle)
            return
        expected = self._held.add(bundle, to_come)
        if expected is None:
            return
        self._decided = True
        parts = self._parts(expected)
        if parts <= 1:  # one output block: nothing to split, the shuffle as usual
            return
        self._cuts = key_cuts(parts)
        self._spread = several_nodes()
        held = self._held.take()
        self._pieces = [split_keyed(block, self._cuts, self._spread) for block in held]

    def _parts(self, expected: int) -> int:
        """The partitions: as many as asked, else as ``partitions_for`` the ``expected``
        bytes."""
        return min(self._requested or partitions_for(expected), KEY_SPACE)

    def finish(self) -> list[Any]:
        if self._cuts is None:  # everything fits in the store, or one part: as usual
            return random_shuffle(self._held.take(), self._params)
        pieces, self._pieces = self._pieces, []
        return permute_split(pieces, len(self._cuts) - 1, self._seed)


def shuffle_stream(params: dict[str, Any]) -> ShuffleStream | None:
    """A stream for a shuffle whose blocks come keyed; None for one that keys them itself."""
    return ShuffleStream(params) if params.get("keyed") else None


__all__ = ["ShuffleStream", "shuffle_stream"]
