"""Turning a logical plan into physical operators and streaming blocks through them.

The executor is a loop on the consumer's thread: move outputs downstream (as far as each
operator accepts), hand the last operator's outputs to the consumer, submit new work where
there is room, then wait for any submitted work to finish. Because it is a generator, it
only advances while the consumer asks for more, so nothing runs far ahead of the reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from nebula.data._blocks import RefBundle
from nebula.data._logical import (
    AllToAll,
    FusedMap,
    InputData,
    Limit,
    LogicalOperator,
    MapOp,
    Read,
    chain,
)
from nebula.data._optimizer import optimize
from nebula.data._physical import (
    AllToAllOperator,
    Exchange,
    InputBuffer,
    LimitOperator,
    MapOperator,
    PhysicalOperator,
)
from nebula.data._transforms import ChainTransform

import nebula
from nebula._plugins.manager import operator_registry


@dataclass
class DataContext:
    """Execution settings for datasets created in this process.

    ``max_in_flight_per_operator``: how many blocks one operator may have being computed or
    waiting to be consumed; None means twice the cluster's CPUs.
    """

    max_in_flight_per_operator: int | None = None

    @staticmethod
    def get_current() -> DataContext:
        global _CONTEXT
        if _CONTEXT is None:
            _CONTEXT = DataContext()
        return _CONTEXT

    def in_flight_bound(self) -> int:
        if self.max_in_flight_per_operator is not None:
            return self.max_in_flight_per_operator
        cpus = nebula.cluster_resources().get("CPU", 1) if nebula.is_initialized() else 1
        return max(2, int(2 * cpus))


_CONTEXT: DataContext | None = None


@dataclass(frozen=True)
class AllToAllKind:
    """A registered all-to-all operator kind: how its exchange runs."""

    exchange: Exchange


def plan_physical(plan: LogicalOperator, max_in_flight: int) -> list[PhysicalOperator]:
    """Physical operators for an optimized logical plan, source first."""
    registry = operator_registry()
    physical: list[PhysicalOperator] = []
    for op in chain(plan):
        if isinstance(op, Read):
            physical.append(InputBuffer("Input", op.read_tasks))
            physical.append(MapOperator(op.name, ChainTransform([]), max_in_flight))
        elif isinstance(op, InputData):
            physical.append(InputBuffer(op.name, op.bundles))
        elif isinstance(op, FusedMap):
            if op.read is not None:
                physical.append(InputBuffer("Input", op.read.read_tasks))
            stages = [(stage.name, stage.transform) for stage in op.stages]
            physical.append(MapOperator(op.name, ChainTransform(stages), max_in_flight))
        elif isinstance(op, MapOp):
            bound = min(max_in_flight, op.max_tasks or max_in_flight)
            transform = ChainTransform([(op.name, op.transform)])
            physical.append(MapOperator(op.name, transform, bound, op.actor_pool_size))
        elif isinstance(op, Limit):
            physical.append(LimitOperator(op.limit))
        elif isinstance(op, AllToAll):
            kind = registry.get(op.kind)
            assert isinstance(kind, AllToAllKind)
            physical.append(AllToAllOperator(op.name, kind.exchange, op.params))
        else:
            raise TypeError(f"no physical operator for logical operator {op.name}")
    return physical


class StreamingExecutor:
    """Runs physical operators as a pipeline and yields the last one's blocks in order."""

    def __init__(self, plan: LogicalOperator, context: DataContext | None = None) -> None:
        self.optimized = optimize(plan)
        bound = (context or DataContext.get_current()).in_flight_bound()
        self.operators = plan_physical(self.optimized, bound)
        self.started = time.perf_counter()
        self.finished: float | None = None

    def run(self) -> Iterator[RefBundle]:
        ops = self.operators
        try:
            while True:
                self._move_outputs()
                last = ops[-1]
                while last.has_output():
                    yield last.take_output()
                if last.done():
                    self.finished = time.perf_counter()
                    return
                for op in ops:
                    op.dispatch()
                self._wait_for_work()
        finally:
            for op in ops:
                op.shutdown()

    def _move_outputs(self) -> None:
        ops = self.operators
        for index in range(len(ops) - 1):
            upstream, downstream = ops[index], ops[index + 1]
            while upstream.has_output() and downstream.accepts_input():
                downstream.add_input(upstream.take_output())
            if upstream.done() and not downstream.inputs_closed:
                downstream.inputs_done()
            if isinstance(downstream, LimitOperator) and downstream.reached():
                for earlier in ops[: index + 1]:
                    earlier.stop()

    def _wait_for_work(self) -> None:
        owners = {ref: op for op in self.operators for ref in op.pending()}
        if not owners:
            return
        ready, rest = nebula.wait(list(owners), num_returns=1)
        if rest:
            more, _ = nebula.wait(rest, num_returns=len(rest), timeout=0)
            ready = ready + more
        for ref in ready:
            owners[ref].on_ready(ref)

    def stats_text(self) -> str:
        end = self.finished or time.perf_counter()
        lines = []
        for index, op in enumerate(self.operators):
            if isinstance(op, InputBuffer):
                continue
            stats = op.stats
            wall = (stats.finished or end) - (stats.started or self.started)
            mean = stats.task_seconds / stats.blocks if stats.blocks else 0.0
            lines.append(
                f"Operator {index} {op.name}: {stats.tasks} tasks, {stats.blocks} blocks, "
                f"{stats.rows} rows; task time {stats.task_seconds:.3f}s total "
                f"({mean:.3f}s mean per block); wall time {wall:.3f}s"
            )
        lines.append(f"Dataset total wall time: {end - self.started:.3f}s")
        return "\n".join(lines)
