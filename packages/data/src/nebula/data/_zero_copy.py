"""Numbers between Arrow and numpy by sharing their buffers.

``pyarrow.array``, ``pyarrow.scalar`` and ``to_numpy`` go through pyarrow's pandas-aware
converters, which import pandas on first use: a fifth of a second and tens of MiB in every
worker, for a pipeline that never touches pandas. For the common case, numeric columns
without nulls, a numpy array and an Arrow array can simply share one buffer; these helpers
do that and return None (or fall back to pyarrow) for anything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def numpy_view(column: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """A numeric column without nulls as numpy; None for other columns.

    One chunk gives a read-only view of its memory; several are joined into a new
    (writable) array, as ``ChunkedArray.to_numpy`` does.
    """
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)) or column.null_count:
        return None
    dtype = np.dtype(kind.to_pandas_dtype())
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    views = [_chunk_view(chunk, dtype) for chunk in chunks]
    if len(views) == 1:
        return views[0]
    return np.concatenate(views) if views else np.empty(0, dtype=dtype)


def _chunk_view(chunk: pa.Array, dtype: np.dtype) -> np.ndarray:
    data = chunk.buffers()[1]
    if len(chunk) == 0 or data is None:
        return np.empty(0, dtype=dtype)
    offset = chunk.offset * dtype.itemsize
    view = np.frombuffer(data, dtype=dtype, count=len(chunk), offset=offset)
    view.flags.writeable = False  # Arrow's memory: other blocks may share it
    return view


def arrow_from_numpy(values: np.ndarray) -> pa.Array | None:
    """An Arrow array sharing a 1-D numeric (or bool) array's memory; None for other arrays.

    Same values as ``pyarrow.array(values)`` gives: NaN stays NaN, nothing becomes null.
    """
    if values.ndim != 1 or values.dtype.kind not in "iufb" or not values.dtype.isnative:
        return None
    if values.dtype.kind == "b":
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    values = np.ascontiguousarray(values)
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def arrow_scalar(value: Any) -> pa.Scalar:
    """``value`` as an Arrow scalar, typed as ``pyarrow.scalar`` would type it."""
    if isinstance(value, pa.Scalar):
        return value
    if value is None:
        return pa.nulls(1)[0]
    if isinstance(value, (bool, int, float)):
        array = arrow_from_numpy(np.array([value]))
        if array is not None:
            return array[0]
    if isinstance(value, (str, bytes)):
        data = value.encode() if isinstance(value, str) else value
        offsets = np.array([0, len(data)], dtype=np.int32)
        kind = pa.string() if isinstance(value, str) else pa.binary()
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        return pa.Array.from_buffers(kind, 1, buffers)[0]
    return pa.scalar(value)
