"""nebula-data's hook implementations (found through the ``nebula.plugins`` entry point)."""

from __future__ import annotations

import os
import sys
from typing import Any

from nebula.hookspecs import OperatorRegistry, hookimpl


@hookimpl
def nebula_register_operators(registry: OperatorRegistry) -> None:
    """Register the optimizer rules (applied in this order) and the all-to-all kinds."""
    # Imported here: loading plugins must not import pyarrow in processes that never use data.
    from nebula.data._aggregate import aggregate
    from nebula.data._exchange import random_shuffle, randomize_blocks, repartition, sort
    from nebula.data._executor import AllToAllKind
    from nebula.data._optimizer import LimitPushdownRule, OperatorFusionRule

    registry.add(
        "LimitPushdownRule",
        LimitPushdownRule(),
        description="move limits below one-to-one operators and merge adjacent limits",
    )
    registry.add(
        "OperatorFusionRule",
        OperatorFusionRule(),
        description="fuse runs of task-based map operators and their read into one operator",
    )
    registry.add("Repartition", AllToAllKind(repartition), description="split rows evenly")
    registry.add("RandomShuffle", AllToAllKind(random_shuffle), description="shuffle rows")
    registry.add(
        "RandomizeBlockOrder", AllToAllKind(randomize_blocks), description="shuffle blocks"
    )
    registry.add("Sort", AllToAllKind(sort), description="range-partitioned sort")
    registry.add("Aggregate", AllToAllKind(aggregate), description="two-phase group-by")


@hookimpl
def nebula_worker_started(worker: Any) -> None:
    """Have Arrow allocate from jemalloc in workers (Linux), unless the user chose a pool.

    Arrow's default allocator (mimalloc) keeps what a task freed for reuse, so a worker that
    reads, converts and writes blocks grows to a few times the size of one block and stays
    there; jemalloc hands freed memory back within a second, at the same speed. Arrow reads
    the choice once, when it is first imported, hence here, before any task runs.
    """
    if sys.platform.startswith("linux") and "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
