"""Running a numpy ``map_batches`` function over a block in batches, and gathering its outputs.

Called batch by batch (Ray's default is 1024 rows), the obvious way costs a conversion per
column per batch both ways and leaves a block of hundreds of chunks, each a slice holding
its parent's whole buffers (pickled into the object store, every slice carries them all).
Here each column is converted once per block, on first read, and every batch gets a view
of its rows; the outputs are then gathered column by column into one contiguous block: a
column every batch handed back untouched is the input column itself, numbers are joined
with one ``numpy.concatenate``, and other values are converted to Arrow once per block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from nebula.data._blocks import Block, array_from_numpy, compact, concat, udf_column
from nebula.data._blocks import from_batch as block_from_batch
from nebula.data._numpy_batch import NumpyBatch, unread_column


class _BlockColumns:
    """A block's columns as numpy, each converted on first use and kept for later batches."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self._arrays: dict[str, Any] = {}

    def array(self, name: str) -> Any:
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = udf_column(self.block.column(name))
        return array


def _batch(columns: _BlockColumns, start: int, stop: int) -> NumpyBatch:
    """Rows ``start:stop`` as a lazily converted numpy batch of views into ``columns``."""
    piece = columns.block.slice(start, stop - start)

    def convert_column(name: str) -> Callable[[pa.ChunkedArray], Any]:
        return lambda _: columns.array(name)[start:stop]

    batch = NumpyBatch()
    for name in piece.column_names:
        batch.add_unread(name, piece.column(name), convert_column(name))
    return batch


def map_numpy_batches(block: Block, fn: Callable[[Any], Any], batch_size: int) -> Block:
    """``fn`` on each run of ``batch_size`` rows of ``block`` as numpy batches, gathered."""
    block = compact(block)
    columns = _BlockColumns(block)
    bounds = [
        (start, min(start + batch_size, block.num_rows))
        for start in range(0, block.num_rows, batch_size)
    ]
    outputs, inputs = [], []
    for start, stop in bounds:
        batch = _batch(columns, start, stop)
        inputs.append(batch)
        outputs.append(fn(batch))
    return gather(outputs, inputs, block)


def _pieces(output: Any) -> dict[str, Any] | None:
    """An output's columns as stored: Arrow columns for what came back untouched."""
    if isinstance(output, NumpyBatch):
        pieces = {}
        for name, value in output.stored_items():
            column = output.arrow_column(name, value)
            pieces[str(name)] = column if column is not None else value
        return pieces
    if isinstance(output, Mapping) and not isinstance(output, pa.Table):
        return {str(name): _unwrap(value) for name, value in output.items()}
    return None


def _unwrap(value: Any) -> Any:
    unread = unread_column(value)
    return unread if unread is not None else value


def gather(outputs: Sequence[Any], inputs: Sequence[NumpyBatch], source: Block) -> Block:
    """One contiguous block of a function's ``outputs`` on ``inputs`` (batches of ``source``)."""
    pieces = [_pieces(output) for output in outputs]
    if not pieces or any(piece is None for piece in pieces):
        return compact(concat([block_from_batch(output) for output in outputs]))
    names = list(pieces[0])  # type: ignore[arg-type]
    if any(list(piece) != names for piece in pieces):  # type: ignore[arg-type]
        return compact(concat([block_from_batch(output) for output in outputs]))
    columns: dict[str, Any] = {}
    for name in names:
        values = [piece[name] for piece in pieces]  # type: ignore[index]
        columns[name] = _gather_column(name, values, inputs, source)
    try:
        return pa.table(columns)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise ValueError(
            f"a map_batches function returned columns of different lengths: {exc}"
        ) from exc


def _gather_column(
    name: str, values: list[Any], inputs: Sequence[NumpyBatch], source: Block
) -> pa.Array | pa.ChunkedArray:
    if (
        name in source.column_names
        and len(values) == len(inputs)
        and all(
            isinstance(value, pa.ChunkedArray) and batch.source_column(name) is value
            for value, batch in zip(values, inputs)
        )
    ):
        return source.column(name)  # every batch handed its rows back untouched
    arrays = [value for value in values if isinstance(value, np.ndarray)]
    if len(arrays) == len(values) and all(a.ndim == 1 for a in arrays):
        dtypes = {a.dtype for a in arrays}
        if len(dtypes) == 1:
            return array_from_numpy(np.concatenate(arrays))
    converted = [array_from_numpy(value) for value in values]
    chunked = [c if isinstance(c, pa.ChunkedArray) else pa.chunked_array([c]) for c in converted]
    kinds = {c.type for c in chunked}
    if len(kinds) == 1:
        return pa.chunked_array(
            [chunk for c in chunked for chunk in c.chunks], type=chunked[0].type
        ).combine_chunks()
    return concat([pa.table({name: c}) for c in chunked]).column(name).combine_chunks()
