"""nebula-data's hook implementations (found through the ``nebula.plugins`` entry point)."""

from __future__ import annotations

from nebula.hookspecs import OperatorRegistry, hookimpl


@hookimpl
def nebula_register_operators(registry: OperatorRegistry) -> None:
    """Register the optimizer rules (applied in this order) and the all-to-all kinds."""
    # Imported here: loading plugins must not import pyarrow in processes that never use data.
    from nebula.data._aggregate import aggregate
    from nebula.data._exchange import random_shuffle, repartition, sort
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
    registry.add("Sort", AllToAllKind(sort), description="range-partitioned sort")
    registry.add("Aggregate", AllToAllKind(aggregate), description="two-phase group-by")
