"""``ds.groupby(key)``: aggregations per group, and ``map_groups``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from nebula.data import _blocks
from nebula.data._aggregate import check_distinct_names
from nebula.data._aggregations import (
    AggregateFn,
    BuiltinAggregation,
    Count,
    Max,
    Mean,
    Min,
    Std,
    Sum,
)
from nebula.data._blocks import Block
from nebula.data._compute import RunOptions
from nebula.data._logical import AllToAll
from nebula.data._transforms import UDF, BlockTransform

if TYPE_CHECKING:
    from nebula.data._dataset import Dataset


def key_list(key: str | Sequence[str] | None) -> list[str]:
    if key is None:
        return []
    if isinstance(key, str):
        return [key]
    keys = list(key)
    if not all(isinstance(k, str) for k in keys):
        raise TypeError(f"groupby keys must be column names, got {key!r}.")
    return keys


def builtin_aggs(
    kind: type[BuiltinAggregation], on: str | Sequence[str] | None, **options: Any
) -> list[AggregateFn]:
    """One aggregation per column of ``on``; None means every non-key column (at run time)."""
    if on is None or isinstance(on, str):
        return [kind(on, **options)]
    columns = list(on)
    if not columns:
        raise ValueError(f"{kind.kind}(on=[]) needs at least one column.")
    return [kind(column, **options) for column in columns]


class GroupedData:
    """Rows grouped by the values of ``key`` (one or several columns; None: one group).

    Aggregations give one row per group, sorted by the keys, with the key columns first and
    one column per aggregation named like ``sum(x)``.
    """

    def __init__(self, dataset: Dataset, key: str | Sequence[str] | None) -> None:
        self._dataset = dataset
        self._keys = key_list(key)

    def __repr__(self) -> str:
        return f"GroupedData(keys={self._keys!r}, dataset=\n{self._dataset!r})"

    def aggregate(self, *aggs: AggregateFn) -> Dataset:
        """Apply each aggregation (``nebula.data.aggregate``) to every group."""
        if not aggs:
            raise ValueError("aggregate() needs at least one aggregation, e.g. Count().")
        for agg in aggs:
            if not isinstance(agg, AggregateFn):
                raise TypeError(
                    f"aggregate() takes AggregateFn objects (Count(), Sum('x'), ...), got {agg!r}."
                )
        check_distinct_names(aggs)
        params = {"keys": self._keys, "aggs": list(aggs)}
        return self._dataset._with(AllToAll(self._dataset._plan, "Aggregate", params))

    def count(self) -> Dataset:
        """The number of rows of each group, in column ``count()``."""
        return self.aggregate(Count())

    def sum(self, on: str | Sequence[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self.aggregate(*builtin_aggs(Sum, on, ignore_nulls=ignore_nulls))

    def min(self, on: str | Sequence[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self.aggregate(*builtin_aggs(Min, on, ignore_nulls=ignore_nulls))

    def max(self, on: str | Sequence[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self.aggregate(*builtin_aggs(Max, on, ignore_nulls=ignore_nulls))

    def mean(self, on: str | Sequence[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self.aggregate(*builtin_aggs(Mean, on, ignore_nulls=ignore_nulls))

    def std(
        self, on: str | Sequence[str] | None = None, ddof: int = 1, ignore_nulls: bool = True
    ) -> Dataset:
        """The standard deviation, dividing by ``N - ddof``."""
        return self.aggregate(*builtin_aggs(Std, on, ddof=ddof, ignore_nulls=ignore_nulls))

    def map_groups(
        self,
        fn: Any,
        *,
        batch_format: str = "default",
        compute: Any = None,
        fn_args: Sequence[Any] = (),
        fn_kwargs: Mapping[str, Any] | None = None,
        fn_constructor_args: Sequence[Any] = (),
        fn_constructor_kwargs: Mapping[str, Any] | None = None,
        concurrency: int | tuple[int, int] | None = None,
        **remote_args: Any,
    ) -> Dataset:
        """Call ``fn`` on each whole group as one batch, in key order.

        ``fn`` gets the group in ``batch_format`` and returns a batch (dict of columns,
        DataFrame or Table) or an iterator of batches; the outputs of all groups make the
        new dataset. A class runs on ``concurrency`` actors, built once per actor. Each
        group must fit in one task's memory; prefer ``aggregate`` where it can do the job.
        Resource arguments (``num_cpus=``, ...) go to each task or actor.
        """
        _blocks.check_batch_format(batch_format)
        # Sorting puts each group in one block: the sort partitions on the first key's range.
        grouped = self._dataset.sort(self._keys) if self._keys else self._dataset.repartition(1)
        udf = UDF.of(fn, fn_args, fn_kwargs, fn_constructor_args, fn_constructor_kwargs)
        transform = MapGroupsTransform(udf, self._keys, batch_format)
        run = RunOptions(concurrency, compute, remote_args)
        return grouped._udf_op("MapGroups", transform, run, udf=udf)


def group_bounds(block: Block, keys: list[str]) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal keys in a block sorted by ``keys``."""
    rows = block.num_rows
    if rows == 0:
        return []
    if not keys:
        return [(0, rows)]
    changed = np.zeros(rows - 1, dtype=bool)
    for key in keys:
        values = block.column(key).to_numpy(zero_copy_only=False)
        changed |= np.asarray(values[1:] != values[:-1], dtype=bool)
    starts = [0, *(np.flatnonzero(changed) + 1).tolist()]
    return list(zip(starts, [*starts[1:], rows]))


@dataclass
class MapGroupsTransform(BlockTransform):
    """Run ``udf`` on each group of a block sorted by ``keys``."""

    udf: UDF
    keys: list[str]
    batch_format: str

    def setup(self) -> None:
        self.udf.setup()

    def __call__(self, block: Block) -> Block:
        outputs = []
        for start, stop in group_bounds(block, self.keys):
            batch = _blocks.to_batch(block.slice(start, stop - start), self.batch_format)
            result = self.udf(batch)
            outputs += [_blocks.from_batch(out) for out in _batches(result)]
        return _blocks.concat(outputs)


def _batches(result: Any) -> Iterator[Any]:
    """A UDF's output as batches: one batch, or each batch of an iterator it returned."""
    if isinstance(result, (pa.Table, Mapping)) or _blocks._is_dataframe(result):
        yield result
    elif isinstance(result, Iterator):
        yield from result
    else:
        yield result  # from_batch says what it expected


def aggregate_dataset(dataset: Dataset, aggs: Sequence[AggregateFn]) -> dict[str, Any]:
    """The aggregations over the whole dataset, as ``{name: value}``."""
    rows = GroupedData(dataset, None).aggregate(*aggs).take_all()
    if rows:
        return rows[0]
    # No rows: the names are known except those of on=None built-ins (no columns to expand).
    return {
        agg.name: None
        for agg in aggs
        if not (isinstance(agg, BuiltinAggregation) and agg.on is None and type(agg) is not Count)
    }


def column_stat(
    dataset: Dataset,
    kind: type[BuiltinAggregation],
    on: str | Sequence[str] | None,
    **options: Any,
) -> Any:
    """A built-in over the whole dataset: a value for one column, else a dict by name."""
    aggs = builtin_aggs(kind, on, **options)
    result = aggregate_dataset(dataset, aggs)
    return result.get(aggs[0].name) if isinstance(on, str) else result
