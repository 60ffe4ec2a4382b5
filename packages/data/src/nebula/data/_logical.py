"""Logical operators: what a Dataset will compute, as a chain built by its methods.

Nothing here runs anything. ``plan_string`` prints a chain the way ``print(ds)`` shows it::

    Project
    +- MapBatches(add_column)
    +- Dataset(schema={id: int64})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from nebula.data._blocks import Block, RefBundle, schema_string
from nebula.data._transforms import BlockTransform


@dataclass(frozen=True)
class ReadTask:
    """One unit of reading, run inside a task: ``fn(*args)`` returns a block."""

    fn: Callable[..., Block]
    args: tuple[Any, ...] = ()

    def __call__(self) -> Block:
        return self.fn(*self.args)


@dataclass(frozen=True, eq=False)
class LogicalOperator:
    """One step of a plan; ``input`` is the step before it (None for a source)."""

    input: LogicalOperator | None

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, eq=False)
class Read(LogicalOperator):
    label: str  # ReadRange, ReadParquet, ...
    read_tasks: Sequence[ReadTask]
    schema: pa.Schema | None = None
    num_rows: int | None = None

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
    pushed below it. ``actor_pool_size`` set means the transform runs on that many actors.
    """

    kind: str
    transform: BlockTransform
    label: str | None = None
    one_to_one: bool = False
    actor_pool_size: int | None = None
    max_tasks: int | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}({self.label})" if self.label else self.kind


@dataclass(frozen=True, eq=False)
class FusedMap(LogicalOperator):
    """Map operators (optionally with the read feeding them) fused into one task each block."""

    stages: Sequence[MapOp]
    read: Read | None = None

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


def chain(op: LogicalOperator) -> list[LogicalOperator]:
    """The plan as a list, source first."""
    ops = []
    current: LogicalOperator | None = op
    while current is not None:
        ops.append(current)
        current = current.input
    return ops[::-1]


def source_schema(op: LogicalOperator) -> pa.Schema | None:
    source = chain(op)[0]
    return source.schema if isinstance(source, (Read, InputData)) else None


def plan_string(op: LogicalOperator, *, show_source_as_dataset: bool = True) -> str:
    """The plan as a tree, last operator on top, each input on a ``+- `` line below it."""
    ops = chain(op)[::-1]
    names = [o.name for o in ops]
    if show_source_as_dataset:
        names[-1] = f"Dataset(schema={schema_string(source_schema(op))})"
    return "\n".join([names[0]] + [f"+- {name}" for name in names[1:]])
