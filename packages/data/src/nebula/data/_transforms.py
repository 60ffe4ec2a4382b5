"""Block transforms: the picklable work a map operator runs on each block inside a task.

A transform is made once per logical operator on the driver, shipped to tasks (or actors),
``setup()`` there (which builds a callable class once), then called block by block.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from nebula.data import _blocks
from nebula.data._batching import map_numpy_batches
from nebula.data._blocks import Block
from nebula.data._deferred import DeferredBlock
from nebula.data._expressions import Expr, evaluate_column, filter_block
from nebula.data._numpy_batch import NumpyBatch


@dataclass(frozen=True)
class TaskContext:
    """What a transform may know about the task running it.

    ``task_index``: the position of the task's input among its operator's inputs (0, 1, ...),
    so a transform can name what it makes in the dataset's order (a write's file names).
    """

    task_index: int = 0


# Column names a step of a task uses; None: every column.
Columns: TypeAlias = "frozenset[str] | None"


class BlockTransform:
    """Base class: ``setup`` once where it runs, then ``apply`` (or ``__call__``) per block.

    In a task running several transforms one after the other (:class:`ChainTransform`), a
    transform may say which of its input columns it reads (``input_columns``) and may leave
    out of its output the columns no later transform reads (``apply_for``); a read before
    them then decodes only the columns used (see :mod:`nebula.data._deferred`).
    """

    def setup(self) -> None:
        """Prepare state that must live where the transform runs (e.g. a model)."""

    def __call__(self, block: Block) -> Block:
        raise NotImplementedError

    def apply(self, block: Block, context: TaskContext) -> Block:
        """Transform one block inside a task; override to use the task's context."""
        return self(block)

    def input_columns(self, wanted: Columns) -> Columns:
        """The input columns read to make the output columns ``wanted`` (None: all of
        them, which is always right)."""
        return None

    def takes_deferred(self, block: DeferredBlock) -> bool:
        """Whether ``apply_for`` takes ``block`` as it is, reading its columns on use."""
        return False

    def apply_for(
        self, block: Block | DeferredBlock, context: TaskContext, wanted: Columns
    ) -> Block:
        """``apply``, free to leave out output columns not in ``wanted`` (None: keep all)."""
        assert not isinstance(block, DeferredBlock)
        return self.apply(block, context)


def fn_label(fn: object) -> str:
    """How a UDF appears in plan names: ``MapBatches(add_one)``."""
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def is_callable_class(fn: Any) -> bool:
    """Whether a UDF is a class to build once per actor (``bool``, ``str``... are functions)."""
    return isinstance(fn, type) and fn.__module__ != "builtins"


@dataclass
class UDF:
    """A user's function, or callable class built once where it runs, with its arguments:
    ``udf(value)`` calls ``fn(value, *fn_args, **fn_kwargs)``."""

    fn: Any
    fn_args: Sequence[Any] = ()
    fn_kwargs: Mapping[str, Any] = field(default_factory=dict)
    fn_constructor_args: Sequence[Any] = ()
    fn_constructor_kwargs: Mapping[str, Any] = field(default_factory=dict)
    _callable: Any = None

    @classmethod
    def of(
        cls,
        fn: Any,
        fn_args: Sequence[Any] | None = None,
        fn_kwargs: Mapping[str, Any] | None = None,
        fn_constructor_args: Sequence[Any] | None = None,
        fn_constructor_kwargs: Mapping[str, Any] | None = None,
    ) -> UDF:
        return cls(
            fn,
            tuple(fn_args or ()),
            dict(fn_kwargs or {}),
            tuple(fn_constructor_args or ()),
            dict(fn_constructor_kwargs or {}),
        )

    def setup(self) -> None:
        if is_callable_class(self.fn):
            self._callable = self.fn(*self.fn_constructor_args, **self.fn_constructor_kwargs)
        else:
            self._callable = self.fn

    def __call__(self, value: Any) -> Any:
        if self._callable is None:
            self.setup()
        return self._callable(value, *self.fn_args, **self.fn_kwargs)


@dataclass
class RowUDFTransform(BlockTransform):
    """A UDF called on each row."""

    udf: UDF

    def setup(self) -> None:
        self.udf.setup()

    def _calls(self, block: Block) -> Iterator[Any]:
        """``udf(row)`` for each row of ``block``."""
        for row in _blocks.iter_rows(block):
            yield self.udf(row)


class MapRowsTransform(RowUDFTransform):
    def __call__(self, block: Block) -> Block:
        rows = list(self._calls(block))
        for row in rows:
            if not isinstance(row, Mapping):
                raise TypeError(
                    f"a map function must return a dict per row, got {type(row).__name__}; "
                    "use flat_map to return several rows."
                )
        return _blocks.from_rows(rows)


class FlatMapTransform(RowUDFTransform):
    def __call__(self, block: Block) -> Block:
        rows = [out for outputs in self._calls(block) for out in outputs]
        return _blocks.from_rows(rows) if rows else block.schema.empty_table()


class FilterTransform(RowUDFTransform):
    def __call__(self, block: Block) -> Block:
        keep = [bool(verdict) for verdict in self._calls(block)]
        return block.filter(pa.array(keep, type=pa.bool_())) if keep else block


@dataclass
class ExpressionFilterTransform(BlockTransform):
    """Keep the rows where an Arrow expression is true, evaluated on the whole block."""

    expr: Expr | pc.Expression

    def __call__(self, block: Block) -> Block:
        return filter_block(block, self.expr)


@dataclass
class MapBatchesTransform(BlockTransform):
    """Run ``udf`` on batches of at most ``batch_size`` rows of each block."""

    udf: UDF
    batch_size: int | None
    batch_format: str

    def setup(self) -> None:
        self.udf.setup()

    def __call__(self, block: Block) -> Block:
        return self.apply_for(block, TaskContext(), None)

    def takes_deferred(self, block: DeferredBlock) -> bool:
        size = self.batch_size
        return self.batch_format in ("default", "numpy") and (not size or block.num_rows <= size)

    def apply_for(
        self, block: Block | DeferredBlock, context: TaskContext, wanted: Columns
    ) -> Block:
        if isinstance(block, DeferredBlock):  # one batch of the whole block
            batch = NumpyBatch.of_source(block.column_names, block)
            return _blocks.compact(_blocks.from_batch(self.udf(batch), wanted))
        size = self.batch_size
        if self.batch_format in ("default", "numpy") and size and block.num_rows > size:
            return map_numpy_batches(block, self.udf, size)
        outputs = []
        for piece in _blocks.iter_slices(block, size):
            batch = _blocks.to_udf_batch(piece, self.batch_format)
            outputs.append(_blocks.from_batch(self.udf(batch), wanted))
        return _blocks.compact(_blocks.concat(outputs))


@dataclass
class AddColumnTransform(BlockTransform):
    name: str
    fn: Callable[[Any], Any]
    batch_format: str

    def __call__(self, block: Block) -> Block:
        values = self.fn(_blocks.to_udf_batch(block, self.batch_format))
        column = _blocks.from_batch({self.name: values}).column(0)
        if self.name in block.column_names:
            return block.set_column(block.column_names.index(self.name), self.name, column)
        return block.append_column(self.name, column)


@dataclass
class WithColumnTransform(BlockTransform):
    """Add (or replace) column ``name`` with an expression's values."""

    name: str
    expr: Expr | pc.Expression

    def __call__(self, block: Block) -> Block:
        column = evaluate_column(block, self.expr)
        if self.name in block.column_names:
            return block.set_column(block.column_names.index(self.name), self.name, column)
        return block.append_column(self.name, column)


@dataclass
class ProjectTransform(BlockTransform):
    """Keep ``select`` (in that order) or remove ``drop``; exactly one is given."""

    select: list[str] | None = None
    drop: list[str] | None = None

    def input_columns(self, wanted: Columns) -> Columns:
        if self.select is not None:
            return frozenset(self.select)
        return None if wanted is None else wanted | frozenset(self.drop or ())

    def __call__(self, block: Block) -> Block:
        wanted = self.select if self.select is not None else []
        missing = [name for name in wanted + (self.drop or []) if name not in block.column_names]
        if missing:
            raise KeyError(
                f"column(s) {missing} not found; the dataset has columns {block.column_names}."
            )
        if self.select is not None:
            return block.select(self.select)
        return block.drop_columns(self.drop or [])


@dataclass
class RenameTransform(BlockTransform):
    """Rename columns: ``names`` maps old names to new ones (others keep theirs)."""

    names: Mapping[str, str]

    def __call__(self, block: Block) -> Block:
        missing = [name for name in self.names if name not in block.column_names]
        if missing:
            raise KeyError(
                f"cannot rename column(s) {missing}: the dataset has columns {block.column_names}."
            )
        return block.rename_columns([self.names.get(name, name) for name in block.column_names])


@dataclass
class RandomSampleTransform(BlockTransform):
    """Keep each row with probability ``fraction``; with a ``seed``, the same rows each run."""

    fraction: float
    seed: int | None = None

    def __call__(self, block: Block) -> Block:
        return self.apply(block, TaskContext())

    def apply(self, block: Block, context: TaskContext) -> Block:
        entropy = None if self.seed is None else [self.seed, context.task_index]
        keep = np.random.default_rng(entropy).random(block.num_rows) < self.fraction
        return block.filter(pa.array(keep, type=pa.bool_()))


@dataclass
class SliceTransform(BlockTransform):
    """The first ``length`` rows of a block (used by limit on its last block)."""

    length: int

    def __call__(self, block: Block) -> Block:
        return block.slice(0, self.length)


@dataclass
class ChainTransform(BlockTransform):
    """Fused map operators: each stage feeds the next, all inside one task.

    A stage that raises gets a note naming its operator, so the error a user sees says which
    step of a fused pipeline failed while keeping the original exception and traceback.
    """

    stages: list[tuple[str, BlockTransform]]

    def setup(self) -> None:
        for _, transform in self.stages:
            transform.setup()

    def __call__(self, block: Block) -> Block:
        return self.apply(block, TaskContext())

    def apply(self, block: Block | DeferredBlock, context: TaskContext) -> Block:
        """Run the stages on ``block``; a :class:`DeferredBlock` (a read in this task)
        gives each stage that cannot read it as it is the columns that stage reads."""
        for (name, transform), wanted in zip(self.stages, self.wanted_columns()):
            deferred = block if isinstance(block, DeferredBlock) else None
            try:
                if deferred is not None and not transform.takes_deferred(deferred):
                    block = deferred.table(transform.input_columns(wanted))
                block = transform.apply_for(block, context, wanted)
            except Exception as exc:
                add_note(exc, f"(raised in nebula.data operator {name})")
                raise
            if deferred is not None and not isinstance(block, DeferredBlock):
                # The later stages read this stage's output: what they do not hold of the
                # decoded columns (the rows a filter dropped, say) can be freed now.
                deferred.forget()
        return block.table() if isinstance(block, DeferredBlock) else block

    def wanted_columns(self) -> list[Columns]:
        """For each stage, the columns of its output the later stages read."""
        wanted: list[Columns] = []
        need: Columns = None
        for _, transform in reversed(self.stages):
            wanted.append(need)
            need = transform.input_columns(need)
        return wanted[::-1]


def add_note(exc: BaseException, note: str) -> None:
    if sys.version_info >= (3, 11):
        exc.add_note(note)
