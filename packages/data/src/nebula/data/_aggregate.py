"""Group-by aggregation in two phases: partial aggregates per block, then combine tasks.

Each block is grouped in its own task: built-in aggregations keep Arrow partial columns per
group, :class:`AggregateFn` ones an accumulator per group. The partials are cut into ranges
of the first key, and one combine task per range groups them again, merges them and
finalizes the output: the key columns, then one column per aggregation named as the
aggregation (``count()``, ``sum(x)``), one row per group, sorted by the keys. Without keys
the whole dataset is one group.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from nebula.data import _blocks
from nebula.data._aggregations import AggregateFn, BuiltinAggregation, Count, Groups
from nebula.data._blocks import Block, BlockMetadata, PendingBundle, RefBundle
from nebula.data._exchange import key_boundaries, partition_ids
from nebula.data._group_numpy import grouped_counts_and_sums
from nebula.data._shuffle import indices
from nebula.data._transforms import BlockTransform
from nebula.data._zero_copy import numpy_view

import nebula

PARTIAL_ROWS_PER_RANGE = 500_000  # groups one combine task takes, when known up front
_ALL = "__nebula_all__"  # the one key of a keyless aggregation
_ROW = "__nebula_row__"  # row numbers, to find each group's rows


def resolve_aggregations(
    aggs: Sequence[AggregateFn], keys: list[str], schema: pa.Schema | None
) -> list[AggregateFn]:
    """Expand ``on=None`` built-ins to the non-key columns they apply to (numeric ones for
    sum, mean, std; all for min, max) and check the columns exist."""
    names = list(schema.names) if schema is not None else []
    missing = [key for key in keys if key not in names]
    if schema is not None and missing:
        raise KeyError(f"groupby key(s) {missing} not in the columns {names}.")
    resolved: list[AggregateFn] = []
    for agg in aggs:
        if not isinstance(agg, BuiltinAggregation):
            resolved.append(agg)
        elif agg.on is None and not isinstance(agg, Count):
            resolved += [
                agg.with_column(field.name)
                for field in (schema or [])
                if field.name not in keys and agg.accepts(field.type)
            ]
        elif agg.on is not None and schema is not None and agg.on not in names:
            raise KeyError(f"{agg.name}: column {agg.on!r} not in the columns {names}.")
        else:
            resolved.append(agg)
    check_distinct_names(resolved)
    return resolved


def check_distinct_names(aggs: Sequence[AggregateFn]) -> None:
    names = [agg.name for agg in aggs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"aggregations must have distinct names, but {repeated} appear more than once; "
            "pass alias_name= to tell them apart."
        )


def _keyed(block: Block, keys: list[str]) -> tuple[Block, list[str]]:
    if keys:
        return block, keys
    zeros = indices(np.zeros(block.num_rows, dtype=np.int64))
    return block.append_column(_ALL, zeros), [_ALL]


def _key_values(table: pa.Table, keys: list[str]) -> list[Any]:
    """Each group's key as ``AggregateFn.init`` receives it."""
    if not keys:
        return [None] * table.num_rows
    columns = [table.column(key).to_pylist() for key in keys]
    return columns[0] if len(keys) == 1 else list(zip(*columns))


def _row_lists(grouped: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The rows of each group, flat, and where each group's rows start (plus the end)."""
    lists = grouped.column(f"{_ROW}_list").combine_chunks()
    rows = np.asarray(lists.flatten().to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = np.asarray(lists.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    return rows, offsets - offsets[0]


def _grouped(table: pa.Table, keys: list[str], specs: list[tuple[Any, ...]]) -> pa.Table:
    """Arrow's hash aggregation, in one chunk per column.

    Its output comes in many chunks that are slices of one buffer per column: stored as
    they are, every chunk would carry the whole buffer (23 times the data at 750k groups).
    """
    fast = grouped_counts_and_sums(table, keys, specs)
    if fast is not None:
        return fast
    return table.group_by(keys, use_threads=False).aggregate(specs).combine_chunks()


def _partial(
    block: Block, keys: list[str], aggs: list[AggregateFn]
) -> tuple[Block, dict[int, list[Any]]]:
    work, group_keys = _keyed(block, keys)
    columns: dict[str, Any] = {key: work.column(key) for key in group_keys}
    specs: list[tuple[Any, ...]] = []
    generic = []
    for index, agg in enumerate(aggs):
        if not isinstance(agg, BuiltinAggregation):
            generic.append(index)
            continue
        source = agg.prepare(work.column(agg.on)) if agg.on else work.column(group_keys[0])
        for part_index, part in enumerate(agg.partials()):
            name = f"__p{index}_{part_index}"
            columns[name] = source
            specs.append((name, part.function, part.options))
    if generic:
        columns[_ROW] = indices(np.arange(work.num_rows, dtype=np.int64))
        specs.append((_ROW, "list"))
    grouped = _grouped(pa.table(columns), group_keys, specs)
    states: dict[int, list[Any]] = {}
    if generic:
        rows, offsets = _row_lists(grouped)
        keys_of = _key_values(grouped, keys)
        for index in generic:
            agg = aggs[index]
            states[index] = [
                agg.accumulate(agg.init(key), block.take(rows[offsets[g] : offsets[g + 1]]))
                for g, key in enumerate(keys_of)
            ]
    kept = {key: grouped.column(key) for key in group_keys}
    for spec in specs:
        if spec[0] != _ROW:
            kept[spec[0]] = grouped.column(f"{spec[0]}_{spec[1]}")
    return pa.table(kept), states


def _needs_rows(aggs: Sequence[AggregateFn]) -> bool:
    """Whether combining needs each group's rows (Python aggregations, Std's merge)."""
    return any(not isinstance(agg, BuiltinAggregation) or agg.needs_groups for agg in aggs)


def _combine(
    keys: list[str], aggs: list[AggregateFn], *partials: tuple[Block, dict[int, list[Any]]]
) -> tuple[Block, BlockMetadata]:
    tables = [table for table, _ in partials if table.num_rows]
    if not tables:
        empty = pa.table({})
        return empty, BlockMetadata.of(empty)
    table = _blocks.concat(tables)
    states = {
        index: [s for table, part in partials if table.num_rows for s in part[index]]
        for index, agg in enumerate(aggs)
        if not isinstance(agg, BuiltinAggregation)
    }
    group_keys = keys or [_ALL]
    with_rows = _needs_rows(aggs)
    if with_rows:
        table = table.append_column(_ROW, indices(np.arange(table.num_rows, dtype=np.int64)))
    specs: list[tuple[Any, ...]] = []
    for index, agg in enumerate(aggs):
        if isinstance(agg, BuiltinAggregation):
            for part_index, part in enumerate(agg.partials()):
                if part.merge is not None:
                    specs.append((f"__p{index}_{part_index}", part.merge, part.merge_options))
    if with_rows:
        specs.append((_ROW, "list"))
    if not specs:  # only counts of groups: any merge gives the groups
        specs.append((group_keys[0], "count"))
    grouped = _grouped(table, group_keys, specs)
    groups = Groups(np.empty(0, dtype=np.int64), grouped.num_rows)
    if with_rows:
        rows, offsets = _row_lists(grouped)
        ids = np.empty(table.num_rows, dtype=np.int64)
        ids[rows] = np.repeat(np.arange(grouped.num_rows), np.diff(offsets))
        groups = Groups(ids, grouped.num_rows)
    columns: dict[str, Any] = {key: grouped.column(key) for key in keys}
    for index, agg in enumerate(aggs):
        if isinstance(agg, BuiltinAggregation):
            parts = agg.partials()
            merged = [
                grouped.column(f"__p{index}_{i}_{part.merge}") if part.merge else None
                for i, part in enumerate(parts)
            ]
            partial_columns = [table.column(f"__p{index}_{i}") for i in range(len(parts))]
            columns[agg.name] = agg.finalize_columns(merged, partial_columns, groups)
        else:
            columns[agg.name] = pa.array(
                [
                    agg.finalize(_merge_all(agg, [states[index][r] for r in rows[start:end]]))
                    for start, end in itertools.pairwise(offsets)
                ]
            )
    result = pa.table(columns)
    if keys:
        result = _sorted_by_keys(result, keys)
    return result, BlockMetadata.of(result)


def _merge_all(agg: AggregateFn, accumulators: list[Any]) -> Any:
    merged = accumulators[0]
    for accumulator in accumulators[1:]:
        merged = agg.merge(merged, accumulator)
    return merged


def partial_aggregation_applies(aggs: Sequence[AggregateFn], keys: Sequence[str]) -> bool:
    """Whether blocks can be reduced to partial aggregates before the exchange: built-in
    aggregations on named columns (no ``on=None`` to expand from the whole schema)."""
    return bool(keys) and all(
        isinstance(agg, BuiltinAggregation) and (agg.on is not None or isinstance(agg, Count))
        for agg in aggs
    )


@dataclass
class PartialAggregateTransform(BlockTransform):
    """A block's partial aggregates (one row per group), computed where the block is made,
    so that a group-by moves partials, not rows, through the object store."""

    keys: list[str]
    aggs: list[AggregateFn]

    def input_columns(self, wanted: frozenset[str] | None) -> frozenset[str] | None:
        on = [agg.on for agg in self.aggs if isinstance(agg, BuiltinAggregation) and agg.on]
        return frozenset([*self.keys, *on])

    def __call__(self, block: Block) -> Block:
        aggs = resolve_aggregations(self.aggs, self.keys, block.schema)
        table, _ = _partial(block, self.keys, aggs)
        return _sorted_by_keys(table, self.keys)


def _sorted_by_keys(table: pa.Table, keys: list[str]) -> pa.Table:
    """``table`` ordered by ``keys`` (nulls last), so that a combine task finds its key
    range in it with a binary search; the numpy group-by already gives key order."""
    view = numpy_view(table.column(keys[0])) if len(keys) == 1 else None
    if view is not None and (len(view) < 2 or bool(np.all(view[:-1] <= view[1:]))):
        return table
    return table.sort_by([(key, "ascending") for key in keys])


def _key_range(table: pa.Table, key: str, boundaries: np.ndarray, part: int) -> tuple[int, int]:
    """Where the rows of range ``part`` are in ``table``, sorted by ``key`` with nulls last:
    range ``p`` holds keys from ``boundaries[p - 1]`` up to but not including
    ``boundaries[p]``; the last range also holds the nulls."""
    column = table.column(key)
    start, stop = 0, table.num_rows
    if len(boundaries):
        prefix = column.slice(0, len(column) - column.null_count)
        view = numpy_view(prefix)
        values = view if view is not None else prefix.to_numpy(zero_copy_only=False)
        if part > 0:
            start = int(np.searchsorted(values, boundaries[part - 1], side="left"))
        if part < len(boundaries):
            stop = int(np.searchsorted(values, boundaries[part], side="left"))
    return start, stop


@nebula.remote(num_returns=2)
def _combine_sorted_range(
    part: int, keys: list[str], aggs: list[AggregateFn], boundaries: np.ndarray, *tables: Block
) -> tuple[Block, BlockMetadata]:
    """Combine key range ``part`` of partial aggregates that are each sorted by the keys."""
    pieces: list[tuple[Block, dict[int, list[Any]]]] = []
    for table in tables:
        start, stop = _key_range(table, keys[0], boundaries, part)
        if stop > start:
            pieces.append((table.slice(start, stop - start), {}))
    return _combine(keys, aggs, *pieces)


@nebula.remote(num_returns=2)
def _partial_map(
    block: Block,
    keys: list[str],
    aggs: list[AggregateFn],
    boundaries: np.ndarray,
    is_partial: bool = False,
) -> tuple[tuple[Block, dict[int, list[Any]]], np.ndarray]:
    """A block's partial aggregates, reordered so that each key range's groups are
    contiguous, and where each range starts."""
    table, states = (block, {}) if is_partial else _partial(block, keys, aggs)
    parts = len(boundaries) + 1
    if parts == 1 or not table.num_rows:
        return (table, states), np.array([0] + [table.num_rows] * parts, dtype=np.int64)
    ids = partition_ids(table.column(keys[0]), boundaries, null_part=parts - 1)
    order = np.argsort(ids, kind="stable")
    table = table.take(indices(order))
    states = {index: [values[r] for r in order] for index, values in states.items()}
    offsets = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=parts))])
    return (table, states), offsets.astype(np.int64)


@nebula.remote(num_returns=2)
def _combine_range(
    part: int, count: int, keys: list[str], aggs: list[AggregateFn], *args: Any
) -> tuple[Block, BlockMetadata]:
    """Combine range ``part`` of every block's partials (offsets first, then partials)."""
    pieces = []
    for cuts, (table, states) in zip(args[:count], args[count:]):
        start, stop = int(cuts[part]), int(cuts[part + 1])
        if stop > start:
            sliced = {index: values[start:stop] for index, values in states.items()}
            pieces.append((table.slice(start, stop - start), sliced))
    return _combine(keys, aggs, *pieces)


def aggregate(bundles: list[RefBundle], params: dict[str, Any]) -> list[Any]:
    """Partial aggregates per block, then combine tasks over ranges of the first key.

    Groups with equal keys always meet in one combine task; the ranges come in key order
    (nulls last, as the sort puts them), so the output blocks, in order, are sorted by the
    keys. Without keys, or with few groups, one combine task does it all. Each block's
    partials are stored once, ordered by range; a combine task slices its range out of
    each through shared memory. Partials made where the blocks were read or mapped
    (``PartialAggregationRule``) come sorted by the keys, so the combine tasks find their
    ranges in them directly, with no task in between.
    """
    keys: list[str] = params["keys"]
    is_partial = bool(params.get("partial"))
    non_empty = [bundle for bundle in bundles if bundle.meta.num_rows]
    schema = non_empty[0].meta.schema if non_empty and not is_partial else None
    aggs = resolve_aggregations(params["aggs"], keys, schema)
    boundaries = np.array([])
    # As many ranges as blocks, fewer when the keys have fewer distinct values; partials
    # already aggregated need a range per PARTIAL_ROWS_PER_RANGE groups at most.
    parts = len(non_empty)
    if is_partial:
        rows = sum(bundle.meta.num_rows for bundle in non_empty)
        parts = min(parts, -(-rows // PARTIAL_ROWS_PER_RANGE))
    if keys and parts > 1:
        key_columns = [keys[0]] * len(non_empty)
        boundaries = key_boundaries(non_empty, key_columns, parts, "groupby")
    if is_partial:  # sorted by the keys already: each combine task slices its range
        tables = [bundle.ref for bundle in non_empty]
        outputs = [
            PendingBundle(*_combine_sorted_range.remote(part, keys, aggs, boundaries, *tables))
            for part in range(len(boundaries) + 1)
        ]
        return _outputs(outputs)
    maps = [
        _partial_map.remote(bundle.ref, keys, aggs, boundaries, is_partial) for bundle in non_empty
    ]
    offsets = [offset_ref for _, offset_ref in maps]
    partials = [partial_ref for partial_ref, _ in maps]
    parts = len(boundaries) + 1
    outputs = [
        PendingBundle(*_combine_range.remote(part, len(maps), keys, aggs, *offsets, *partials))
        for part in range(parts)
    ]
    return _outputs(outputs)


def _outputs(outputs: list[PendingBundle]) -> list[Any]:
    if len(outputs) == 1:  # one group per aggregation even without rows: keep the block
        block_ref, meta_ref = outputs[0].ref, outputs[0].meta_ref
        return [RefBundle(block_ref, nebula.get(meta_ref))]
    return list(outputs)
