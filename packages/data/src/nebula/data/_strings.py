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
    """A 1-D array of ``str`` (or ``bytes``) objects backed by an Arrow array."""

    __slots__ = ("_arrow", "_objects", "_owned")

    def __init__(self, arrow: pa.Array | pa.ChunkedArray) -> None:
        if isinstance(arrow, pa.ChunkedArray):
            arrow = arrow.combine_chunks()
        self._arrow: pa.Array = arrow
        self._objects: np.ndarray | None = None
        self._owned = False  # True once assigned into: the objects are the truth

    # ---- what makes it an array ------------------------------------------------------------

    @property
    def shape(self) -> tuple[int]:
        return (len(self._arrow),)

    @property
    def ndim(self) -> int:
        return 1

    @property
    def size(self) -> int:
        return len(self._arrow)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(object)

    def __len__(self) -> int:
        return len(self._arrow)

    def objects(self) -> np.ndarray:
        """The values as a numpy array of objects (read-only unless assigned into)."""
        if self._objects is None:
            objects = self._arrow.to_numpy(zero_copy_only=False)
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

    def __getitem__(self, key: Any) -> Any:
        if self._owned:
            return self.objects()[key]
        n = len(self._arrow)
        if isinstance(key, (int, np.integer)):
            index = int(key) + n if key < 0 else int(key)
            if not 0 <= index < n:
                raise IndexError(f"index {int(key)} is out of bounds for axis 0 with size {n}")
            return self._arrow[index].as_py()
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return ArrowStrings(self._arrow.slice(start, max(0, stop - start)))
            return ArrowStrings(self._arrow.take(_indices(np.arange(start, stop, step))))
        selector = np.asarray(key) if isinstance(key, (list, np.ndarray)) else None
        if selector is not None and selector.ndim == 1:
            if selector.dtype == bool:
                if len(selector) != n:
                    raise IndexError(
                        f"boolean index did not match indexed array along axis 0; size of "
                        f"axis is {n} but size of corresponding boolean axis is {len(selector)}"
                    )
                return ArrowStrings(self._arrow.filter(_indices(selector)))
            if selector.dtype.kind in "iu" or len(selector) == 0:
                positions = selector.astype(np.int64)
                positions = np.where(positions < 0, positions + n, positions)
                if len(positions) and (positions.min() < 0 or positions.max() >= n):
                    raise IndexError(f"index out of bounds for axis 0 with size {n}")
                return ArrowStrings(self._arrow.take(_indices(positions)))
        return self.objects()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self._owned:
            self._objects = self.objects().copy()
            self._owned = True
        self.objects()[key] = value

    def __iter__(self) -> Iterator[Any]:
        if self._owned:
            return iter(self.objects())
        return iter(self._arrow.to_pylist())

    def tolist(self) -> list[Any]:
        return self.objects().tolist() if self._owned else self._arrow.to_pylist()

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
        return self._arrow


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
