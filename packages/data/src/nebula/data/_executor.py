"""Turning a logical plan into physical operators and streaming blocks through them.

The executor is a loop on the consumer's thread: move outputs downstream (as far as each
operator accepts), hand the last operator's outputs to the consumer, submit new work where
there is room, then wait for any submitted work to finish. Because it is a generator, it
only advances while the consumer asks for more, so nothing runs far ahead of the reader.

Room is counted in blocks per operator and in bytes for the whole pipeline: no operator
launches work while what the pipeline holds would exceed the memory budget, except that
when nothing at all is running the most downstream operator with input may run one task,
so the pipeline always moves. ``iter_batches`` may run the loop on a background thread
(``prefetch_blocks``) to compute and fetch the next blocks while the consumer works.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from nebula.data._blocks import Block, RefBundle
from nebula.data._budget import (
    DEFAULT_OBJECT_STORE_MEMORY_FRACTION,
    MemoryBudget,
    format_bytes,
    resolve_memory_limit,
)
from nebula.data._compute import (
    check_feasible,
    cluster_cpus,
    cluster_totals,
    pool_size,
    task_cpus,
)
from nebula.data._join import Join, JoinOperator
from nebula.data._logical import (
    AllToAll,
    FusedMap,
    InputData,
    Limit,
    LogicalOperator,
    MapOp,
    Read,
    Union,
    Zip,
    chain,
)
from nebula.data._nary import UnionOperator, ZipOperator
from nebula.data._optimizer import optimize
from nebula.data._physical import (
    AllToAllOperator,
    InputBuffer,
    LimitOperator,
    MapOperator,
    PhysicalOperator,
)
from nebula.data._progress import ProgressBars, open_progress_bars
from nebula.data._registries import operator_registry
from nebula.data._transforms import ChainTransform

import nebula


@dataclass
class ExecutionResources:
    """Limits on what one execution plans for (None: the cluster's)."""

    cpu: float | None = None
    gpu: float | None = None
    object_store_memory: int | None = None


@dataclass
class ExecutionOptions:
    """``resource_limits`` caps the CPUs an execution plans its tasks for and the object
    store bytes it holds. Outputs always keep their input order in Nebula, so
    ``preserve_order`` holds whatever it is set to; ``verbose_progress`` and
    ``locality_with_output`` are accepted for compatibility."""

    resource_limits: ExecutionResources = field(default_factory=ExecutionResources)
    preserve_order: bool = False
    verbose_progress: bool = False
    locality_with_output: bool = False
    actor_locality_enabled: bool = True


@dataclass
class DataContext:
    """Execution settings for datasets created in this process.

    ``max_in_flight_per_operator``: how many blocks one operator may have being computed or
    waiting to be consumed; None means twice the cluster's CPUs.
    ``object_store_memory_limit``: the bytes an execution may hold in the object store;
    None means ``object_store_memory_fraction`` of the cluster's object store.
    ``enable_progress_bars``: draw a progress bar per operator when stderr is a terminal.
    ``target_max_block_size``: the bytes a sort, shuffle or join aims to put in each output
    block (they make more, smaller blocks than their inputs to stay under it).
    ``shuffle_merge_fan_in``: a sort or shuffle larger than the object store splits each
    block into a piece per output block; with more input blocks than this, the pieces are
    merged in two stages (groups of at most this many blocks first, as their pieces are
    ready), so that no output block reads more than this many pieces.
    """

    max_in_flight_per_operator: int | None = None
    target_max_block_size: int = 128 * 2**20
    shuffle_merge_fan_in: int = 256
    object_store_memory_limit: int | None = None
    object_store_memory_fraction: float = DEFAULT_OBJECT_STORE_MEMORY_FRACTION
    enable_progress_bars: bool = True
    execution_options: ExecutionOptions = field(default_factory=ExecutionOptions)

    @staticmethod
    def get_current() -> DataContext:
        global _CONTEXT
        if _CONTEXT is None:
            _CONTEXT = DataContext()
        return _CONTEXT

    def in_flight_bound(self, cpus: int | None = None) -> int:
        if self.max_in_flight_per_operator is not None:
            return self.max_in_flight_per_operator
        return max(2, 2 * self._cpus(cpus))

    def _cpus(self, cpus: int | None) -> int:
        """The cluster's CPUs (or ``cpus``) within ``execution_options.resource_limits``."""
        cpus = cpus or cluster_cpus()
        limit = self.execution_options.resource_limits.cpu
        return cpus if limit is None else max(1, min(cpus, int(limit)))

    def startup_tasks(self, cpus: int | None = None) -> int:
        """How many tasks an operator runs before its first output shows how big they are:
        one per CPU (within the in-flight bound), so every worker starts at once."""
        cpus = self._cpus(cpus)
        return max(1, min(cpus, self.in_flight_bound(cpus)))

    def memory_limit(self) -> int:
        """The byte budget of one execution."""
        limit = self.object_store_memory_limit
        capped = self.execution_options.resource_limits.object_store_memory
        if capped is not None:
            limit = capped if limit is None else min(limit, capped)
        return resolve_memory_limit(limit, self.object_store_memory_fraction)


_CONTEXT: DataContext | None = None


def plan_physical(
    plan: LogicalOperator,
    max_in_flight: int,
    startup_tasks: int = 1,
    totals: Mapping[str, float] | None = None,
) -> list[PhysicalOperator]:
    """Physical operators for an optimized logical plan, each after its inputs (so the
    plan's last operator is last); each operator's ``input_ops`` say where it reads from.

    A map operator runs at most ``startup_tasks`` tasks until its first output shows how
    big they are, then up to ``max_in_flight``. ``totals``: the cluster's resources, which
    actor pools and per-task resource requests are checked against.
    """
    physical: list[PhysicalOperator] = []
    totals = cluster_totals() if totals is None else totals
    limits = _Limits(max_in_flight, max(1, startup_tasks), task_cpus(plan), totals)
    _plan_chain(plan, limits, physical)
    return physical


@dataclass(frozen=True)
class _Limits:
    """What bounds every operator of a plan: see ``plan_physical``; ``task_cpus`` stay free
    of actor pools for the tasks of the other operators."""

    max_in_flight: int
    startup_tasks: int
    task_cpus: float
    totals: Mapping[str, float]


def _plan_chain(
    plan: LogicalOperator, limits: _Limits, physical: list[PhysicalOperator]
) -> PhysicalOperator:
    """Append the operators of ``plan``'s chain (and of its inputs' chains); return the last."""
    registry = operator_registry()
    previous: PhysicalOperator | None = None
    max_in_flight, startup_tasks = limits.max_in_flight, limits.startup_tasks

    def add(op: PhysicalOperator, inputs: list[PhysicalOperator] | None = None) -> None:
        nonlocal previous
        op.input_ops = inputs if inputs is not None else ([previous] if previous else [])
        physical.append(op)
        previous = op

    for op in chain(plan):
        if isinstance(op, (Union, Zip, Join)):
            branches = [_plan_chain(branch, limits, physical) for branch in op.inputs]
            if isinstance(op, Union):
                add(UnionOperator(len(branches)), branches)
            elif isinstance(op, Join):
                assert op.spec is not None
                add(JoinOperator(op.name, op.spec), branches)
            else:
                add(ZipOperator(len(branches), max_in_flight), branches)
        elif isinstance(op, Read):
            add(InputBuffer("Input", op.read_tasks))
            check_feasible(op.remote_args, op.name, limits.totals)
            bound = min(max_in_flight, op.max_tasks or max_in_flight)
            transform = ChainTransform([])
            add(MapOperator(op.name, transform, bound, None, startup_tasks, op.remote_args))
        elif isinstance(op, InputData):
            add(InputBuffer(op.name, op.bundles))
        elif isinstance(op, FusedMap):
            if op.read is not None:
                add(InputBuffer("Input", op.read.read_tasks))
            stages = [(stage.name, stage.transform) for stage in op.stages]
            transform = ChainTransform(stages)
            check_feasible(op.remote_args, op.name, limits.totals)
            cap = op.read.max_tasks if op.read is not None else None
            bound = min(max_in_flight, cap or max_in_flight)
            add(MapOperator(op.name, transform, bound, None, startup_tasks, op.remote_args))
        elif isinstance(op, MapOp):
            bound = min(max_in_flight, op.max_tasks or max_in_flight)
            transform = ChainTransform([(op.name, op.transform)])
            check_feasible(op.remote_args, op.name, limits.totals)
            pool = None
            if op.actor_pool is not None:
                cpus = cluster_cpus(limits.totals)
                pool = pool_size(op.actor_pool, op.remote_args, op.name, cpus, limits.task_cpus)
            add(MapOperator(op.name, transform, bound, pool, startup_tasks, op.remote_args))
        elif isinstance(op, Limit):
            add(LimitOperator(op.limit))
        elif isinstance(op, AllToAll):
            kind = registry.get(op.kind)
            stream = kind.stream(op.params) if kind.stream is not None else None
            add(
                AllToAllOperator(
                    op.name, kind.exchange, op.params, limits.startup_tasks, stream=stream
                )
            )
        else:
            raise TypeError(f"no physical operator for logical operator {op.name}")
    assert previous is not None
    return previous


class StreamingExecutor:
    """Runs physical operators as a pipeline and yields the last one's blocks in order."""

    def __init__(self, plan: LogicalOperator, context: DataContext | None = None) -> None:
        self.optimized = optimize(plan)
        self._context = context or DataContext.get_current()
        totals = cluster_totals()
        cpus = cluster_cpus(totals)
        self.operators = plan_physical(
            self.optimized,
            self._context.in_flight_bound(cpus),
            self._context.startup_tasks(cpus),
            totals,
        )
        for index, op in enumerate(self.operators):
            upstream = op.input_ops or self.operators[index - 1 : index]
            if upstream and all(isinstance(up, (InputBuffer, AllToAllOperator)) for up in upstream):
                op.input_bytes_counted = False  # those blocks are held whatever the pipeline does
        self.started = time.perf_counter()
        self.finished: float | None = None
        # Set when the execution starts: the byte budget and what the pipeline held.
        self.memory: MemoryBudget | None = None
        self._cancelled = threading.Event()

    def run(self) -> Generator[RefBundle, None, None]:
        ops = self.operators
        self.started = time.perf_counter()
        memory = self.memory = MemoryBudget(self._context.memory_limit())
        for op in ops:
            op.launch_gate = partial(self._may_launch, memory)
        shown = [op for op in ops if not isinstance(op, InputBuffer)]
        bars = open_progress_bars(shown, self._context.enable_progress_bars, sys.stderr)
        try:
            while not self._cancelled.is_set():
                self._move_outputs()
                last = ops[-1]
                while last.has_output():
                    yield last.take_output()
                if last.done():
                    self.finished = time.perf_counter()
                    return
                # Downstream first: freed bytes go to the work that drains the pipeline.
                for op in reversed(ops):
                    op.dispatch()
                memory.observe(ops)
                _update(bars)
                self._wait_for_work()
                memory.observe(ops)
        finally:
            if bars is not None:
                bars.close()
            for op in ops:
                op.shutdown()

    def cancel(self) -> None:
        """Stop launching work; ``run`` returns within a poll interval (any thread may call)."""
        self._cancelled.set()

    def _may_launch(self, memory: MemoryBudget, estimate: int) -> bool:
        memory.observe(self.operators)
        if memory.fits(estimate):
            return True
        # Over the budget, work starts only when nothing runs, so the pipeline never stalls.
        return not any(op.pending() for op in self.operators)

    def _move_outputs(self) -> None:
        for downstream in self.operators:
            for index, upstream in enumerate(downstream.input_ops):
                while upstream.has_output() and downstream.accepts_input_from(index):
                    downstream.add_input_from(upstream.take_output(), index)
                if upstream.done():
                    downstream.input_done(index)
            if isinstance(downstream, LimitOperator) and downstream.reached():
                for earlier in _upstream_of(downstream):
                    earlier.stop()

    def _wait_for_work(self) -> None:
        owners = {ref: op for op in self.operators for ref in op.pending()}
        if not owners:
            return
        ready, rest = nebula.wait(list(owners), num_returns=1, timeout=_POLL_S)
        if rest:
            more, _ = nebula.wait(rest, num_returns=len(rest), timeout=0)
            ready = ready + more
        for ref in ready:
            owners[ref].on_ready(ref)

    def stats_text(self) -> str:
        """Per operator: tasks, blocks, rows, output bytes, task and wall time, peak bytes
        held; then the dataset's totals and its memory budget."""
        end = self.finished or time.perf_counter()
        lines = []
        shown = [op for op in self.operators if not isinstance(op, InputBuffer)]
        for op in shown:
            stats = op.stats
            wall = (stats.finished or end) - (stats.started or self.started)
            mean = stats.task_seconds / stats.blocks if stats.blocks else 0.0
            lines.append(
                f"Operator {self.operators.index(op)} {op.name}: {stats.tasks} tasks, "
                f"{stats.blocks} blocks, {stats.rows} rows, "
                f"{format_bytes(stats.output_bytes)} output; task time "
                f"{stats.task_seconds:.3f}s total, {mean:.3f}s mean, "
                f"{stats.task_seconds_max:.3f}s max per block; wall time {wall:.3f}s; "
                f"peak held {format_bytes(stats.peak_bytes_held)}"
            )
        output = shown[-1].stats if shown else None
        total = (
            f"Dataset total: {sum(op.stats.tasks for op in shown)} tasks, "
            f"{output.blocks if output else 0} blocks, {output.rows if output else 0} rows, "
            f"{format_bytes(output.output_bytes if output else 0)} output; task time "
            f"{sum(op.stats.task_seconds for op in shown):.3f}s; "
            f"wall time {end - self.started:.3f}s"
        )
        if self.memory is not None:
            total += (
                f"; peak held {format_bytes(self.memory.peak)} of a "
                f"{format_bytes(self.memory.limit)} budget"
            )
        lines.append(total)
        return "\n".join(lines)


def _upstream_of(op: PhysicalOperator) -> list[PhysicalOperator]:
    """Every operator whose outputs reach ``op``."""
    found: list[PhysicalOperator] = []
    stack = list(op.input_ops)
    while stack:
        current = stack.pop()
        if all(current is not seen for seen in found):
            found.append(current)
            stack.extend(current.input_ops)
    return found


# How long the executor waits for work before looking again (for a cancel, the progress bars).
_POLL_S = 0.25


def _update(bars: ProgressBars | None) -> None:
    if bars is not None:
        bars.update()


def prefetch_blocks(executor: StreamingExecutor, depth: int) -> Iterator[Block]:
    """The executor's blocks, run and fetched on a background thread up to ``depth`` ahead.

    The pipeline keeps computing while the consumer works on a batch; closing this iterator
    cancels the execution and waits for the thread to finish.
    """
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        bundles = executor.run()
        try:
            for bundle in bundles:
                if not put(("block", nebula.get(bundle.ref))):
                    return
        except BaseException as exc:
            put(("error", exc))
            return
        finally:
            bundles.close()
        put(("done", None))

    thread = threading.Thread(target=produce, name="nebula-data-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        executor.cancel()
        thread.join()
