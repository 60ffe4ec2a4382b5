"""Physical operators: how each step runs, as Nebula tasks or actors over block references.

Every operator is a small state machine driven by the streaming executor on the driver's
thread: it takes inputs, submits work while it has room (``max_in_flight``), is told when a
submitted piece of work is ready, and hands out its outputs in order.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from nebula.data._blocks import Block, BlockMetadata, DeferredBundle, PendingBundle, RefBundle
from nebula.data._deferred import DeferredBlock
from nebula.data._logical import ReadTask
from nebula.data._registries import ExchangeStream
from nebula.data._transforms import (
    BlockTransform,
    ChainTransform,
    SliceTransform,
    TaskContext,
    add_note,
)

import nebula


def run_transform(
    item: Block | ReadTask, transform: BlockTransform, task_index: int = 0
) -> tuple[Block, BlockMetadata]:
    start = time.perf_counter()
    transform.setup()
    block: Block | DeferredBlock | None = None
    if isinstance(item, ReadTask) and isinstance(transform, ChainTransform) and transform.stages:
        # The stages may read only some of the columns: decode each on its first use.
        block = item.open_deferred()
    if block is None:
        block = item() if isinstance(item, ReadTask) else item
    try:
        out = transform.apply(block, TaskContext(task_index))
    finally:
        if isinstance(block, DeferredBlock):
            block.close()
    return out, BlockMetadata.of(out, time.perf_counter() - start)


@nebula.remote(num_returns=2)
def map_task(
    item: Block | ReadTask, transform: BlockTransform, task_index: int = 0
) -> tuple[Block, BlockMetadata]:
    return run_transform(item, transform, task_index)


@nebula.remote
class MapWorker:
    """An actor running one transform; a callable class inside it is built once, here."""

    def __init__(self, transform: BlockTransform) -> None:
        self._transform = transform
        transform.setup()

    def ready(self) -> bool:
        return True

    @nebula.method(num_returns=2)
    def run(self, item: Block | ReadTask, task_index: int = 0) -> tuple[Block, BlockMetadata]:
        start = time.perf_counter()
        block = item() if isinstance(item, ReadTask) else item
        out = self._transform.apply(block, TaskContext(task_index))
        return out, BlockMetadata.of(out, time.perf_counter() - start)


@dataclass
class OperatorStats:
    tasks: int = 0
    blocks: int = 0
    rows: int = 0
    output_bytes: int = 0
    task_seconds: float = 0.0
    task_seconds_max: float = 0.0
    peak_bytes_held: int = 0
    started: float | None = None
    finished: float | None = None

    def record(self, meta: BlockMetadata) -> None:
        self.blocks += 1
        self.rows += meta.num_rows
        self.output_bytes += meta.size_bytes
        self.task_seconds += meta.exec_seconds
        self.task_seconds_max = max(self.task_seconds_max, meta.exec_seconds)

    def mean_output_bytes(self) -> int | None:
        return self.output_bytes // self.blocks if self.blocks else None


Input: TypeAlias = RefBundle | ReadTask
# Asked before each launch with the bytes the new work is expected to output.
LaunchGate = Callable[[int], bool]


def _launch_always(estimate: int) -> bool:
    return True


def bundle_bytes(item: Any) -> int:
    """The size of a block passed along as a RefBundle; 0 for a read task."""
    return item.meta.size_bytes if isinstance(item, RefBundle) else 0


class PhysicalOperator:
    """One stage of the streaming pipeline.

    ``input_ops`` are the operators whose outputs flow into this one (set by the planner;
    several for a union or zip); the executor hands over input ``index``'s outputs with
    ``add_input_from`` and calls ``input_done(index)`` once that input has finished.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = OperatorStats()
        self.inputs_closed = False
        self._outputs: deque[Any] = deque()
        self.input_ops: list[PhysicalOperator] = []
        self._inputs_finished: set[int] = set()
        # Set by the executor: the memory budget's say on each new launch.
        self.launch_gate: LaunchGate = _launch_always
        # False when the inputs are blocks held whatever the pipeline does: a materialized
        # dataset's, or those an all-to-all exchange produced all at once.
        self.input_bytes_counted = True

    def bytes_held(self) -> int:
        """Object store bytes this operator holds for the pipeline, estimates included."""
        return sum(bundle_bytes(item) for item in self._outputs)

    def accepts_input(self) -> bool:
        return True

    def add_input(self, item: Input) -> None:
        raise NotImplementedError(f"{self.name} takes no input")

    def inputs_done(self) -> None:
        self.inputs_closed = True

    def accepts_input_from(self, index: int) -> bool:
        return self.accepts_input()

    def add_input_from(self, item: Input, index: int) -> None:
        self.add_input(item)

    def input_done(self, index: int) -> None:
        """Input ``index`` sends nothing more; ``inputs_done`` follows once all inputs have."""
        self._inputs_finished.add(index)
        if len(self._inputs_finished) >= len(self.input_ops) and not self.inputs_closed:
            self.inputs_done()

    def dispatch(self) -> None:
        """Submit whatever work there is room for."""

    def pending(self) -> list[Any]:
        """References whose readiness this operator waits on."""
        return []

    def on_ready(self, ref: Any) -> None:
        raise NotImplementedError

    def has_output(self) -> bool:
        return bool(self._outputs)

    def take_output(self) -> Any:
        return self._outputs.popleft()

    def outputs_to_come(self) -> int | None:
        """How many more outputs this operator expects to hand on, None when unknown."""
        return None

    def _inputs_to_come(self) -> int | None:
        """How many more inputs the operators upstream expect to hand this one."""
        counts = [op.outputs_to_come() for op in self.input_ops]
        return None if not counts or None in counts else sum(c for c in counts if c is not None)

    def done(self) -> bool:
        """No output will come any more (and none is waiting to be taken)."""
        raise NotImplementedError

    def _record_result(
        self,
        results: dict[int, RefBundle],
        seq: int,
        block_ref: Any,
        meta_ref: Any,
        next_emit: int,
    ) -> int:
        """Record work ``seq``'s result and hand on every result next in submission order.

        Returns the number of the next result to hand on.
        """
        try:
            meta = nebula.get(meta_ref)
        except Exception as exc:
            add_note(exc, f"(while executing nebula.data operator {self.name})")
            raise
        self.stats.record(meta)
        results[seq] = RefBundle(block_ref, meta)
        while next_emit in results:
            self._outputs.append(results.pop(next_emit))
            next_emit += 1
        return next_emit

    def stop(self) -> None:
        """Downstream needs nothing more: drop queued work and results."""
        self.inputs_closed = True
        self._outputs.clear()

    def shutdown(self) -> None:
        """Release what the operator holds (actors); called once execution ends."""


class InputBuffer(PhysicalOperator):
    """Emits the read tasks or blocks a plan starts from."""

    def __init__(self, name: str, items: Sequence[Input]) -> None:
        super().__init__(name)
        self._outputs.extend(items)
        self.inputs_closed = True

    def bytes_held(self) -> int:
        return 0  # read tasks, or blocks that existed before the execution

    def outputs_to_come(self) -> int | None:
        return len(self._outputs)

    def done(self) -> bool:
        return not self._outputs


class MapOperator(PhysicalOperator):
    """Runs a transform on each input, as tasks or on a pool of actors.

    At most ``max_in_flight`` inputs are being processed or waiting to be handed on; that
    bound, and the executor's byte budget asked through ``launch_gate`` before each launch,
    are the back-pressure that keeps a long pipeline from materializing. Until its first
    output tells how big they are, the operator runs at most ``startup_tasks`` tasks (one
    per CPU, so that every worker starts at once).
    """

    def __init__(
        self,
        name: str,
        transform: BlockTransform,
        max_in_flight: int,
        actor_pool_size: int | None = None,
        startup_tasks: int = 1,
        remote_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        self._transform = transform
        self._remote_args = dict(remote_args or {})
        self._task: Any = map_task.options(**self._remote_args) if remote_args else map_task
        self._max_in_flight = max(1, max_in_flight)
        self._startup_tasks = max(1, startup_tasks)
        self._queue: deque[Input] = deque()
        # meta ref -> seq, block ref, actor, bytes of the input
        self._in_flight: dict[Any, tuple[int, Any, Any, int]] = {}
        self._results: dict[int, RefBundle] = {}
        self._next_submit = 0
        self._next_emit = 0
        self._actors: list[Any] = []
        self._idle: list[Any] = []
        self._pool_size = actor_pool_size
        if actor_pool_size is not None:
            self._max_in_flight = min(self._max_in_flight, actor_pool_size)

    def _start_actors(self) -> None:
        """Start the pool on first use, so planning alone (``explain``) starts nothing."""
        if self._pool_size is None or self._actors:
            return
        worker: Any = MapWorker  # the decorator made it an ActorClass
        worker = worker.options(**self._remote_args)
        self._actors = [worker.remote(self._transform) for _ in range(self._pool_size)]
        self._idle = list(self._actors)

    def accepts_input(self) -> bool:
        return len(self._queue) < self._max_in_flight

    def add_input(self, item: Input) -> None:
        self._queue.append(item)

    def _busy(self) -> int:
        return len(self._in_flight) + len(self._results) + len(self._outputs)

    def _output_estimate(self, input_bytes: int) -> int:
        """Expected output bytes of one task: the mean so far, else the input's size."""
        mean = self.stats.mean_output_bytes()
        return input_bytes if mean is None else mean

    def bytes_held(self) -> int:
        held = super().bytes_held()
        held += sum(bundle.meta.size_bytes for bundle in self._results.values())
        held += sum(self._output_estimate(entry[3]) for entry in self._in_flight.values())
        if self.input_bytes_counted:
            held += sum(bundle_bytes(item) for item in self._queue)
            held += sum(entry[3] for entry in self._in_flight.values())
        return held

    def dispatch(self) -> None:
        if self._queue:
            self._start_actors()
        while self._queue and self._busy() < self._max_in_flight:
            if self._actors and not self._idle:
                return
            if self.stats.blocks == 0 and len(self._in_flight) >= self._startup_tasks:
                return  # output size unknown yet: no more than one task per CPU
            if not self.launch_gate(self._output_estimate(bundle_bytes(self._queue[0]))):
                return
            item = self._queue.popleft()
            arg = item.ref if isinstance(item, RefBundle) else item
            actor = self._idle.pop() if self._actors else None
            if actor is not None:
                block_ref, meta_ref = actor.run.remote(arg, self._next_submit)
            else:
                block_ref, meta_ref = self._task.remote(arg, self._transform, self._next_submit)
            self._in_flight[meta_ref] = (self._next_submit, block_ref, actor, bundle_bytes(item))
            self._next_submit += 1
            self.stats.tasks += 1
            if self.stats.started is None:
                self.stats.started = time.perf_counter()

    def outputs_to_come(self) -> int | None:
        # One output per input (a read task or a block).
        upstream = self._inputs_to_come()
        if upstream is None:
            return None
        mine = len(self._queue) + len(self._in_flight) + len(self._results) + len(self._outputs)
        return mine + upstream

    def pending(self) -> list[Any]:
        return list(self._in_flight)

    def on_ready(self, ref: Any) -> None:
        seq, block_ref, actor, _ = self._in_flight.pop(ref)
        if actor is not None:
            self._idle.append(actor)
        self._next_emit = self._record_result(self._results, seq, block_ref, ref, self._next_emit)

    def done(self) -> bool:
        finished = self.inputs_closed and not (self._queue or self._in_flight or self._results)
        if finished and not self._outputs and self.stats.finished is None:
            self.stats.finished = time.perf_counter()
        return finished and not self._outputs

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self._in_flight.clear()
        self._results.clear()

    def shutdown(self) -> None:
        for actor in self._actors:
            nebula.kill(actor)
        self._actors, self._idle = [], []


class LimitOperator(PhysicalOperator):
    """Passes blocks until ``limit`` rows went by, slicing the last one in a small task."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Limit[limit={limit}]")
        self._remaining = limit
        self._slicing: dict[Any, Any] = {}

    def add_input(self, item: Input) -> None:
        assert isinstance(item, RefBundle)
        if self._remaining <= 0:
            return
        if item.meta.num_rows <= self._remaining:
            self._remaining -= item.meta.num_rows
            self.stats.record(item.meta)
            self._outputs.append(item)
            return
        block_ref, meta_ref = map_task.remote(item.ref, SliceTransform(self._remaining))
        self._slicing[meta_ref] = block_ref
        self._remaining = 0
        self.stats.tasks += 1

    def pending(self) -> list[Any]:
        return list(self._slicing)

    def on_ready(self, ref: Any) -> None:
        meta = nebula.get(ref)
        self.stats.record(meta)
        self._outputs.append(RefBundle(self._slicing.pop(ref), meta))

    def reached(self) -> bool:
        return self._remaining <= 0

    def done(self) -> bool:
        finished = self.inputs_closed or self._remaining <= 0
        return finished and not self._slicing and not self._outputs


Exchange = Callable[[list[RefBundle], dict[str, Any]], list[RefBundle]]


class AllToAllOperator(PhysicalOperator):
    """Collects every input block, then runs an exchange (shuffle, sort, aggregate) at once."""

    def __init__(
        self,
        name: str,
        exchange: Exchange,
        params: dict[str, Any],
        max_in_flight: int = 2,
        stream: ExchangeStream | None = None,
    ) -> None:
        super().__init__(name)
        self._exchange = exchange
        self._params = params
        self._collected: list[RefBundle] = []
        # Takes the inputs as they arrive instead of ``_collected`` (see ExchangeStream).
        self._stream = stream
        self._ran = False
        # Outputs submitted only as downstream takes them: (position, how to submit it).
        self._deferred: deque[tuple[int, DeferredBundle]] = deque()
        self._max_in_flight = max(1, max_in_flight)
        # meta ref -> (position among the exchange's outputs, block ref)
        self._in_flight: dict[Any, tuple[int, Any]] = {}
        self._ready: dict[int, RefBundle | None] = {}
        self._next_emit = 0

    def add_input(self, item: Input) -> None:
        assert isinstance(item, RefBundle)
        if self._stream is None:
            self._collected.append(item)
            return
        try:
            self._stream.add(item, self._inputs_to_come())
        except Exception as exc:
            add_note(exc, f"(while executing nebula.data operator {self.name})")
            raise

    def bytes_held(self) -> int:
        # Every block passes through here at once: the budget cannot shrink that, and
        # counting it would only slow the operators around the exchange to a crawl.
        return 0

    def inputs_done(self) -> None:
        super().inputs_done()
        if self._ran:
            return
        self._ran = True
        self.stats.started = time.perf_counter()
        try:
            if self._stream is not None:
                outputs = self._stream.finish()
            else:
                outputs = self._exchange(self._collected, self._params)
        except Exception as exc:
            add_note(exc, f"(while executing nebula.data operator {self.name})")
            raise
        self._collected = []
        self.stats.tasks = len(outputs)
        for seq, output in enumerate(outputs):
            if isinstance(output, DeferredBundle):
                self._deferred.append((seq, output))
            elif isinstance(output, PendingBundle):
                self._in_flight[output.meta_ref] = (seq, output.ref)
            else:
                self._ready[seq] = output
                self.stats.record(output.meta)
        self.dispatch()
        self._emit_ready()

    def dispatch(self) -> None:
        busy = len(self._in_flight) + len(self._ready) + len(self._outputs)
        while self._deferred and busy < self._max_in_flight:
            seq, deferred = self._deferred.popleft()
            try:
                pending = deferred.submit()
            except Exception as exc:
                add_note(exc, f"(while executing nebula.data operator {self.name})")
                raise
            self._in_flight[pending.meta_ref] = (seq, pending.ref)
            busy += 1

    def _emit_ready(self) -> None:
        while self._next_emit in self._ready:
            bundle = self._ready.pop(self._next_emit)
            if bundle is not None:
                self._outputs.append(bundle)
            self._next_emit += 1
        idle = not (self._in_flight or self._ready or self._deferred)
        if idle and self.stats.finished is None:
            self.stats.finished = time.perf_counter()

    def pending(self) -> list[Any]:
        return list(self._in_flight)

    def on_ready(self, ref: Any) -> None:
        seq, block_ref = self._in_flight.pop(ref)
        try:
            meta = nebula.get(ref)
        except Exception as exc:
            add_note(exc, f"(while executing nebula.data operator {self.name})")
            raise
        self.stats.record(meta)
        # An empty partition of a sort or shuffle goes no further.
        self._ready[seq] = RefBundle(block_ref, meta) if meta.num_rows else None
        self._emit_ready()

    def stop(self) -> None:
        super().stop()
        self._in_flight.clear()
        self._ready.clear()
        self._deferred.clear()

    def done(self) -> bool:
        return self._ran and not (self._outputs or self._in_flight or self._ready or self._deferred)
