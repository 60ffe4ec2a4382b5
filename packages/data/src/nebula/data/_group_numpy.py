"""Counts and sums per integer key with ``numpy.bincount``, in place of Arrow's hash group-by.

``Table.group_by`` runs in Arrow's Acero engine, whose first use imports ``pyarrow.dataset``
and, through it, pandas: most of a second in every fresh worker, for a group-by whose
partials are only counts and sums (``count``, ``sum``, ``mean``). Those, on one integer key
without nulls, are a ``bincount`` over the key (offset by its minimum when the keys are
dense, else their ranks), which is also several times faster than hashing. Anything else
(other aggregates, other key types, nulls in keys, integer sums that a float could round)
returns None, and the caller uses Arrow. The output has Arrow's shape: the key column,
then ``<column>_<function>`` per aggregate, one row per group; groups come in key order.

The table is taken a slice at a time, adding up each slice's bins: a slice's columns stay
in the CPU's cache between the passes over it, and a combine's input (slices of many
blocks' partials) is never copied into one array first.
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
# Rows taken at a time: twice as fast as whole 750k-row blocks with a thousand groups.
_BATCH_ROWS = 1 << 16


def _values(column: pa.Array) -> tuple[np.ndarray, np.ndarray | None] | None:
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


def _validity(column: pa.Array) -> np.ndarray | None:
    if not column.null_count:
        return None
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _supported(function: str, options: Any) -> bool:
    if function == "sum":
        return options is None or options == _SUM_DEFAULT
    if function == "count":
        return options is None or options in (_COUNT_VALID, _COUNT_ALL)
    return False


class _Groups:
    """Each row's bin, batch by batch: the key minus the smallest key when the keys are
    dense, else the key's rank among the distinct keys (bins without rows are dropped
    afterwards through ``present``)."""

    def __init__(self, key_views: list[np.ndarray]) -> None:
        rows = sum(len(view) for view in key_views)
        present = [view for view in key_views if len(view)]
        low = min(int(view.min()) for view in present)
        high = max(int(view.max()) for view in present)
        self._low = low
        self._unique: np.ndarray | None = None
        if high - low + 1 <= 2 * rows + 65_536:
            self.key_values = np.arange(low, high + 1, dtype=np.int64)
        else:
            self._unique = np.unique(np.concatenate(present))
            self.key_values = self._unique.astype(np.int64, copy=False)
        self.bins = len(self.key_values)

    def ids(self, keys: np.ndarray) -> np.ndarray:
        if self._unique is not None:
            return np.searchsorted(self._unique, keys)
        ids = keys.astype(np.int64, copy=False)
        return ids - self._low if self._low else ids


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
    names = [name for name, function, _ in specs if function == "sum"]
    if not all(table.column(name).type in (pa.int64(), pa.float64()) for name in names):
        return None
    if _may_round(table, names):
        return None
    key_index = table.schema.get_field_index(keys[0])
    batches = [batch for batch in table.to_batches(max_chunksize=_BATCH_ROWS) if batch.num_rows]
    key_views = _key_views(batches, key_index)
    if key_views is None:
        return None
    groups = _Groups(key_views)
    if groups.bins * (len(batches) - 1) > 4 * table.num_rows:
        # Many bins for few rows a batch: adding up the bins would cost more than a copy.
        batches = table.combine_chunks().to_batches()
        key_views = _key_views(batches, key_index)
        assert key_views is not None
    # Rows per group; values per group of the columns with nulls (the others have as many
    # values as rows); sums per group.
    totals: dict[tuple[str, str], np.ndarray] = {}
    nullable = {name for name, _, _ in specs if table.column(name).null_count}
    for batch, key_view in zip(batches, key_views):
        ids = groups.ids(key_view)
        batch_rows = np.bincount(ids, minlength=groups.bins)
        _add(totals, ("rows", ""), batch_rows)
        for name in nullable | set(names):
            column = batch.column(table.schema.get_field_index(name))
            values = _values(column) if name in names else None
            valid = values[1] if values is not None else _validity(column)
            valid_ids = ids if valid is None else ids[valid]
            if name in nullable:
                counts = (
                    batch_rows.copy()
                    if valid is None
                    else np.bincount(valid_ids, minlength=groups.bins)
                )
                _add(totals, ("count", name), counts)
            if values is not None:
                weights = values[0] if valid is None else values[0][valid]
                sums = np.bincount(valid_ids, weights=weights, minlength=groups.bins)
                _add(totals, ("sum", name), sums)
    rows = totals["rows", ""]
    nonzero = np.flatnonzero(rows)
    # Where every bin has rows (dense keys), there is nothing to pick out.
    present: np.ndarray | slice = slice(None) if len(nonzero) == groups.bins else nonzero
    out: dict[str, Any] = {keys[0]: _key_array(groups.key_values[present], key_column.type)}
    for name, function, options in specs:
        valid_counts = totals["count", name] if name in nullable else rows
        if function == "count":
            result = rows if options == _COUNT_ALL else valid_counts
            out[f"{name}_count"] = arrow_from_numpy(result[present])
            continue
        total = totals["sum", name][present]
        if table.column(name).type == pa.int64():
            total = np.rint(total).astype(np.int64)
        array = arrow_from_numpy(total)
        empty = valid_counts[present] == 0
        if empty.any():  # min_count=1: a group without values sums to null
            array = pc.if_else(arrow_from_numpy(empty), pa.nulls(1, array.type)[0], array)
        out[f"{name}_sum"] = array
    return pa.table(out)


def _add(
    totals: dict[tuple[str, str], np.ndarray], key: tuple[str, str], value: np.ndarray
) -> None:
    """Add ``value`` into ``totals[key]``; the first value is kept, so it must be no other
    total's."""
    if key in totals:
        totals[key] += value
    else:
        totals[key] = value


def _key_views(batches: list[pa.RecordBatch], index: int) -> list[np.ndarray] | None:
    views = []
    for batch in batches:
        view = numpy_view(batch.column(index))
        if view is None:
            return None
        views.append(view)
    return views


def _may_round(table: pa.Table, names: list[str]) -> bool:
    """Whether an integer sum could go past what a float64 holds exactly."""
    for name in names:
        column = table.column(name)
        if column.type == pa.int64() and len(column) > column.null_count:
            bounds = pc.min_max(column)
            largest = max(abs(bounds["min"].as_py()), abs(bounds["max"].as_py()))
            if largest * len(column) >= _EXACT:
                return True
    return False


def _key_array(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    array = arrow_from_numpy(values)
    assert array is not None
    return array if array.type == kind else array.cast(kind)
