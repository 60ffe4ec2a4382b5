"""Counts and sums per integer key with ``numpy.bincount``, in place of Arrow's hash group-by.

``Table.group_by`` runs in Arrow's Acero engine, whose first use imports ``pyarrow.dataset``
and, through it, pandas: most of a second in every fresh worker, for a group-by whose
partials are only counts and sums (``count``, ``sum``, ``mean``). Those, on one integer key
without nulls, are a ``bincount`` over the key (offset by its minimum when the keys are
dense, else their ranks), which is also several times faster than hashing. Anything else
(other aggregates, other key types, nulls in keys, integer sums that a float could round)
returns None, and the caller uses Arrow. The output has Arrow's shape: the key column,
then ``<column>_<function>`` per aggregate, one row per group; groups come in key order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from nebula.data._zero_copy import arrow_from_numpy, arrow_scalar, numpy_view

_SUM_DEFAULT = pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)
_COUNT_VALID = pc.CountOptions(mode="only_valid")
_COUNT_ALL = pc.CountOptions(mode="all")
_EXACT = 2**53  # integer sums below this are exact in a float64


def _values(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A numeric column as numpy, and which rows hold a value (None: all of them)."""
    kind = column.type
    if kind not in (pa.int64(), pa.float64()):
        return None
    if not column.null_count:
        view = numpy_view(column)
        return None if view is None else (view, None)
    valid = _validity(column)
    filled = numpy_view(pc.fill_null(column, arrow_scalar(0).cast(kind)))
    return None if filled is None else (filled, valid)


def _validity(column: pa.ChunkedArray) -> np.ndarray | None:
    if not column.null_count:
        return None
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _supported(function: str, options: Any) -> bool:
    if function == "sum":
        return options is None or options == _SUM_DEFAULT
    if function == "count":
        return options is None or options in (_COUNT_VALID, _COUNT_ALL)
    return False


def _group_ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Each row's group number, the groups' key values in order, and a bin count to use
    (bins without rows are dropped afterwards through ``present``)."""
    low, high = int(keys.min()), int(keys.max())
    span = high - low + 1
    if span <= 2 * len(keys) + 65_536:
        ids = keys.astype(np.int64, copy=False)
        ids = ids - low if low else ids
        return ids, np.arange(low, high + 1, dtype=np.int64), span
    unique, inverse = np.unique(keys, return_inverse=True)
    return inverse.astype(np.int64, copy=False), unique.astype(np.int64), len(unique)


def grouped_counts_and_sums(
    table: pa.Table, keys: Sequence[str], specs: Sequence[tuple[Any, ...]]
) -> pa.Table | None:
    """``table.group_by(keys).aggregate(specs)`` for counts and sums on one integer key, or
    None where this does not apply."""
    if len(keys) != 1 or not specs or not table.num_rows:
        return None
    key_column = table.column(keys[0])
    if not pa.types.is_integer(key_column.type) or key_column.null_count:
        return None
    if not all(len(spec) == 3 and _supported(spec[1], spec[2]) for spec in specs):
        return None
    columns: list[tuple[np.ndarray | None, np.ndarray | None]] = []
    for name, function, _ in specs:
        column = table.column(name)
        if function == "count":
            columns.append((None, _validity(column)))
            continue
        values = _values(column)
        if values is None:
            return None
        numbers = values[0]
        if (
            numbers.dtype.kind == "i"
            and int(np.abs(numbers).max(initial=0)) * len(numbers) >= _EXACT
        ):
            return None
        columns.append(values)

    key_view = numpy_view(key_column)
    if key_view is None:
        return None
    ids, key_values, bins = _group_ids(key_view)
    rows = np.bincount(ids, minlength=bins)
    nonzero = np.flatnonzero(rows)
    # Where every bin has rows (dense keys), there is nothing to pick out.
    present: np.ndarray | slice = slice(None) if len(nonzero) == bins else nonzero
    out: dict[str, Any] = {keys[0]: _key_array(key_values[present], key_column.type)}
    for (name, function, options), (view, valid) in zip(specs, columns):
        valid_ids = ids if valid is None else ids[valid]
        counts = rows if valid is None else np.bincount(valid_ids, minlength=bins)
        if function == "count":
            result = rows if options == _COUNT_ALL else counts
            out[f"{name}_count"] = arrow_from_numpy(result[present].astype(np.int64, copy=False))
            continue
        assert view is not None
        weights = view if valid is None else view[valid]
        sums = np.bincount(valid_ids, weights=weights, minlength=bins)[present]
        if view.dtype.kind == "i":
            sums = np.rint(sums).astype(np.int64)
        array = arrow_from_numpy(sums)
        empty = counts[present] == 0
        if empty.any():  # min_count=1: a group without values sums to null
            array = pc.if_else(arrow_from_numpy(empty), pa.nulls(1, array.type)[0], array)
        out[f"{name}_sum"] = array
    return pa.table(out)


def _key_array(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    array = arrow_from_numpy(values)
    assert array is not None
    return array if array.type == kind else array.cast(kind)
