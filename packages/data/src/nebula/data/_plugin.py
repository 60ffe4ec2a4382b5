"""nebula-data's hook implementations (found through the ``nebula.plugins`` entry point)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pluggy

from nebula.plugins import WorkerInfo, hookimpl

if TYPE_CHECKING:
    from nebula.data.hookspecs import OperatorRegistry, RuleRegistry


@hookimpl
def nebula_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    from nebula.data import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def nebula_register_optimizer_rules(registry: RuleRegistry) -> None:
    """The built-in rules, applied in this order."""
    # Imported here: loading plugins must not import pyarrow in processes that never use data.
    from nebula.data._optimizer import (
        ExchangeMapRule,
        JoinSortMapRule,
        LimitPushdownRule,
        OperatorFusionRule,
        PartialAggregationRule,
    )

    registry.add(
        "LimitPushdownRule",
        LimitPushdownRule(),
        description="move limits below one-to-one operators and merge adjacent limits",
    )
    registry.add(
        "PartialAggregationRule",
        PartialAggregationRule(),
        description="aggregate each block where it is made, before a group-by's exchange",
    )
    registry.add(
        "ExchangeMapRule",
        ExchangeMapRule(),
        description="order each block where it is made, before a shuffle or a sort",
    )
    registry.add(
        "JoinSortMapRule",
        JoinSortMapRule(),
        description="sort each block of a join's input by its key where it is made",
    )
    registry.add(
        "OperatorFusionRule",
        OperatorFusionRule(),
        description="fuse runs of task-based map operators and their read into one operator",
    )


@hookimpl
def nebula_register_operators(registry: OperatorRegistry) -> None:
    """The built-in all-to-all operators."""
    from nebula.data._aggregate import aggregate
    from nebula.data._exchange import randomize_blocks, repartition
    from nebula.data._shuffle import random_shuffle, sort
    from nebula.data._shuffle_stream import shuffle_stream
    from nebula.data._sort_stream import sort_stream

    registry.add("Repartition", repartition, description="split rows evenly")
    registry.add("RandomShuffle", random_shuffle, description="shuffle rows", stream=shuffle_stream)
    registry.add("RandomizeBlockOrder", randomize_blocks, description="shuffle blocks")
    registry.add("Sort", sort, description="range-partitioned sort", stream=sort_stream)
    registry.add("Aggregate", aggregate, description="two-phase group-by")


# What a worker imports to read, map, exchange and write blocks (pandas only when a UDF
# asks for pandas batches, so not here).
_WORKER_MODULES = ["numpy", "pyarrow", "pyarrow.compute", "pyarrow.parquet"] + [
    f"nebula.data.{name}"
    for name in [
        "_aggregate",
        "_batching",
        "_blocks",
        "_deferred",
        "_exchange",
        "_expressions",
        "_group_numpy",
        "_join",
        "_numpy_batch",
        "_physical",
        "_read",
        "_shuffle",
        "_sort_stream",
        "_strings",
        "_transforms",
        "_write",
        "_zero_copy",
    ]
]


@hookimpl
def nebula_worker_imports() -> list[str]:
    """Arrow, numpy and the task side of nebula-data, imported once per node.

    Each worker would otherwise import them in its first data task: a fifth to two fifths
    of a second, paid again by every worker of a fresh cluster.
    """
    _choose_arrow_pool()
    return list(_WORKER_MODULES)


@hookimpl
def nebula_worker_started(worker: WorkerInfo) -> None:
    """Have Arrow allocate from mimalloc in workers (Linux), unless the user chose a pool.

    mimalloc keeps what a task freed for the next task. jemalloc, as Arrow configures it,
    hands large freed blocks back to the system at once, so every task faults its memory in
    again: a read -> map_batches -> write pipeline spent a third of its CPU time in the
    kernel with it, for a worker footprint about 15% smaller. Arrow reads the choice once,
    when it is first imported, hence here, before any task runs.
    """
    _choose_arrow_pool()


def _choose_arrow_pool() -> None:
    if sys.platform.startswith("linux") and "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
