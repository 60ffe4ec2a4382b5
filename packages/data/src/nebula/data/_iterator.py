"""``DataIterator``: a source of blocks read as batches or rows, in the process that holds it.

``Dataset.streaming_split`` returns one per consumer; each can be sent to another task or
actor, where its ``iter_batches`` pulls the blocks meant for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from nebula.data import _blocks
from nebula.data._blocks import Block


class BatchIteration:
    """Reading blocks from somewhere (subclasses say where) as batches or rows.

    Every ``iter_batches``, ``iter_torch_batches`` or ``iter_rows`` call is a new pass over
    the data.
    """

    def _iter_blocks(self, prefetch: int = 0) -> Iterator[Block]:
        """The blocks of one pass; ``prefetch`` > 0 may fetch that many ahead."""
        raise NotImplementedError

    def iter_batches(
        self,
        *,
        prefetch_batches: int = 1,
        batch_size: int | None = 256,
        batch_format: str = "default",
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
    ) -> Iterator[Any]:
        """Batches of exactly ``batch_size`` rows, the last one smaller unless ``drop_last``.

        ``batch_size=None`` yields one batch per block. ``prefetch_batches`` blocks are
        computed and fetched ahead while the caller works on a batch, where the source can.
        With ``local_shuffle_buffer_size`` the rows are shuffled within windows of at least
        that many rows (``local_shuffle_seed``: the same order each pass).
        """
        _blocks.check_batch_format(batch_format)
        if isinstance(prefetch_batches, bool) or not isinstance(prefetch_batches, int):
            raise TypeError(f"prefetch_batches must be an int, got {prefetch_batches!r}.")
        if prefetch_batches < 0:
            raise ValueError(f"prefetch_batches must be >= 0, got {prefetch_batches}.")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
        blocks = self._iter_blocks(prefetch_batches)
        if local_shuffle_buffer_size is not None:
            if isinstance(local_shuffle_buffer_size, bool) or local_shuffle_buffer_size < 1:
                raise ValueError(
                    "local_shuffle_buffer_size must be a positive integer, "
                    f"got {local_shuffle_buffer_size!r}."
                )
            blocks = local_shuffle(blocks, local_shuffle_buffer_size, local_shuffle_seed)
        yield from rebatch(blocks, batch_size, batch_format, drop_last)

    def iter_torch_batches(
        self,
        *,
        prefetch_batches: int = 1,
        batch_size: int | None = 256,
        dtypes: Any = None,
        device: Any = "auto",
        collate_fn: Callable[[dict[str, np.ndarray]], Any] | None = None,
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
    ) -> Iterator[Any]:
        """Batches as dicts of ``torch.Tensor`` (needs torch installed).

        ``dtypes``: one torch dtype for every column, or a dict by column. ``device``:
        where the tensors go ("auto": the first GPU when torch sees one, else the CPU).
        ``collate_fn`` replaces the conversion: it gets each numpy batch and returns what
        the loop should see. The other arguments are those of ``iter_batches``.
        """
        from nebula.data._torch import to_torch

        batches = self.iter_batches(
            prefetch_batches=prefetch_batches,
            batch_size=batch_size,
            batch_format="numpy",
            drop_last=drop_last,
            local_shuffle_buffer_size=local_shuffle_buffer_size,
            local_shuffle_seed=local_shuffle_seed,
        )
        yield from to_torch(batches, dtypes, device, collate_fn)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        for block in self._iter_blocks():
            yield from _blocks.iter_rows(block)


class DataIterator(BatchIteration):
    """An iterator over a dataset's blocks, read in the process that holds it
    (``Dataset.iterator()``, ``Dataset.streaming_split``)."""


def local_shuffle(blocks: Iterator[Block], buffer_size: int, seed: int | None) -> Iterator[Block]:
    """The rows of ``blocks`` shuffled within windows of at least ``buffer_size`` rows."""
    rng = np.random.default_rng(seed)
    buffered: list[Block] = []
    rows = 0

    def shuffled() -> Block:
        window = _blocks.concat(buffered)
        return window.take(pa.array(rng.permutation(window.num_rows)))

    for block in blocks:
        buffered.append(block)
        rows += block.num_rows
        if rows >= buffer_size:
            yield shuffled()
            buffered, rows = [], 0
    if rows:
        yield shuffled()


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
