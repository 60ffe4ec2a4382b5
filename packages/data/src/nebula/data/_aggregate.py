"""Group-by aggregation in two phases: partial aggregates per block, then one combine.

Output columns follow the ``count()``, ``sum(col)``, ``mean(col)`` naming, one row per
group, sorted by the group keys.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from nebula.data import _blocks
from nebula.data._blocks import Block, BlockMetadata, RefBundle

import nebula

AGGREGATIONS = ("count", "sum", "mean")


def _partial_specs(aggs: list[tuple[str, str | None]]) -> list[tuple[Any, str]]:
    specs: list[tuple[Any, str]] = []
    for kind, column in aggs:
        if kind == "count":
            specs.append(([], "count_all"))
        else:
            specs.append((column, "sum"))
            if kind == "mean":
                specs.append((column, "count"))
    return specs


@nebula.remote
def _partial(block: Block, keys: list[str], aggs: list[tuple[str, str | None]]) -> Block:
    missing = [key for key in keys if key not in block.column_names]
    if missing:
        raise KeyError(f"groupby key(s) {missing} not in the columns {block.column_names}.")
    return block.group_by(keys).aggregate(_partial_specs(aggs))


@nebula.remote(num_returns=2)
def _combine(
    keys: list[str], aggs: list[tuple[str, str | None]], *partials: Block
) -> tuple[Block, BlockMetadata]:
    table = _blocks.concat(partials)
    if table.num_rows == 0:
        return table, BlockMetadata.of(table)
    partial_names = [name for name in table.column_names if name not in keys]
    totals = table.group_by(keys).aggregate([(name, "sum") for name in partial_names])
    columns: dict[str, Any] = {key: totals.column(key) for key in keys}
    for kind, column in aggs:
        if kind == "count":
            columns["count()"] = totals.column("count_all_sum")
        elif kind == "sum":
            columns[f"sum({column})"] = totals.column(f"{column}_sum_sum")
        else:
            total = pc.cast(totals.column(f"{column}_sum_sum"), pa.float64())
            columns[f"mean({column})"] = pc.divide(total, totals.column(f"{column}_count_sum"))
    result = pa.table(columns).sort_by([(key, "ascending") for key in keys])
    return result, BlockMetadata.of(result)


def aggregate(bundles: list[RefBundle], params: dict[str, Any]) -> list[RefBundle]:
    keys: list[str] = params["keys"]
    aggs: list[tuple[str, str | None]] = params["aggs"]
    partials = [
        _partial.remote(bundle.ref, keys, aggs) for bundle in bundles if bundle.meta.num_rows
    ]
    block_ref, meta_ref = _combine.remote(keys, aggs, *partials)
    return [RefBundle(block_ref, nebula.get(meta_ref))]
