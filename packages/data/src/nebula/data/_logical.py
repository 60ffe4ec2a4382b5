"""Logical operators: what a Dataset will compute, as a tree built by its methods.

Most operators have one input (``input``) and plans are chains of them; ``Union`` and
``Zip`` have several (``inputs``), each the last operator of its own chain. Nothing here
runs anything. ``plan_string`` prints a plan the way ``print(ds)`` shows it: a chain reads
downwards on one level, and the inputs of an operator with several are indented below it::

    Project                                 Union
    +- MapBatches(add_column)               +- MapBatches(add_one)
    +- Dataset(schema={id: int64})          |  +- Dataset(schema={id: int64})
                                            +- Dataset(schema={id: int64})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from nebula.data._blocks import Block, RefBundle, schema_string
from nebula.data._deferred import DeferredBlock
from nebula.data._transforms import BlockTransform


@dataclass(frozen=True)
class ReadTask:
    """One unit of reading, run inside a task: ``fn(*args)`` returns a block.

    ``deferred(*args)``, where given, returns the same block as a :class:`DeferredBlock`
    whose columns are decoded on use (or None where it cannot).
    """

    fn: Callable[..., Block]
    args: tuple[Any, ...] = ()
    deferred: Callable[..., DeferredBlock | None] | None = None

    def __call__(self) -> Block:
        return self.fn(*self.args)

    def open_deferred(self) -> DeferredBlock | None:
        return None if self.deferred is None else self.deferred(*self.args)


@dataclass(frozen=True, eq=False)
class LogicalOperator:
    """One step of a plan; ``input`` is the step before it (None for a source).

    An operator with several inputs (a :class:`NAryOperator`) has ``input`` None and lists
    them in ``inputs``; code that walks a plan uses ``inputs``.
    """

    input: LogicalOperator | None

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def inputs(self) -> tuple[LogicalOperator, ...]:
        return () if self.input is None else (self.input,)

    def with_inputs(self, inputs: Sequence[LogicalOperator]) -> LogicalOperator:
        """A copy of this operator reading from ``inputs`` instead."""
        return dataclasses.replace(self, input=inputs[0] if inputs else None)


@dataclass(frozen=True, eq=False)
class Read(LogicalOperator):
    label: str  # ReadRange, ReadParquet, ...
    read_tasks: Sequence[ReadTask]
    schema: pa.Schema | None = None
    num_rows: int | None = None
    # What each read task asks for (num_cpus=, ...), and how many may run at once.
    remote_args: Mapping[str, Any] = field(default_factory=dict)
    max_tasks: int | None = None

    @property
    def name(self) -> str:
        return self.label


@dataclass(frozen=True, eq=False)
class InputData(LogicalOperator):
    """Blocks already in the object store (from_items, from_pandas, a materialized dataset)."""

    label: str
    bundles: Sequence[RefBundle]

    @property
    def name(self) -> str:
        return self.label

    @property
    def schema(self) -> pa.Schema | None:
        return self.bundles[0].meta.schema if self.bundles else None

    @property
    def num_rows(self) -> int:
        return sum(bundle.meta.num_rows for bundle in self.bundles)


@dataclass(frozen=True, eq=False)
class MapOp(LogicalOperator):
    """A block-by-block transform: Map, MapBatches, FlatMap, Filter, Project, Write.

    ``one_to_one`` says every input row gives exactly one output row, which lets a limit be
    pushed below it. ``actor_pool`` set ((min, max) actors) means the transform runs on a
    pool of actors; ``remote_args`` (``num_cpus=``, ...) go to each of its tasks or actors.
    """

    kind: str
    transform: BlockTransform
    label: str | None = None
    one_to_one: bool = False
    actor_pool: tuple[int, int | None] | None = None
    max_tasks: int | None = None
    remote_args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}({self.label})" if self.label else self.kind


@dataclass(frozen=True, eq=False)
class FusedMap(LogicalOperator):
    """Map operators (optionally with the read feeding them) fused into one task each block.

    The stages all have the same ``remote_args``, which the fused tasks run with.
    """

    stages: Sequence[MapOp]
    read: Read | None = None

    @property
    def remote_args(self) -> Mapping[str, Any]:
        return self.stages[0].remote_args

    @property
    def name(self) -> str:
        names = [stage.name for stage in self.stages]
        return "->".join(([self.read.name] if self.read else []) + names)


@dataclass(frozen=True, eq=False)
class Limit(LogicalOperator):
    limit: int

    @property
    def name(self) -> str:
        return f"Limit[limit={self.limit}]"


@dataclass(frozen=True, eq=False)
class AllToAll(LogicalOperator):
    """An operator that needs all its input first: Repartition, RandomShuffle, Sort, Aggregate."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.kind


@dataclass(frozen=True, eq=False)
class NAryOperator(LogicalOperator):
    """An operator reading several plans; ``input`` is None, ``branches`` are the inputs."""

    branches: tuple[LogicalOperator, ...] = ()

    @property
    def inputs(self) -> tuple[LogicalOperator, ...]:
        return self.branches

    def with_inputs(self, inputs: Sequence[LogicalOperator]) -> LogicalOperator:
        return dataclasses.replace(self, branches=tuple(inputs))


@dataclass(frozen=True, eq=False)
class Union(NAryOperator):
    """The rows of every input, input after input, each in its own order."""


@dataclass(frozen=True, eq=False)
class Zip(NAryOperator):
    """Row-aligned inputs side by side: the columns of each, in input order."""


def chain(op: LogicalOperator) -> list[LogicalOperator]:
    """The run of single-input operators ending at ``op``, first first.

    The first operator is a source or an operator with several inputs (whose own inputs
    are chains of their own).
    """
    ops = []
    current: LogicalOperator | None = op
    while current is not None:
        ops.append(current)
        current = current.input
    return ops[::-1]


_SCHEMA_KEEPING = ("Repartition", "RandomShuffle", "RandomizeBlockOrder", "Sort")


def known_schema(op: LogicalOperator) -> pa.Schema | None:
    """The output schema when it is known without running anything, else None."""
    if isinstance(op, (Read, InputData)):
        return op.schema
    if isinstance(op, Limit) or (isinstance(op, AllToAll) and op.kind in _SCHEMA_KEEPING):
        return known_schema(op.inputs[0])
    if isinstance(op, Union):
        return known_schema(op.inputs[0])
    return None


def plan_string(op: LogicalOperator, *, show_source_as_dataset: bool = True) -> str:
    """The plan as a tree, last operator on top, each input on a ``+- `` line below it.

    A chain stays on one level; the inputs of an operator with several are indented under
    it, a ``|`` joining the lines of an input to the next input's.
    """
    return "\n".join(_tree_lines(op, show_source_as_dataset))


def _label(op: LogicalOperator, show_source_as_dataset: bool) -> str:
    if show_source_as_dataset and not op.inputs:
        schema = op.schema if isinstance(op, (Read, InputData)) else None
        return f"Dataset(schema={schema_string(schema)})"
    return op.name


def _tree_lines(op: LogicalOperator, show_source_as_dataset: bool) -> list[str]:
    ops = chain(op)[::-1]
    lines = [_label(ops[0], show_source_as_dataset)]
    lines += [f"+- {_label(o, show_source_as_dataset)}" for o in ops[1:]]
    bottom = ops[-1]
    if isinstance(bottom, NAryOperator):
        indent = "" if len(ops) == 1 else "   "
        for index, branch in enumerate(bottom.inputs):
            sub = _tree_lines(branch, show_source_as_dataset)
            joiner = "   " if index == len(bottom.inputs) - 1 else "|  "
            lines.append(f"{indent}+- {sub[0]}")
            lines += [f"{indent}{joiner}{line}" for line in sub[1:]]
    return lines
