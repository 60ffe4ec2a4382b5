"""``DataIterator``: a source of blocks read as batches or rows, in the process that holds it.

``Dataset.streaming_split`` returns one per consumer; each can be sent to another task or
actor, where its ``iter_batches`` pulls the blocks meant for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nebula.data import _blocks
from nebula.data._blocks import Block


class DataIterator:
    """Blocks from somewhere (subclasses say where), read as batches or rows.

    Every ``iter_batches`` or ``iter_rows`` call is a new pass over the data.
    """

    def _iter_blocks(self) -> Iterator[Block]:
        raise NotImplementedError

    def iter_batches(
        self,
        *,
        batch_size: int | None = 256,
        batch_format: str = "default",
        drop_last: bool = False,
    ) -> Iterator[Any]:
        """Batches of exactly ``batch_size`` rows, the last one smaller unless ``drop_last``.

        ``batch_size=None`` yields one batch per block.
        """
        _blocks.check_batch_format(batch_format)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size}.")
        yield from rebatch(self._iter_blocks(), batch_size, batch_format, drop_last)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        for block in self._iter_blocks():
            yield from _blocks.iter_rows(block)


def rebatch(
    blocks: Iterator[Block], batch_size: int | None, batch_format: str, drop_last: bool = False
) -> Iterator[Any]:
    """Cut a stream of blocks into batches of ``batch_size`` rows (None: one per block)."""
    buffered: list[Block] = []
    rows = 0
    for block in blocks:
        if batch_size is None:
            if block.num_rows:
                yield _blocks.to_batch(block, batch_format)
            continue
        buffered.append(block)
        rows += block.num_rows
        while rows >= batch_size:
            merged = _blocks.concat(buffered)
            yield _blocks.to_batch(merged.slice(0, batch_size), batch_format)
            rest = merged.slice(batch_size)
            buffered, rows = [rest], rest.num_rows
    if rows and not drop_last:
        yield _blocks.to_batch(_blocks.concat(buffered), batch_format)
