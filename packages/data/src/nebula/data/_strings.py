"""String columns in numpy batches, kept in Arrow until something needs Python strings.

A numpy batch would give a string column as an array of ``str`` objects: one Python object
per value on the way in and a conversion back on the way out, most of the cost of a
function that only selects rows (``column[mask]``). :class:`ArrowStrings` behaves as that
object array does, but indexing it with a slice, a boolean mask or integer positions gives
another ``ArrowStrings`` computed by Arrow (``slice``, ``filter``, ``take``), and one handed
back to a block goes back as its Arrow array, without ever creating the objects.

Anything else (a numpy function, a ufunc, an operator, an attribute such as ``astype``)
sees the object array, built once and read-only, like the views numeric columns are.
Assigning into it (``column[0] = "x"``) turns it into a writable object array of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from nebula.data._zero_copy import arrow_from_numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

STRING_TYPES = (pa.string(), pa.large_string(), pa.binary(), pa.large_binary())


class ArrowStrings(NDArrayOperatorsMixin):
    """A 1-D array of ``str`` (or ``bytes``) objects backed by an Arrow array.

    Selecting rows (a mask or positions) is recorded, not computed: the Arrow ``filter`` or
    ``take`` runs when the values are needed. A batch's column knows where its rows sit in
    its block's column (``origin``), so the selections of all of a block's batches can be
    applied to the block's column in one call (:func:`gather_selections`).
    """

    __slots__ = ("_arrow", "_base", "_length", "_mask", "_objects", "_origin", "_positions")

    def __init__(
        self,
        arrow: pa.Array | pa.ChunkedArray,
        *,
        mask: np.ndarray | None = None,
        positions: np.ndarray | None = None,
        origin: tuple[pa.Array, int] | None = None,
    ) -> None:
        if isinstance(arrow, pa.ChunkedArray):
            arrow = arrow.chunk(0) if arrow.num_chunks == 1 else arrow.combine_chunks()
        self._base: pa.Array = arrow
        # At most one of the two: rows of ``_base`` kept by a mask, or taken by position.
        self._mask = mask
        self._positions = positions
        self._length = -1
        # (the block's column, where ``_base`` starts in it); None when not known.
        self._origin = origin
        self._arrow: pa.Array | None = None if mask is not None or positions is not None else arrow
        self._objects: np.ndarray | None = None

    @classmethod
    def of_column(cls, column: pa.Array | pa.ChunkedArray) -> ArrowStrings:
        """A whole block column; its slices remember where they come from."""
        strings = cls(column)
        strings._origin = (strings._base, 0)
        return strings

    # ---- what makes it an array ------------------------------------------------------------

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    @property
    def ndim(self) -> int:
        return 1

    @property
    def size(self) -> int:
        return len(self)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(object)

    def __len__(self) -> int:
        if self._length < 0:
            if self._mask is not None:
                self._length = int(np.count_nonzero(self._mask))
            elif self._positions is not None:
                self._length = len(self._positions)
            else:
                self._length = len(self._base)
        return self._length

    @property
    def _owned(self) -> bool:
        return self._objects is not None and self._objects.flags.writeable

    def arrow(self) -> pa.Array:
        """The values as Arrow (the recorded selection applied, once)."""
        if self._arrow is None:
            if self._mask is not None:
                self._arrow = self._base.filter(_indices(self._mask))
            else:
                self._arrow = self._base.take(_indices(self._positions))  # type: ignore[arg-type]
        return self._arrow

    def objects(self) -> np.ndarray:
        """The values as a numpy array of objects (read-only unless assigned into)."""
        if self._objects is None:
            objects = self.arrow().to_numpy(zero_copy_only=False)
            objects.flags.writeable = False
            self._objects = objects
        return self._objects

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        objects = self.objects()
        if dtype is not None and np.dtype(dtype) != objects.dtype:
            return objects.astype(dtype)
        return objects.copy() if copy else objects

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(_plain(value) for value in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(value) for value in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return func(*_plain_all(args), **_plain_all(kwargs))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.objects(), name)

    def _selected(self) -> np.ndarray | None:
        """The rows of ``_base`` this array holds, as positions; None for all of them."""
        if self._mask is not None:
            self._positions, self._mask = np.flatnonzero(self._mask), None
        return self._positions

    def _select(self, positions: np.ndarray) -> ArrowStrings:
        return ArrowStrings(self._base, positions=positions, origin=self._origin)

    def __getitem__(self, key: Any) -> Any:
        if self._owned:
            return self.objects()[key]
        n = len(self)
        if isinstance(key, (int, np.integer)):
            index = int(key) + n if key < 0 else int(key)
            if not 0 <= index < n:
                raise IndexError(f"index {int(key)} is out of bounds for axis 0 with size {n}")
            selected = self._selected()
            return self._base[index if selected is None else int(selected[index])].as_py()
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            selected = self._selected()
            if selected is None and step == 1:
                length = max(0, stop - start)
                origin = self._origin and (self._origin[0], self._origin[1] + start)
                return ArrowStrings(self._base.slice(start, length), origin=origin)
            rows = np.arange(start, stop, step) if selected is None else selected[key]
            return self._select(rows)
        selector = np.asarray(key) if isinstance(key, (list, np.ndarray)) else None
        if selector is not None and selector.ndim == 1:
            if selector.dtype == bool:
                if len(selector) != n:
                    raise IndexError(
                        f"boolean index did not match indexed array along axis 0; size of "
                        f"axis is {n} but size of corresponding boolean axis is {len(selector)}"
                    )
                if self._mask is None and self._positions is None:
                    # A copy: the caller may change its mask afterwards.
                    return ArrowStrings(self._base, mask=selector.copy(), origin=self._origin)
                return self._select(self._selected()[selector])  # type: ignore[index]
            if selector.dtype.kind in "iu" or len(selector) == 0:
                positions = selector.astype(np.int64)
                positions = np.where(positions < 0, positions + n, positions)
                if len(positions) and (positions.min() < 0 or positions.max() >= n):
                    raise IndexError(f"index out of bounds for axis 0 with size {n}")
                selected = self._selected()
                return self._select(positions if selected is None else selected[positions])
        return self.objects()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self._owned:
            self._objects = self.objects().copy()
        self.objects()[key] = value

    def __iter__(self) -> Iterator[Any]:
        if self._owned:
            return iter(self.objects())
        return iter(self.arrow().to_pylist())

    def tolist(self) -> list[Any]:
        return self.objects().tolist() if self._owned else self.arrow().to_pylist()

    def __repr__(self) -> str:
        return f"ArrowStrings({np.array2string(self.objects(), threshold=20)})"

    def __reduce__(self) -> Any:
        return (_from_objects, (self.objects(),))

    # ---- back to Arrow -------------------------------------------------------------------

    @property
    def changed(self) -> bool:
        """Whether values were assigned into it (so its Arrow array is out of date)."""
        return self._owned

    def to_arrow(self) -> pa.Array:
        """The values as Arrow: the backing array unless values were assigned into it."""
        if self._owned:
            return pa.array(self.objects(), from_pandas=False)
        return self.arrow()

    def block_rows(self, column: pa.Array) -> Selection | None:
        """Where these values sit in ``column`` (a block's column its batch came from):
        ``(start, rows, length)``, the values being ``column[start:start + length]``
        selected by ``rows`` (a mask or positions, None for all); None if they do not
        come from ``column`` unchanged."""
        if self._owned or self._origin is None or self._origin[0] is not column:
            return None
        rows = self._mask if self._mask is not None else self._positions
        return self._origin[1], rows, len(self._base)


Selection = tuple[int, "np.ndarray | None", int]


def gather_selections(column: pa.Array, pieces: list[Selection]) -> pa.Array:
    """The rows ``pieces`` (from :meth:`ArrowStrings.block_rows`) select from ``column``, in
    order, with one Arrow ``filter`` or ``take``."""
    contiguous, start = True, 0
    for first, rows, length in pieces:
        if first != start or (rows is not None and rows.dtype != bool):
            contiguous = False
            break
        start += length
    if contiguous and start == len(column):
        masks = [np.ones(length, bool) if rows is None else rows for _, rows, length in pieces]
        if not masks:
            return column.slice(0, 0)
        return column.filter(_indices(np.concatenate(masks)))
    positions = [
        first
        + (
            np.arange(length)
            if rows is None
            else np.flatnonzero(rows)
            if rows.dtype == bool
            else rows
        )
        for first, rows, length in pieces
    ]
    if not positions:
        return column.slice(0, 0)
    return column.take(_indices(np.concatenate(positions).astype(np.int64, copy=False)))


def _indices(values: np.ndarray) -> pa.Array:
    """A numpy mask or positions as Arrow, sharing memory (``pa.array`` would import pandas)."""
    shared = arrow_from_numpy(np.ascontiguousarray(values))
    return shared if shared is not None else pa.array(values)


def _from_objects(objects: np.ndarray) -> np.ndarray:
    return objects


def _plain(value: Any) -> Any:
    return value.objects() if isinstance(value, ArrowStrings) else value


def _plain_all(value: Any) -> Any:
    """``value`` with every ArrowStrings inside (lists, tuples, dicts) as object arrays."""
    if isinstance(value, ArrowStrings):
        return value.objects()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_all(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain_all(item) for key, item in value.items()}
    return value


def is_string_column(column: pa.ChunkedArray | pa.Array) -> bool:
    return column.type in STRING_TYPES
