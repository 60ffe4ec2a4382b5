"""Running a numpy ``map_batches`` function over a block in batches, and gathering its outputs.

Called batch by batch (Ray's default is 1024 rows), the obvious way costs a conversion per
column per batch both ways and leaves a block of hundreds of chunks, each a slice holding
its parent's whole buffers (pickled into the object store, every slice carries them all).
Here each column is converted once per block, on first read, and every batch gets a view
of its rows; the outputs are then gathered column by column into one contiguous block: a
column every batch handed back untouched is the input column itself, numbers are joined
with one ``numpy.concatenate``, string columns a function only selected rows of (a mask,
positions, slices) are selected from the block's column with one Arrow ``filter`` or
``take``, and other values are converted to Arrow once per block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from nebula.data._blocks import Block, array_from_numpy, compact, concat, udf_column
from nebula.data._blocks import from_batch as block_from_batch
from nebula.data._numpy_batch import NumpyBatch, unread_column
from nebula.data._strings import ArrowStrings, Selection, gather_selections, is_string_column

_UNTOUCHED = object()  # stands for a batch's input column handed back as it came


class _BlockColumns:
    """A block's columns as numpy, each converted on first use and kept for later batches."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.names = block.column_names
        self.arrays: dict[str, Any] = {}
        self.read_only: set[str] = set()  # names of the arrays that are read-only views
        # Columns whose numpy form holds exactly their values (numbers without nulls,
        # strings): an untouched batch of them may be joined as numpy.
        self.exact: set[str] = set()
        for name, column in zip(self.names, block.columns):
            kind = column.type
            numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
            if (numeric and not column.null_count) or is_string_column(column):
                self.exact.add(name)

    def array(self, name: str) -> Any:
        array = self.arrays.get(name)
        if array is None:
            column = self.block.column(name)
            if is_string_column(column):
                array = ArrowStrings.of_column(column)
            else:
                array = udf_column(column)
            self.arrays[name] = array
            if isinstance(array, ArrowStrings) or (
                isinstance(array, np.ndarray) and not array.flags.writeable
            ):
                self.read_only.add(name)
        return array

    def strings(self, name: str) -> pa.Array | None:
        """The block's column ``name`` behind the batches' ``ArrowStrings``, if it is one."""
        array = self.arrays.get(name)
        return array._base if isinstance(array, ArrowStrings) else None


class _Rows:
    """Rows ``start:stop`` of a block's columns, as a batch reads them."""

    __slots__ = ("columns", "start", "stop")

    def __init__(self, columns: _BlockColumns, start: int, stop: int) -> None:
        self.columns = columns
        self.start = start
        self.stop = stop

    def read(self, name: str) -> Any:
        return self.columns.array(name)[self.start : self.stop]

    def column(self, name: str) -> pa.ChunkedArray:
        return self.columns.block.column(name).slice(self.start, self.stop - self.start)


def _batch(columns: _BlockColumns, start: int, stop: int) -> NumpyBatch:
    """Rows ``start:stop`` as a numpy batch of views into ``columns`` (converted lazily)."""
    views = {name: array[start:stop] for name, array in columns.arrays.items()}
    return NumpyBatch.of_views(columns.names, _Rows(columns, start, stop), views, columns.read_only)


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
    return gather(outputs, inputs, columns, bounds)


def _pieces(output: Any, batch: NumpyBatch) -> dict[str, Any] | None:
    """An output's columns, ``_UNTOUCHED`` for those ``batch`` handed out and got back."""
    if isinstance(output, NumpyBatch):
        items = output.untouched_items(batch, _UNTOUCHED)
    elif isinstance(output, Mapping) and not isinstance(output, pa.Table):
        items = [
            (name, _UNTOUCHED if batch.untouched(name, value) else value)
            for name, value in output.items()
        ]
    else:
        return None
    pieces = {}
    for name, value in items:
        if value is not _UNTOUCHED:
            unread = unread_column(value)
            if unread is not None:
                value = unread
        pieces[str(name)] = value
    return pieces


def gather(
    outputs: Sequence[Any],
    inputs: Sequence[NumpyBatch],
    columns: _BlockColumns,
    bounds: Sequence[tuple[int, int]],
) -> Block:
    """One contiguous block of a function's ``outputs`` on ``inputs``, the batches of rows
    ``bounds`` of ``columns``' block."""
    pieces = [_pieces(output, batch) for output, batch in zip(outputs, inputs)]
    names = list(pieces[0]) if pieces and pieces[0] is not None else None
    if names is None or any(piece is None or list(piece) != names for piece in pieces):
        return compact(concat([block_from_batch(output) for output in outputs]))
    gathered: dict[str, Any] = {}
    for name in names:
        values = [piece[name] for piece in pieces]  # type: ignore[index]
        gathered[name] = _gather_column(name, values, columns, bounds)
    try:
        return pa.table(gathered)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise ValueError(
            f"a map_batches function returned columns of different lengths: {exc}"
        ) from exc


def _gather_column(
    name: str,
    values: list[Any],
    columns: _BlockColumns,
    bounds: Sequence[tuple[int, int]],
) -> pa.Array | pa.ChunkedArray:
    block = columns.block
    if all(value is _UNTOUCHED for value in values):
        return block.column(name)  # every batch handed its rows back as they came
    strings = columns.strings(name)
    if strings is not None:
        selections = _string_selections(values, strings, bounds)
        if selections is not None:
            return gather_selections(strings, selections)
    exact = name in columns.exact
    arrays = [
        columns.array(name)[start:stop] if value is _UNTOUCHED and exact else value
        for value, (start, stop) in zip(values, bounds)
    ]
    if (
        all(isinstance(a, np.ndarray) and a.ndim == 1 for a in arrays)
        and len({a.dtype for a in arrays}) == 1
    ):
        # One batch (the whole block, the default) needs no copy: Arrow shares its memory.
        return array_from_numpy(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
    converted = [
        block.column(name).slice(start, stop - start)
        if value is _UNTOUCHED
        else array_from_numpy(value)
        for value, (start, stop) in zip(arrays, bounds)
    ]
    chunked = [c if isinstance(c, pa.ChunkedArray) else pa.chunked_array([c]) for c in converted]
    kinds = {c.type for c in chunked}
    if len(kinds) == 1:
        return pa.chunked_array(
            [chunk for c in chunked for chunk in c.chunks], type=chunked[0].type
        ).combine_chunks()
    return concat([pa.table({name: c}) for c in chunked]).column(name).combine_chunks()


def _string_selections(
    values: list[Any], strings: pa.Array, bounds: Sequence[tuple[int, int]]
) -> list[Selection] | None:
    """Where each batch's output rows of a string column sit in the block's ``strings``;
    None unless every batch only selected rows of it."""
    selections: list[Selection] = []
    for value, (start, stop) in zip(values, bounds):
        if value is _UNTOUCHED:
            selections.append((start, None, stop - start))
            continue
        if not isinstance(value, ArrowStrings):
            return None
        rows = value.block_rows(strings)
        if rows is None:
            return None
        selections.append(rows)
    return selections
