"""Columns of arbitrary Python objects: values Arrow has no type for (instances of your own
classes, tuples mixing types, ...) are pickled (with cloudpickle, so classes defined in a
script work too) into an extension type over binary storage.

Rows and numpy batches give the objects back; a pandas batch gets an object column. The
type is registered when this module loads (every process that handles blocks loads it),
so it survives the object store, pickling and Parquet files.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import cloudpickle
import numpy as np
import pyarrow as pa

_NAME = "nebula.python_object"


class PythonObjectType(pa.ExtensionType):
    def __init__(self) -> None:
        super().__init__(pa.large_binary(), _NAME)

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: Any, serialized: bytes) -> PythonObjectType:
        return cls()

    def __arrow_ext_scalar_class__(self) -> type:
        return PythonObjectScalar

    def __reduce__(self) -> Any:
        return PythonObjectType, ()


class PythonObjectScalar(pa.ExtensionScalar):
    def as_py(self, *args: Any, **kwargs: Any) -> Any:
        if self.value is None:
            return None
        return pickle.loads(self.value.as_py())


try:
    pa.register_extension_type(PythonObjectType())
except pa.ArrowKeyError:  # already registered (the module loaded twice)
    pass

ARROW_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def object_array(values: Sequence[Any] | np.ndarray) -> pa.ExtensionArray:
    """``values`` pickled into a Python-object column (None stays null)."""
    storage = pa.array(
        [None if value is None else cloudpickle.dumps(value) for value in values],
        type=pa.large_binary(),
    )
    return pa.ExtensionArray.from_storage(PythonObjectType(), storage)


def array_or_objects(values: Sequence[Any] | np.ndarray) -> pa.Array:
    """An Arrow array of ``values``, or a Python-object column when Arrow has no type."""
    try:
        return pa.array(values)
    except ARROW_CONVERSION_ERRORS:
        return object_array(values)


def is_object_column(column: pa.ChunkedArray | pa.Array) -> bool:
    return isinstance(column.type, PythonObjectType)


def objects_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    out = np.empty(len(column), dtype=object)
    out[:] = column.to_pylist()
    return out
