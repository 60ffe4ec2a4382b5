"""A file read inside a task whose columns are decoded only when a step of the task uses them.

A fused task reads a file, then runs the steps after the read on the block. Those steps
often use a few of its columns: a group-by's partial aggregation reads its keys and the
columns it aggregates; a ``map_batches`` function reads the columns it computes from and
hands the others back untouched. Decoding the rest (often the widest, such as text) can be
most of the task's time. A :class:`DeferredBlock` stands for the block inside the task: its
schema and row count come from the file's footer, and each column is decoded the first time
it is used. A step that needs a table gets one of the columns it reads
(``BlockTransform.input_columns``); a ``map_batches`` function over whole blocks gets a
numpy batch whose columns come from the file as it reads them, and the columns it hands
back untouched that no later step reads are left out, never decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from nebula.data._blocks import udf_column


class DeferredBlock:
    """An open Parquet file's columns (all, or the ``columns`` a read asked for), decoded
    on use.

    ``reopen`` opens the file again after :meth:`close` (should a batch outlive its task);
    ``explain`` turns an error while decoding into the one the read would raise.
    """

    def __init__(
        self,
        parquet: pq.ParquetFile,
        reopen: Callable[[], pq.ParquetFile],
        explain: Callable[[Exception], BaseException],
        columns: list[str] | None = None,
    ) -> None:
        self._parquet: pq.ParquetFile | None = parquet
        self._reopen = reopen
        self._explain = explain
        self._asked = columns
        schema = parquet.schema_arrow
        if columns is not None:
            schema = pa.schema([schema.field(name) for name in columns])
        self.schema: pa.Schema = schema
        self.num_rows: int = parquet.metadata.num_rows
        self._columns: dict[str, pa.ChunkedArray] = {}

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def column(self, name: str) -> pa.ChunkedArray:
        """Column ``name``, decoded from the file the first time it is asked for."""
        column = self._columns.get(name)
        if column is None:
            column = self._decode([name]).column(name)
            self._columns[name] = column
        return column

    def read(self, name: str) -> Any:
        """Column ``name`` as a numpy batch hands it to a function."""
        return udf_column(self.column(name))

    def table(self, columns: Collection[str] | None = None) -> pa.Table:
        """The block with ``columns`` (in the file's order; None: all of them, as the read
        gives them). Asking for a column the file lacks gives all of them, so the step that
        needs it says which columns there are."""
        names = self.column_names
        if columns is not None and not set(columns) <= set(names):
            columns = None
        if columns is None and not self._columns:
            return self._decode(self._asked)
        wanted = names if columns is None else [name for name in names if name in columns]
        missing = [name for name in wanted if name not in self._columns]
        if missing:
            decoded = self._decode(missing)
            for name in missing:
                self._columns[name] = decoded.column(name)
        return pa.table([self._columns[name] for name in wanted], schema=self._schema_of(wanted))

    def forget(self) -> None:
        """Drop the decoded columns; asking for one again decodes it again."""
        self._columns = {}

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None

    def _schema_of(self, names: list[str]) -> pa.Schema:
        if names == self.column_names:
            return self.schema
        return pa.schema([self.schema.field(name) for name in names])

    def _file(self) -> pq.ParquetFile:
        if self._parquet is None:
            try:
                self._parquet = self._reopen()
            except Exception as exc:
                raise self._explain(exc) from exc
        return self._parquet

    def _decode(self, columns: list[str] | None) -> pa.Table:
        try:
            table = self._file().read(columns=columns, use_threads=False)
        except Exception as exc:
            raise self._explain(exc) from exc
        if columns is None or len(self._columns) + len(columns) >= len(self.schema):
            self.close()  # every column is decoded: the reader's buffers can go
        if columns is None or table.column_names == columns:
            return table
        # Parquet names nested fields by dotted paths, so asking for "a.b" may also bring
        # the struct "a": keep exactly the columns asked for.
        return table.select([table.schema.get_field_index(name) for name in columns])


def deferrable(parquet: pq.ParquetFile, columns: list[str] | None) -> bool:
    """Whether a file's columns can be decoded one by one: distinct top-level names, and
    every column asked for among them."""
    names = parquet.schema_arrow.names
    if len(set(names)) != len(names):
        return False
    return columns is None or (len(set(columns)) == len(columns) and set(columns) <= set(names))
