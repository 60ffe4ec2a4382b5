"""Aggregations: what ``groupby(...).aggregate(...)`` and ``Dataset.aggregate(...)`` compute.

:class:`AggregateFn` is the general, accumulator-style kind: ``init(key)`` makes an empty
accumulator for a group, ``accumulate_row`` (or ``accumulate_block``) folds the group's rows
of one block into it, ``merge`` joins the accumulators of different blocks and ``finalize``
turns the last one into the output value. It runs Python code per group.

The built-ins (:class:`Count`, :class:`Sum`, :class:`Min`, :class:`Max`, :class:`Mean`,
:class:`Std`, :class:`AbsMax`) compute the same with Arrow's hash-aggregation kernels over
whole blocks: each block gives *partial* columns per group, the partials of all blocks are
merged by a second Arrow aggregation, and ``finalize_columns`` turns the merged columns into
the output column. Floating-point NaN counts as null, as ``None`` does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _identity(value: Any) -> Any:
    return value


class AggregateFn:
    """An aggregation defined by accumulator functions.

    ``init(key)`` returns a group's empty accumulator (``key`` is the group's key value, a
    tuple of them for several keys, None without keys); exactly one of
    ``accumulate_row(acc, row_dict)`` and ``accumulate_block(acc, pyarrow_table)`` folds rows
    in; ``merge(acc, acc)`` joins accumulators; ``finalize(acc)`` gives the value of the output
    column ``name``. Every function must be picklable: they run inside tasks.
    """

    def __init__(
        self,
        init: Callable[[Any], Any],
        merge: Callable[[Any, Any], Any],
        name: str,
        accumulate_row: Callable[[Any, dict[str, Any]], Any] | None = None,
        accumulate_block: Callable[[Any, pa.Table], Any] | None = None,
        finalize: Callable[[Any], Any] | None = None,
    ) -> None:
        if (accumulate_row is None) == (accumulate_block is None):
            raise ValueError(
                "AggregateFn needs exactly one of accumulate_row and accumulate_block."
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"AggregateFn needs a non-empty name for its column, got {name!r}.")
        self.init = init
        self.merge = merge
        self.name = name
        self.accumulate_row = accumulate_row
        self.accumulate_block = accumulate_block
        self.finalize = finalize or _identity

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def accumulate(self, accumulator: Any, rows: pa.Table) -> Any:
        """Fold ``rows`` (one group's rows of one block) into ``accumulator``."""
        if self.accumulate_block is not None:
            return self.accumulate_block(accumulator, rows)
        assert self.accumulate_row is not None
        for row in rows.to_pylist():
            accumulator = self.accumulate_row(accumulator, row)
        return accumulator


@dataclass(frozen=True)
class Partial:
    """One partial column of a built-in: an Arrow hash aggregate over the input column, and
    the Arrow aggregate merging it across blocks (None: ``finalize_columns`` merges it)."""

    function: str
    options: pc.FunctionOptions | None
    merge: str | None = None
    merge_options: pc.FunctionOptions | None = None


def _skip(ignore_nulls: bool) -> pc.ScalarAggregateOptions:
    return pc.ScalarAggregateOptions(skip_nulls=ignore_nulls, min_count=1)


def _count(mode: str) -> pc.CountOptions:
    return pc.CountOptions(mode=mode)


class BuiltinAggregation(AggregateFn):
    """A built-in aggregation on column ``on``, computed with Arrow kernels.

    Subclasses set ``kind`` (the name prefix, ``sum`` gives ``sum(on)``), list their
    ``partials`` and turn the merged partials into the output in ``finalize_columns``.
    """

    kind = ""
    numeric_only = True  # what on=None expands to: numeric columns, else every column
    needs_groups = False  # whether finalize_columns reads ``groups``

    def __init__(
        self, on: str | None = None, ignore_nulls: bool = True, alias_name: str | None = None
    ) -> None:
        # Not AggregateFn.__init__: a built-in has no accumulator functions.
        if on is not None and not isinstance(on, str):
            raise TypeError(f"{type(self).__name__}(on=...) takes one column name, got {on!r}.")
        self.on = on
        self.ignore_nulls = ignore_nulls
        self.alias_name = alias_name
        self.name = alias_name or f"{self.kind}({on or ''})"

    def accepts(self, kind: pa.DataType) -> bool:
        """Whether ``on=None`` expands to a column of this type."""
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        return numeric or pa.types.is_decimal(kind) or not self.numeric_only

    def with_column(self, on: str) -> BuiltinAggregation:
        """The same aggregation on column ``on`` (how ``on=None`` expands to every column)."""
        expanded = copy.copy(self)
        expanded.on = on
        expanded.name = self.alias_name or f"{self.kind}({on})"
        return expanded

    def partials(self) -> list[Partial]:
        raise NotImplementedError

    def prepare(self, column: pa.ChunkedArray) -> pa.ChunkedArray:
        """The input column as the partials see it: NaN becomes null."""
        if pa.types.is_floating(column.type):
            nan = pc.is_nan(column)
            if pc.any(nan).as_py():
                # ``pa.nulls(1)[0]``, not ``pa.scalar(None)``: that one imports pandas.
                return pc.if_else(nan, pa.nulls(1, column.type)[0], column)
        return column

    def finalize_columns(
        self, merged: list[pa.ChunkedArray | None], partials: list[pa.ChunkedArray], groups: Groups
    ) -> pa.Array | pa.ChunkedArray:
        """The output column from the merged partials (one row per group) or, for partials
        without an Arrow merge, from the partials of every block with ``groups``."""
        return merged[0]


@dataclass(frozen=True)
class Groups:
    """Which group each row of the concatenated partials belongs to."""

    ids: np.ndarray
    count: int


class Count(BuiltinAggregation):
    """The number of rows, or of values in ``on`` (nulls included unless ``ignore_nulls``)."""

    kind = "count"

    def __init__(
        self, on: str | None = None, ignore_nulls: bool = False, alias_name: str | None = None
    ) -> None:
        super().__init__(on, ignore_nulls, alias_name)

    def partials(self) -> list[Partial]:
        mode = "only_valid" if self.on is not None and self.ignore_nulls else "all"
        return [Partial("count", _count(mode), "sum")]


class Sum(BuiltinAggregation):
    """The sum of ``on``; null for a group with no values, or with a null and
    ``ignore_nulls=False``."""

    kind = "sum"

    def partials(self) -> list[Partial]:
        options = _skip(self.ignore_nulls)
        return [Partial("sum", options, "sum", options)]


class Min(BuiltinAggregation):
    """The smallest value of ``on`` (numbers, strings, dates...)."""

    kind = "min"
    numeric_only = False

    def partials(self) -> list[Partial]:
        options = _skip(self.ignore_nulls)
        return [Partial("min", options, "min", options)]


class Max(BuiltinAggregation):
    """The largest value of ``on``."""

    kind = "max"
    numeric_only = False

    def partials(self) -> list[Partial]:
        options = _skip(self.ignore_nulls)
        return [Partial("max", options, "max", options)]


class AbsMax(Max):
    """The largest absolute value of ``on``."""

    kind = "abs_max"
    numeric_only = True

    def prepare(self, column: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.abs(super().prepare(column))


class Mean(BuiltinAggregation):
    """The mean of ``on`` as a float."""

    kind = "mean"

    def partials(self) -> list[Partial]:
        options = _skip(self.ignore_nulls)
        return [
            Partial("sum", options, "sum", options),
            Partial("count", _count("only_valid"), "sum"),
        ]

    def finalize_columns(
        self, merged: list[pa.ChunkedArray | None], partials: list[pa.ChunkedArray], groups: Groups
    ) -> pa.Array | pa.ChunkedArray:
        total, count = merged
        return pc.divide(pc.cast(total, pa.float64()), count)


class Std(BuiltinAggregation):
    """The standard deviation of ``on`` with ``N - ddof`` as divisor (NaN when that is not
    positive). Blocks' counts, means and squared deviations are merged with Chan's formula,
    which stays accurate when the mean is large next to the spread."""

    kind = "std"
    needs_groups = True

    def __init__(
        self,
        on: str | None = None,
        ddof: int = 1,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
    ) -> None:
        super().__init__(on, ignore_nulls, alias_name)
        self.ddof = ddof

    def partials(self) -> list[Partial]:
        valid = pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)
        parts = [
            Partial("count", _count("only_valid"), "sum"),
            Partial("mean", valid),
            Partial("variance", pc.VarianceOptions(ddof=0, skip_nulls=True, min_count=1)),
        ]
        if not self.ignore_nulls:
            parts.append(Partial("count", _count("only_null"), "sum"))
        return parts

    def finalize_columns(
        self, merged: list[pa.ChunkedArray | None], partials: list[pa.ChunkedArray], groups: Groups
    ) -> pa.Array | pa.ChunkedArray:
        counts = _floats(partials[0])
        means = _floats(partials[1])
        m2 = _floats(partials[2]) * counts
        total = np.bincount(groups.ids, weights=counts, minlength=groups.count)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(groups.ids, weights=counts * means, minlength=groups.count) / total
            spread = m2 + counts * (means - mean[groups.ids]) ** 2
            m2_total = np.bincount(groups.ids, weights=spread, minlength=groups.count)
            divisor = total - self.ddof
            std = np.where(
                divisor > 0, np.sqrt(m2_total / np.where(divisor > 0, divisor, 1)), np.nan
            )
        null = total == 0
        nulls = merged[3] if not self.ignore_nulls else None
        if nulls is not None:
            null |= nulls.to_numpy(zero_copy_only=False) > 0
        return pa.array(std, type=pa.float64(), mask=null)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A partial column as floats, null as 0 (a block where a group has no value)."""
    return np.asarray(pc.fill_null(pc.cast(column, pa.float64()), 0.0).to_numpy(), dtype=float)
