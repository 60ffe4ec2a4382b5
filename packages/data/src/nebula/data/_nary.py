"""Physical operators with several inputs: union (one input after another) and zip.

Both stream: a union passes on the blocks of its first input, then of its second, ...,
holding at most one block from each input it is not passing on yet (enough to check its
schema early); a zip slices the inputs' blocks into row-aligned pieces as they arrive and
joins each set of pieces in a task.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Any

import pyarrow as pa
from nebula.data._blocks import Block, BlockMetadata, RefBundle
from nebula.data._logical import LogicalOperator, known_schema
from nebula.data._physical import Input, PhysicalOperator, bundle_bytes

import nebula


def schema_difference(first: pa.Schema, other: pa.Schema) -> str | None:
    """How ``other``'s columns differ from ``first``'s (names or types), or None if they match.

    Column order does not matter, and a column of nulls matches any type.
    """
    left = {field.name: field.type for field in first}
    right = {field.name: field.type for field in other}
    problems = []
    missing = [name for name in left if name not in right]
    extra = [name for name in right if name not in left]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"extra columns {extra}")
    for name, kind in left.items():
        other_kind = right.get(name, kind)
        if other_kind != kind and not (pa.types.is_null(kind) or pa.types.is_null(other_kind)):
            problems.append(f"column {name!r} is {other_kind} instead of {kind}")
    return "; ".join(problems) if problems else None


def union_schema_error(
    first: int, other: int, first_schema: pa.Schema, other_schema: pa.Schema, diff: str
) -> ValueError:
    return ValueError(
        f"union needs datasets with the same columns, but dataset {other} differs from "
        f"dataset {first}: {diff} (dataset {first} has {_columns(first_schema)}, dataset "
        f"{other} has {_columns(other_schema)}). Select, drop or cast columns so that they "
        "match before the union."
    )


def _columns(schema: pa.Schema) -> str:
    return "{" + ", ".join(f"{field.name}: {field.type}" for field in schema) + "}"


class UnionOperator(PhysicalOperator):
    """Passes on every block of input 0, then of input 1, ... in order.

    It takes one block ahead from each later input so that a schema that does not match
    input 0's is reported as soon as both are seen, not after input 0 has streamed by.
    """

    def __init__(self, num_inputs: int) -> None:
        super().__init__("Union")
        self._current = 0
        self._waiting: list[deque[RefBundle]] = [deque() for _ in range(num_inputs)]
        self._schemas: dict[int, pa.Schema] = {}

    def accepts_input_from(self, index: int) -> bool:
        return index == self._current or not self._waiting[index]

    def add_input_from(self, item: Input, index: int) -> None:
        assert isinstance(item, RefBundle)
        self._check_schema(item, index)
        if index == self._current:
            self._pass_on(item)
        else:
            self._waiting[index].append(item)

    def _pass_on(self, bundle: RefBundle) -> None:
        if self.stats.started is None:
            self.stats.started = time.perf_counter()
        self.stats.record(bundle.meta)
        self._outputs.append(bundle)

    def _check_schema(self, bundle: RefBundle, index: int) -> None:
        if bundle.meta.num_rows == 0 or index in self._schemas:
            return
        self._schemas[index] = bundle.meta.schema
        for seen in sorted(self._schemas):
            if seen == index:
                continue
            first, other = sorted((seen, index))
            first_schema, other_schema = self._schemas[first], self._schemas[other]
            diff = schema_difference(first_schema, other_schema)
            if diff is not None:
                raise union_schema_error(first, other, first_schema, other_schema, diff)

    def input_done(self, index: int) -> None:
        super().input_done(index)
        while self._current in self._inputs_finished and self._current + 1 < len(self._waiting):
            self._current += 1
            while self._waiting[self._current]:
                self._pass_on(self._waiting[self._current].popleft())

    def bytes_held(self) -> int:
        waiting = sum(bundle_bytes(b) for queue in self._waiting for b in queue)
        return super().bytes_held() + waiting

    def done(self) -> bool:
        finished = self.inputs_closed and not any(self._waiting) and not self._outputs
        if finished and self.stats.finished is None:
            self.stats.finished = time.perf_counter()
        return finished

    def stop(self) -> None:
        super().stop()
        for queue in self._waiting:
            queue.clear()


def zip_column_names(tables: list[Block]) -> list[str]:
    """Output names for zipping ``tables``: a name already taken gets ``_1``, ``_2``, ..."""
    names: list[str] = []
    for table in tables:
        for name in table.column_names:
            candidate, suffix = name, 1
            while candidate in names:
                candidate = f"{name}_{suffix}"
                suffix += 1
            names.append(candidate)
    return names


def zip_blocks(tables: list[Block]) -> Block:
    names = zip_column_names(tables)
    columns = [column for table in tables for column in table.columns]
    return pa.Table.from_arrays(columns, names=names)


@nebula.remote(num_returns=2)
def _zip_task(spans: list[tuple[int, int]], *blocks: Block) -> tuple[Block, BlockMetadata]:
    start = time.perf_counter()
    pieces = [block.slice(offset, length) for (offset, length), block in zip(spans, blocks)]
    out = zip_blocks(pieces)
    return out, BlockMetadata.of(out, time.perf_counter() - start)


class ZipOperator(PhysicalOperator):
    """Joins the inputs' columns row by row; inputs must have the same number of rows.

    Whenever every input has a block waiting, the next ``n`` rows of each (``n`` the fewest
    any of them has left) are joined in a task; outputs keep the input order. Inputs of
    different lengths raise a ``ValueError`` as soon as one input ends short.
    """

    def __init__(self, num_inputs: int, max_in_flight: int) -> None:
        super().__init__("Zip")
        self._max_in_flight = max(1, max_in_flight)
        # Per input: blocks not fully zipped yet, and the offset reached in the first one.
        self._queues: list[deque[RefBundle]] = [deque() for _ in range(num_inputs)]
        self._offsets = [0] * num_inputs
        self._rows_in = [0] * num_inputs
        self._in_flight: dict[Any, tuple[int, Any]] = {}  # meta ref -> seq, block ref
        self._results: dict[int, RefBundle] = {}
        self._next_submit = 0
        self._next_emit = 0

    def accepts_input_from(self, index: int) -> bool:
        return len(self._queues[index]) < self._max_in_flight

    def add_input_from(self, item: Input, index: int) -> None:
        assert isinstance(item, RefBundle)
        self._rows_in[index] += item.meta.num_rows
        if item.meta.num_rows:
            self._queues[index].append(item)

    def input_done(self, index: int) -> None:
        super().input_done(index)
        self._check_lengths()

    def _check_lengths(self) -> None:
        # Every input has given the zip the same number of rows so far: one that ended with
        # none left while another still has some was shorter.
        for short in sorted(self._inputs_finished):
            if self._queues[short]:
                continue
            for other, queue in enumerate(self._queues):
                if not queue:
                    continue
                exact = "" if other in self._inputs_finished else "at least "
                raise ValueError(
                    f"zip needs datasets with the same number of rows, but dataset {short} "
                    f"has {self._rows_in[short]} rows and dataset {other} has {exact}"
                    f"{self._rows_in[other]}. Use limit() or filter() to make them match."
                )

    def dispatch(self) -> None:
        while all(self._queues) and self._busy() < self._max_in_flight:
            heads = [queue[0] for queue in self._queues]
            left = [h.meta.num_rows - off for h, off in zip(heads, self._offsets)]
            length = min(left)
            estimate = sum(h.meta.size_bytes * length // h.meta.num_rows for h in heads)
            if not self.launch_gate(estimate):
                return
            spans = [(offset, length) for offset in self._offsets]
            block_ref, meta_ref = _zip_task.remote(spans, *[h.ref for h in heads])
            self._in_flight[meta_ref] = (self._next_submit, block_ref)
            self._next_submit += 1
            self.stats.tasks += 1
            if self.stats.started is None:
                self.stats.started = time.perf_counter()
            for index, remaining in enumerate(left):
                if remaining == length:
                    self._queues[index].popleft()
                    self._offsets[index] = 0
                else:
                    self._offsets[index] += length
        self._check_lengths()

    def _busy(self) -> int:
        return len(self._in_flight) + len(self._results) + len(self._outputs)

    def pending(self) -> list[Any]:
        return list(self._in_flight)

    def on_ready(self, ref: Any) -> None:
        seq, block_ref = self._in_flight.pop(ref)
        self._next_emit = self._record_result(self._results, seq, block_ref, ref, self._next_emit)

    def bytes_held(self) -> int:
        held = super().bytes_held() + sum(b.meta.size_bytes for b in self._results.values())
        queued = sum(bundle_bytes(b) for queue in self._queues for b in queue)
        return held + (queued if self.input_bytes_counted else 0)

    def done(self) -> bool:
        idle = not (any(self._queues) or self._in_flight or self._results or self._outputs)
        finished = self.inputs_closed and idle
        if finished and self.stats.finished is None:
            self.stats.finished = time.perf_counter()
        return finished

    def stop(self) -> None:
        super().stop()
        for queue in self._queues:
            queue.clear()
        self._in_flight.clear()
        self._results.clear()


def check_union_schemas(plans: list[LogicalOperator]) -> None:
    """Raise now if schemas known without running anything already differ."""
    known = [(index, known_schema(plan)) for index, plan in enumerate(plans)]
    schemas = [(index, schema) for index, schema in known if schema is not None and len(schema)]
    for (first, first_schema), (other, other_schema) in itertools.pairwise(schemas):
        diff = schema_difference(first_schema, other_schema)
        if diff is not None:
            raise union_schema_error(first, other, first_schema, other_schema, diff)
