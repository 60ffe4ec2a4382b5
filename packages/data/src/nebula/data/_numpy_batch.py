"""The numpy batch a ``map_batches`` function receives: a dict that converts columns lazily.

Turning an Arrow column into numpy is free for numbers (a read-only view of the same
memory) but costly for strings and other nested types (one Python object per value, and as
many again to turn them back). A function usually reads a few columns and passes the rest
through, so :class:`NumpyBatch` converts a column only when it is read, and hands a column
that came back untouched (never read, or a read-only view, which cannot have been changed)
to the output block as the original Arrow column: no copy, and its exact type (nulls,
integers with nulls, strings) is kept.

It is a real ``dict`` (``isinstance(batch, dict)``, ``batch["z"] = ...``, ``{**batch}``,
``dict(batch)``, ``batch.items()``, pickling all behave as with a plain one); reading a
column by any of those ways converts it first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from nebula.data._strings import ArrowStrings


class ColumnSource(Protocol):
    """Where a batch's columns come from: their values as a function sees them, and their
    Arrow data."""

    def read(self, name: str) -> Any: ...

    def column(self, name: str) -> pa.ChunkedArray: ...


class _TableSource:
    """A table's columns, each converted by ``convert`` when read."""

    __slots__ = ("convert", "table")

    def __init__(self, table: pa.Table, convert: Callable[[pa.ChunkedArray], Any]) -> None:
        self.table = table
        self.convert = convert

    def read(self, name: str) -> Any:
        return self.convert(self.table.column(name))

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name)


class _OneColumn:
    __slots__ = ("_column", "convert")

    def __init__(self, column: pa.ChunkedArray, convert: Callable[[pa.ChunkedArray], Any]):
        self._column = column
        self.convert = convert

    def read(self, name: str) -> Any:
        return self.convert(self._column)

    def column(self, name: str) -> pa.ChunkedArray:
        return self._column


class _Unread:
    """A column not converted yet: where it comes from (its Arrow data, how to convert it)."""

    __slots__ = ("_column", "name", "source")

    def __init__(self, source: ColumnSource, name: str) -> None:
        self.source = source
        self.name = name
        self._column: pa.ChunkedArray | None = None

    @property
    def column(self) -> pa.ChunkedArray:
        if self._column is None:
            self._column = self.source.column(self.name)
        return self._column

    def read(self) -> Any:
        return self.source.read(self.name)


class NumpyBatch(dict[str, Any]):
    """Columns as numpy arrays, each converted from Arrow the first time it is read."""

    def __init__(self) -> None:
        super().__init__()
        # name -> the array handed out for it, for read-only views and Arrow-backed strings:
        # those cannot have been changed in place (assigning into ArrowStrings marks it).
        self._views: dict[str, np.ndarray | ArrowStrings] = {}
        # name -> where the column came from.
        self._sources: dict[str, ColumnSource] = {}

    @classmethod
    def of(cls, table: pa.Table, convert: Callable[[pa.ChunkedArray], Any]) -> NumpyBatch:
        """A batch of ``table``'s columns, each converted by ``convert`` when first read."""
        return cls.of_source(table.column_names, _TableSource(table, convert))

    @classmethod
    def of_source(cls, names: list[str], source: ColumnSource) -> NumpyBatch:
        """A batch of ``source``'s columns ``names``, each read from it when first used."""
        batch = cls()
        for name in names:
            batch.add_lazy(name, source)
        return batch

    @classmethod
    def of_views(
        cls, names: list[str], source: ColumnSource, views: dict[str, Any], read_only: set[str]
    ) -> NumpyBatch:
        """A batch of ``source``'s columns ``names``: ``views[name]`` where given (what
        ``source.read(name)`` would give; read-only for the ``read_only`` names), the others
        read when first used."""
        batch = cls()
        batch._sources = dict.fromkeys(names, source)
        dict.update(
            batch,
            [(name, views[name] if name in views else _Unread(source, name)) for name in names],
        )
        batch._views = {name: views[name] for name in read_only if name in views}
        return batch

    def add_unread(
        self, name: str, column: pa.ChunkedArray, convert: Callable[[pa.ChunkedArray], Any]
    ) -> None:
        """Add column ``name``, to be converted by ``convert(column)`` when first read."""
        self.add_lazy(name, _OneColumn(column, convert))

    def add_lazy(self, name: str, source: ColumnSource) -> None:
        """Add column ``name`` of ``source``, read when first used."""
        self._sources[name] = source
        dict.__setitem__(self, name, _Unread(source, name))

    def source_column(self, name: str) -> pa.ChunkedArray | None:
        """The Arrow column ``name`` this batch was made with (None if it was not)."""
        source = self._sources.get(name)
        return None if source is None else source.column(name)

    def untouched(self, name: str, value: Any) -> bool:
        """Whether ``value`` is this batch's column ``name`` as it came: never read, or the
        read-only view handed out for it."""
        if type(value) is _Unread:
            return value.name == name and self._sources.get(name) is value.source
        if self._views.get(name) is not value:
            return False
        return not (isinstance(value, ArrowStrings) and value.changed)

    def _read(self, name: str, value: Any) -> Any:
        if type(value) is not _Unread:
            return value
        array = value.read()
        dict.__setitem__(self, name, array)
        if isinstance(array, ArrowStrings) or (
            isinstance(array, np.ndarray) and not array.flags.writeable
        ):
            self._views[name] = array
        return array

    def _read_all(self) -> None:
        unread = [(name, value) for name, value in dict.items(self) if type(value) is _Unread]
        for name, value in unread:
            self._read(name, value)

    # ---- reading converts ---------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self._read(name, dict.__getitem__(self, name))

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        # Defining __iter__ also makes dict(batch), {**batch} and update(batch) read values
        # through __getitem__ instead of copying the stored placeholders.
        return dict.__iter__(self)

    def items(self) -> Any:
        self._read_all()
        return dict.items(self)

    def values(self) -> Any:
        self._read_all()
        return dict.values(self)

    def pop(self, name: str, *default: Any) -> Any:
        if name in self:
            value = self[name]
            dict.pop(self, name)
            return value
        return dict.pop(self, name, *default)

    def popitem(self) -> tuple[str, Any]:
        name, value = dict.popitem(self)
        return name, self._read(name, value)

    def setdefault(self, name: str, default: Any = None) -> Any:
        if name in self:
            return self[name]
        dict.__setitem__(self, name, default)
        return default

    def copy(self) -> NumpyBatch:
        new = NumpyBatch()
        dict.update(new, dict.items(self))
        new._views = dict(self._views)
        new._sources = dict(self._sources)
        return new

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, dict):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, dict):
            return NotImplemented
        return {**other, **self}

    def __eq__(self, other: object) -> bool:
        self._read_all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._read_all()
        return dict.__ne__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._read_all()
        return dict.__repr__(self)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))

    # ---- handing columns back to Arrow --------------------------------------------------

    def arrow_column(self, name: str, value: Any) -> pa.ChunkedArray | None:
        """The original Arrow column when ``value`` is this batch's column ``name`` untouched:
        never read, or the read-only view handed out for it. None otherwise."""
        if isinstance(value, _Unread):
            return value.column
        if self.untouched(name, value):
            return self._sources[name].column(name)
        return None

    def untouched_items(self, batch: NumpyBatch, same: Any) -> list[tuple[str, Any]]:
        """Names and values as stored, ``same`` for those ``batch`` (this batch, or the
        input of the function that returned this one) handed out and got back untouched."""
        views, sources = batch._views, batch._sources
        items = []
        for name, value in dict.items(self):
            if type(value) is _Unread:
                if value.name == name and sources.get(name) is value.source:
                    value = same
            elif views.get(name) is value and not (
                isinstance(value, ArrowStrings) and value.changed
            ):
                value = same
            items.append((name, value))
        return items

    def stored_items(self) -> list[tuple[str, Any]]:
        """Names and values as stored, placeholders of unread columns included."""
        return list(dict.items(self))


def unread_column(value: Any) -> pa.ChunkedArray | None:
    """The Arrow column of a placeholder that escaped its batch (``dict.items(batch)``)."""
    return value.column if isinstance(value, _Unread) else None
