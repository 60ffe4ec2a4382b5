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
    _keep_freed_heap()
    return list(_WORKER_MODULES)


@hookimpl
def nebula_worker_started(worker: WorkerInfo) -> None:
    """Set up the allocators of a worker that did not come from the node's zygote."""
    _choose_arrow_pool()
    _keep_freed_heap()


def _choose_arrow_pool() -> None:
    """Have Arrow allocate from mimalloc in workers (Linux), unless the user chose a pool,
    and return what a task freed to the system after 0.1 s rather than mimalloc's 1 s.

    mimalloc keeps what a task freed for the next task. jemalloc, as Arrow configures it,
    hands large freed blocks back to the system at once, so every task faults its memory in
    again: a read -> map_batches -> write pipeline spent a third of its CPU time in the
    kernel with it, for a worker footprint about 15% smaller.

    mimalloc's own delay before it hands freed memory back is 1 s, ten tasks or more of
    such a pipeline: a worker then held the memory of several tasks at once, 240 MiB where
    one task peaks at 90. 0.1 s still covers the gap between two tasks; the peak of a map
    pipeline on two workers went from 0.68 to 0.55 GiB. Both are read once, when Arrow is
    first imported, hence here, before any task runs; a user's own settings are kept.
    """
    if sys.platform.startswith("linux") and "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
        os.environ.setdefault("MIMALLOC_PURGE_DELAY", "100")


# glibc's mallopt parameters, and the values workers use (see _keep_freed_heap).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_KEPT = 32 << 20
_MALLOC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def _keep_freed_heap() -> None:
    """Have glibc's malloc keep up to 32 MiB a worker freed for its next task (Linux, glibc),
    unless the user tuned malloc through its environment variables.

    numpy allocates through malloc. By default a block of a few MiB (a filtered column) is
    mapped fresh and unmapped when freed, so each task faults every page of its arrays in
    again: a map_batches with a numpy mask over a 750k-row block took 2,300 page faults a
    block (in one process, with malloc's starting thresholds against these: 118.6 ms a
    block against 110.6). Blocks up to 32 MiB now come from the heap, and up to 32 MiB of
    free heap stay mapped for the next task.
    """
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _MALLOC_VARIABLES):
        return
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_KEPT)
        libc.mallopt(_M_TRIM_THRESHOLD, _HEAP_KEPT)
    except (OSError, AttributeError):  # no mallopt: leave malloc as it is
        return
