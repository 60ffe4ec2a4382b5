"""The byte budget a streaming execution keeps within, and what its operators hold.

The bytes an execution holds are the blocks it produced that are still in the pipeline
(queued between operators, waiting to be handed on, or the input of a running task) plus
an estimate of the outputs of its running tasks. The executor asks the budget before each
launch; blocks already handed to the consumer no longer count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import nebula

if TYPE_CHECKING:
    from nebula.data._physical import PhysicalOperator

DEFAULT_OBJECT_STORE_MEMORY_FRACTION = 0.5
NODE_STORE_SHARE_OF_RAM = 0.3
"""The share of its RAM a node gives its object store when not told a size (core's default;
only used to size a budget before any cluster is running)."""


def object_store_capacity() -> int:
    """The cluster's object store bytes, as its nodes report them.

    A cluster that does not report them is assumed to hold this machine's default store
    (the same share of its RAM a node manager takes when not told a size).
    """
    if nebula.is_initialized():
        reported = nebula.cluster_resources().get("object_store_memory")
        if reported:
            return int(reported)
    import psutil

    return int(psutil.virtual_memory().total * NODE_STORE_SHARE_OF_RAM)


def resolve_memory_limit(limit: int | None, fraction: float) -> int:
    """``limit`` when set, else ``fraction`` of the cluster's object store."""
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError(
                "DataContext.object_store_memory_limit must be a positive number of bytes "
                f"or None (a share of the object store), got {limit!r}."
            )
        return limit
    is_number = isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
    if not is_number or not 0 < fraction <= 1:
        raise ValueError(
            "DataContext.object_store_memory_fraction must be a number in (0, 1], "
            f"got {fraction!r}."
        )
    return max(1, int(object_store_capacity() * fraction))


class MemoryBudget:
    """The bytes a pipeline holds against its limit, with the peak seen so far."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0

    def observe(self, operators: Sequence[PhysicalOperator]) -> int:
        """Recount what every operator holds now; record per-operator and total peaks."""
        total = 0
        for op in operators:
            held = op.bytes_held()
            op.stats.peak_bytes_held = max(op.stats.peak_bytes_held, held)
            total += held
        self.held = total
        self.peak = max(self.peak, total)
        return total

    def fits(self, extra: int) -> bool:
        return self.held + extra <= self.limit


def format_bytes(size: float) -> str:
    """``512.0 B``, ``3.2 MiB``: a byte count for people to read."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
