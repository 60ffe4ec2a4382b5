"""Blocks are ``pyarrow.Table``s; this module converts them to and from the batch formats.

A UDF sees a block (or a slice of one) as a batch in the format it asked for, and may answer
in any format this module can turn back into a table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import pyarrow as pa
from nebula.data._numpy_batch import NumpyBatch, unread_column
from nebula.data._objects import (
    ARROW_CONVERSION_ERRORS,
    array_or_objects,
    is_object_column,
    object_array,
    objects_to_numpy,
)
from nebula.data._strings import ArrowStrings, is_string_column
from nebula.data._zero_copy import arrow_from_numpy, numpy_view

import nebula

Block: TypeAlias = pa.Table
BatchFormat: TypeAlias = Literal["default", "numpy", "pyarrow", "pandas"]
BATCH_FORMATS: tuple[str, ...] = ("default", "numpy", "pyarrow", "pandas")


@dataclass(frozen=True, slots=True)
class BlockMetadata:
    """What the driver learns about a block without fetching it."""

    num_rows: int
    size_bytes: int
    schema: pa.Schema
    exec_seconds: float = 0.0
    node_id: str | None = None  # the node that made the block (whose store holds it)

    @classmethod
    def of(cls, block: Block, exec_seconds: float = 0.0) -> BlockMetadata:
        return cls(block.num_rows, block.nbytes, block.schema, exec_seconds, _this_node())


def _this_node() -> str | None:
    try:
        return nebula.get_runtime_context().get_node_id()
    except RuntimeError:  # not connected: a transform run on its own
        return None


def check_batch_format(batch_format: str) -> None:
    if batch_format not in BATCH_FORMATS:
        raise ValueError(
            f"batch_format must be one of {', '.join(map(repr, BATCH_FORMATS))}, "
            f"got {batch_format!r}."
        )


def schema_string(schema: pa.Schema | None) -> str:
    """``{id: int64, name: string}``, or ``{...}`` when the schema is not known yet."""
    if schema is None:
        return "{...}"
    return "{" + ", ".join(f"{field.name}: {field.type}" for field in schema) + "}"


def column_to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    if is_object_column(column):
        return objects_to_numpy(column)
    if isinstance(column.type, pa.FixedShapeTensorType):
        return column.combine_chunks().to_numpy_ndarray()  # type: ignore[attr-defined, no-any-return]
    view = numpy_view(column)
    return view if view is not None else column.to_numpy()


def udf_column(column: pa.ChunkedArray) -> Any:
    """A column as a numpy batch gives it to a function: strings stay in Arrow until used."""
    if is_string_column(column):
        return ArrowStrings(column)
    return column_to_numpy(column)


def array_from_numpy(values: Any) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, ArrowStrings):
        return array_or_objects(values.objects()) if values.changed else values.to_arrow()
    unread = unread_column(values)
    if unread is not None:
        return unread
    array = np.asarray(values) if not isinstance(values, list) else None
    if array is None:
        return array_or_objects(values)
    if array.ndim > 1:
        # A column of equally shaped arrays travels as Arrow's fixed-shape tensor type.
        return pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(array))
    if array.dtype == object:
        return array_or_objects(array)
    shared = arrow_from_numpy(array)
    return shared if shared is not None else pa.array(array)


def to_batch(block: Block, batch_format: str) -> Any:
    """The block in the format a UDF or consumer asked for."""
    if batch_format in ("default", "numpy"):
        return {name: column_to_numpy(block.column(name)) for name in block.column_names}
    if batch_format == "pandas":
        frame = block.to_pandas()
        for name in block.column_names:
            if is_object_column(block.column(name)):
                frame[name] = objects_to_numpy(block.column(name))
        return frame
    return block


def to_udf_batch(block: Block, batch_format: str) -> Any:
    """The block as a UDF's input: like :func:`to_batch`, but a numpy batch converts each
    column only when the UDF reads it (see :class:`NumpyBatch`)."""
    if batch_format in ("default", "numpy"):
        return NumpyBatch.of(block, udf_column)
    return to_batch(block, batch_format)


def from_batch(batch: Any, wanted: frozenset[str] | None = None) -> Block:
    """Turn what a UDF returned (table, DataFrame, dict of columns) back into a block.

    ``wanted``: the columns the steps after it read; of a dict, the others are left out
    unconverted (all are kept when it has none of them, which keeps its row count).
    """
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, NumpyBatch):
        # Columns the UDF did not change go back as they came, without a conversion.
        columns = {}
        for name, value in _wanted(batch.stored_items(), wanted):
            column = batch.arrow_column(name, value)
            columns[str(name)] = column if column is not None else array_from_numpy(value)
        return pa.table(columns)
    if isinstance(batch, Mapping):
        items = _wanted(list(batch.items()), wanted)
        columns = {str(name): array_from_numpy(values) for name, values in items}
        return pa.table(columns)
    if _is_dataframe(batch):
        try:
            return pa.Table.from_pandas(batch, preserve_index=False)
        except ARROW_CONVERSION_ERRORS:  # some column holds Python objects Arrow cannot type
            columns = {}
            for name in batch.columns:
                try:
                    columns[str(name)] = pa.Array.from_pandas(batch[name])
                except ARROW_CONVERSION_ERRORS:
                    columns[str(name)] = object_array(batch[name].tolist())
            return pa.table(columns)
    raise TypeError(
        "a map_batches function must return a dict of columns, a pandas.DataFrame or a "
        f"pyarrow.Table, got {type(batch).__name__}."
    )


def _wanted(items: list[tuple[Any, Any]], wanted: frozenset[str] | None) -> list[tuple[Any, Any]]:
    if wanted is None:
        return items
    kept = [(name, value) for name, value in items if str(name) in wanted]
    return kept if kept else items


def _is_dataframe(value: object) -> bool:
    module = type(value).__module__
    return module.startswith("pandas") and type(value).__name__ == "DataFrame"


def from_rows(rows: Sequence[Any]) -> Block:
    """A block from row dicts; plain values become a column named ``item``."""
    if not rows:
        return pa.table({})
    if all(isinstance(row, Mapping) for row in rows):
        dicts = [dict(row) for row in rows]
        try:
            return pa.Table.from_pylist(dicts)
        except ARROW_CONVERSION_ERRORS:  # some column needs Python objects
            names = list(dict.fromkeys(name for row in dicts for name in row))
            return pa.table(
                {name: array_or_objects([row.get(name) for row in dicts]) for name in names}
            )
    return pa.table({"item": array_from_numpy(list(rows))})


def iter_rows(block: Block) -> Iterator[dict[str, Any]]:
    yield from block.to_pylist()


def iter_slices(block: Block, batch_size: int | None) -> Iterator[Block]:
    if batch_size is None or block.num_rows <= batch_size:
        yield block
        return
    for start in range(0, block.num_rows, batch_size):
        yield block.slice(start, batch_size)


def concat(blocks: Sequence[Block]) -> Block:
    """Concatenate blocks, unifying schemas; an all-empty input gives an empty table."""
    non_empty = [block for block in blocks if block.num_columns > 0]
    if not non_empty:
        return pa.table({})
    if len(non_empty) == 1:
        return non_empty[0]
    return pa.concat_tables(non_empty, promote_options="default")


def compact(block: Block) -> Block:
    """``block`` in one chunk per column, holding no more memory than its rows need.

    A block of many chunks, or a slice of a larger one, still references its parents'
    whole buffers, and pickling it into the object store writes them all, once per chunk.
    """
    if any(column.num_chunks > 1 for column in block.columns):
        return block.combine_chunks()
    if block.num_rows and block.get_total_buffer_size() > 2 * block.nbytes + (1 << 16):
        columns = [
            pa.concat_arrays([chunk, chunk.slice(0, 0)])
            for column in block.columns
            for chunk in column.chunks
        ]
        return pa.Table.from_arrays(columns, schema=block.schema)
    return block


def split_evenly(block: Block, parts: int) -> list[Block]:
    """``parts`` slices of nearly equal row counts (some may be empty)."""
    base, extra = divmod(block.num_rows, parts)
    slices, start = [], 0
    for index in range(parts):
        length = base + (1 if index < extra else 0)
        slices.append(block.slice(start, length))
        start += length
    return slices


@dataclass(frozen=True, slots=True)
class PendingBundle:
    """A block an exchange's task is still computing: its reference and its metadata's.

    An exchange may return these instead of :class:`RefBundle`; its operator hands each on
    (in order) as soon as it is ready, instead of waiting for the last one.
    """

    ref: Any  # nebula.ObjectRef of a Block
    meta_ref: Any  # nebula.ObjectRef of its BlockMetadata


@dataclass(frozen=True, slots=True)
class DeferredBundle:
    """An exchange's output whose task is not submitted yet: ``submit()`` submits it.

    Its operator submits these in order as the operators downstream take the outputs, so
    that an exchange's outputs do not pile up in the object store faster than a writer
    drains them.
    """

    submit: Callable[[], PendingBundle]


@dataclass(frozen=True, slots=True)
class RefBundle:
    """A block in the object store with its metadata, as operators pass them along."""

    ref: Any  # nebula.ObjectRef holding a Block
    meta: BlockMetadata
