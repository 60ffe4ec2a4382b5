"""``Dataset``: a lazy chain of logical operators, executed when it is consumed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
from nebula.data import _blocks, _split, _streaming_split
from nebula.data._aggregations import AggregateFn, Max, Mean, Min, Std, Sum
from nebula.data._blocks import Block, RefBundle
from nebula.data._compute import RunOptions, check_remote_args, resolve_compute
from nebula.data._convert import import_soon, refs_of
from nebula.data._executor import DataContext, StreamingExecutor, prefetch_blocks
from nebula.data._expressions import as_expression
from nebula.data._grouped import GroupedData, aggregate_dataset, column_stat
from nebula.data._iterator import BatchIteration, DataIterator
from nebula.data._join import Join, check_keys, make_spec
from nebula.data._logical import (
    AllToAll,
    InputData,
    Limit,
    LogicalOperator,
    MapOp,
    Read,
    Union,
    Zip,
    known_schema,
    plan_string,
)
from nebula.data._nary import check_union_schemas
from nebula.data._optimizer import optimize
from nebula.data._read import PathLike, file_row_count, read_file
from nebula.data._transforms import (
    UDF,
    AddColumnTransform,
    ExpressionFilterTransform,
    FilterTransform,
    FlatMapTransform,
    MapBatchesTransform,
    MapRowsTransform,
    ProjectTransform,
    RandomSampleTransform,
    RenameTransform,
    WithColumnTransform,
    fn_label,
)
from nebula.data._write import (
    BlockWriter,
    CsvWriter,
    JsonWriter,
    NumpyWriter,
    ParquetWriter,
    write_dataset,
)

import nebula

# The rows of a batch with batch_size="auto".
_AUTO_BATCH_SIZE = 1024


class Dataset(BatchIteration):
    """A distributed collection of rows in Arrow blocks; transforms are lazy.

    Methods that transform return a new Dataset with one more logical operator; methods
    that consume (``take``, ``iter_batches``, ``count``, ...) run the plan by streaming its
    blocks through Nebula tasks. ``print(ds)`` shows the logical plan.
    """

    def __init__(self, plan: LogicalOperator) -> None:
        self._plan = plan
        self._last_executor: StreamingExecutor | None = None

    def __repr__(self) -> str:
        return plan_string(self._plan)

    def explain(self) -> str:
        """The logical plan, the optimized plan and the physical operators, as text."""
        optimized = optimize(self._plan)
        physical = StreamingExecutor(self._plan).operators
        return "\n".join(
            [
                "-------- Logical Plan --------",
                plan_string(self._plan, show_source_as_dataset=False),
                "-------- Logical Plan (Optimized) --------",
                plan_string(optimized, show_source_as_dataset=False),
                "-------- Physical Plan --------",
                " -> ".join(op.name for op in physical),
            ]
        )

    # ---- transforms -------------------------------------------------------------------

    def _with(self, op: LogicalOperator) -> Dataset:
        return Dataset(op)

    def _map_op(self, kind: str, transform: Any, label: str | None, **kw: Any) -> Dataset:
        return self._with(MapOp(self._plan, kind, transform, label, **kw))

    def _udf_op(
        self,
        kind: str,
        transform: Any,
        run: RunOptions,
        *,
        udf: UDF | None = None,
        label: str | None = None,
        one_to_one: bool = False,
    ) -> Dataset:
        """A map operator running ``transform`` as tasks, or on actors when ``udf`` is a
        class; without a ``udf`` (an expression) it runs as tasks, named by ``label``."""
        method = re.sub(r"(?<!^)([A-Z])", r"_\1", kind).lower()  # MapBatches: map_batches
        fn = None if udf is None else udf.fn
        if udf is not None and not callable(fn):
            raise TypeError(
                f"{method} takes a function or a callable class, got {type(fn).__name__}."
            )
        compute = resolve_compute(method, fn, run.concurrency, run.compute)
        remote_args = check_remote_args(method, run.remote_args, compute.actor_pool is not None)
        return self._map_op(
            kind,
            transform,
            label if label is not None else fn_label(fn),
            one_to_one=one_to_one,
            actor_pool=compute.actor_pool,
            max_tasks=compute.max_tasks,
            remote_args=remote_args,
        )

    def map(
        self,
        fn: Any,
        *,
        compute: Any = None,
        fn_args: Sequence[Any] = (),
        fn_kwargs: Mapping[str, Any] | None = None,
        fn_constructor_args: Sequence[Any] = (),
        fn_constructor_kwargs: Mapping[str, Any] | None = None,
        concurrency: int | tuple[int, int] | None = None,
        **remote_args: Any,
    ) -> Dataset:
        """Apply ``fn`` to each row (a dict); it returns the output row.

        ``fn`` may be a callable class, built once per actor on a pool of ``concurrency``
        actors. Resource arguments (``num_cpus=``, ``num_gpus=``, ``memory=``,
        ``resources=``, ``scheduling_strategy=``, ``max_retries=``...) go to each task or
        actor.
        """
        udf = UDF.of(fn, fn_args, fn_kwargs, fn_constructor_args, fn_constructor_kwargs)
        run = RunOptions(concurrency, compute, remote_args)
        return self._udf_op("Map", MapRowsTransform(udf), run, udf=udf, one_to_one=True)

    def map_batches(
        self,
        fn: Any,
        *,
        batch_size: int | str | None = None,
        batch_format: str = "default",
        compute: Any = None,
        zero_copy_batch: bool = False,
        fn_args: Sequence[Any] = (),
        fn_kwargs: Mapping[str, Any] | None = None,
        fn_constructor_args: Sequence[Any] = (),
        fn_constructor_kwargs: Mapping[str, Any] | None = None,
        concurrency: int | tuple[int, int] | None = None,
        **remote_args: Any,
    ) -> Dataset:
        """Apply ``fn`` to batches of at most ``batch_size`` rows; ``None`` (the default, as
        in Ray Data 2.60) hands it whole blocks, ``"auto"`` batches of 1024 rows.

        ``fn`` takes a batch in ``batch_format`` ("default"/"numpy": a dict of numpy arrays,
        "pandas", "pyarrow") and returns a dict of columns, a DataFrame or a Table. A class
        is constructed once per actor on ``concurrency`` actors (an int, or ``(min, max)``:
        as many as the cluster's CPUs allow); a function with ``concurrency`` runs in at
        most that many tasks at a time. Numpy batches are always read-only views of the
        block, so ``zero_copy_batch`` is accepted and changes nothing. Resource arguments
        go to each task or actor, as for ``map``.
        """
        _blocks.check_batch_format(batch_format)
        if batch_size == "default":
            batch_size = None
        elif batch_size == "auto":
            batch_size = _AUTO_BATCH_SIZE
        if batch_size is not None and (
            isinstance(batch_size, (bool, str)) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(
                f"batch_size must be a positive integer, None or 'auto', got {batch_size!r}."
            )
        udf = UDF.of(fn, fn_args, fn_kwargs, fn_constructor_args, fn_constructor_kwargs)
        transform = MapBatchesTransform(udf, batch_size, batch_format)
        run = RunOptions(concurrency, compute, remote_args)
        return self._udf_op("MapBatches", transform, run, udf=udf)

    def flat_map(
        self,
        fn: Any,
        *,
        compute: Any = None,
        fn_args: Sequence[Any] = (),
        fn_kwargs: Mapping[str, Any] | None = None,
        fn_constructor_args: Sequence[Any] = (),
        fn_constructor_kwargs: Mapping[str, Any] | None = None,
        concurrency: int | tuple[int, int] | None = None,
        **remote_args: Any,
    ) -> Dataset:
        """Apply ``fn`` to each row; it returns a list of output rows. Arguments as ``map``."""
        udf = UDF.of(fn, fn_args, fn_kwargs, fn_constructor_args, fn_constructor_kwargs)
        run = RunOptions(concurrency, compute, remote_args)
        return self._udf_op("FlatMap", FlatMapTransform(udf), run, udf=udf)

    def filter(
        self,
        fn: Any = None,
        expr: Any = None,
        *,
        compute: Any = None,
        fn_args: Sequence[Any] = (),
        fn_kwargs: Mapping[str, Any] | None = None,
        fn_constructor_args: Sequence[Any] = (),
        fn_constructor_kwargs: Mapping[str, Any] | None = None,
        concurrency: int | tuple[int, int] | None = None,
        **remote_args: Any,
    ) -> Dataset:
        """Keep the rows for which ``fn(row)`` is true, or for which ``expr`` is.

        ``expr`` (an expression such as ``col("z") > 0`` from ``nebula.data.expressions``,
        or the string ``"z > 0"``) runs in Arrow on whole blocks: much faster than ``fn``,
        which sees each row as a dict. A null counts as false. Other arguments as ``map``.
        """
        if (fn is None) == (expr is None):
            raise ValueError(
                "filter takes either a function fn(row) -> bool or expr=, not both or neither."
            )
        run = RunOptions(concurrency, compute, remote_args)
        if expr is not None:
            expression = as_expression(expr)
            transform: Any = ExpressionFilterTransform(expression)
            return self._udf_op("Filter", transform, run, label=str(expression))
        udf = UDF.of(fn, fn_args, fn_kwargs, fn_constructor_args, fn_constructor_kwargs)
        return self._udf_op("Filter", FilterTransform(udf), run, udf=udf)

    def add_column(
        self, col: str, fn: Callable[[Any], Any], *, batch_format: str = "pandas"
    ) -> Dataset:
        """Add (or replace) column ``col`` computed by ``fn`` from each batch."""
        _blocks.check_batch_format(batch_format)
        transform = AddColumnTransform(col, fn, batch_format)
        return self._map_op("MapBatches", transform, "add_column", one_to_one=True)

    def with_column(self, column_name: str, expr: Any, **remote_args: Any) -> Dataset:
        """Add (or replace) ``column_name`` with an expression's values, computed in Arrow:
        ``col("x") * 2 + col("y")`` (``nebula.data.expressions``), the string ``"x * 2 + y"``
        or a ``pyarrow.compute`` expression."""
        if not isinstance(column_name, str) or not column_name:
            raise TypeError(f"column_name must be a non-empty string, got {column_name!r}.")
        expression = as_expression(expr, "with_column")
        transform = WithColumnTransform(column_name, expression)
        run = RunOptions(None, None, remote_args)
        label = f"{column_name}={expression}"
        return self._udf_op("WithColumn", transform, run, label=label, one_to_one=True)

    def select_columns(self, cols: str | list[str]) -> Dataset:
        cols = [cols] if isinstance(cols, str) else list(cols)
        return self._map_op("Project", ProjectTransform(select=cols), None, one_to_one=True)

    def drop_columns(self, cols: str | list[str]) -> Dataset:
        cols = [cols] if isinstance(cols, str) else list(cols)
        return self._map_op("Project", ProjectTransform(drop=cols), None, one_to_one=True)

    def rename_columns(self, names: Mapping[str, str] | Sequence[str]) -> Dataset:
        """Rename columns: ``{"old": "new"}``, or a list giving every column its new name."""
        if isinstance(names, Mapping):
            mapping = dict(names)
        elif isinstance(names, Sequence) and not isinstance(names, str):
            current = self.columns()
            if len(names) != len(current):
                raise ValueError(
                    f"rename_columns got {len(names)} names for the {len(current)} columns "
                    f"{current}."
                )
            mapping = dict(zip(current, names))
        else:
            raise TypeError(
                f"rename_columns takes a dict of old to new names or a list of new names, "
                f"got {type(names).__name__}."
            )
        targets = list(mapping.values())
        if not all(isinstance(name, str) for name in [*mapping, *targets]):
            raise TypeError("column names must be strings.")
        if len(set(targets)) != len(targets):
            raise ValueError(f"rename_columns would give two columns the same name: {targets}.")
        transform = RenameTransform(mapping)
        return self._map_op("Project", transform, "rename_columns", one_to_one=True)

    def random_sample(self, fraction: float, *, seed: int | None = None) -> Dataset:
        """Each row kept with probability ``fraction``; with ``seed``, the same rows each run."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise TypeError(f"fraction must be a number, got {type(fraction).__name__}.")
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction}.")
        transform = RandomSampleTransform(float(fraction), seed)
        return self._map_op("RandomSample", transform, None)

    def train_test_split(
        self, test_size: float | int, *, shuffle: bool = False, seed: int | None = None
    ) -> tuple[MaterializedDataset, MaterializedDataset]:
        """Materialize, then split into (train, test); the test part is the last rows.

        ``test_size``: a fraction of the rows (between 0 and 1) or a number of rows.
        ``shuffle`` shuffles all rows first (``seed``: the same split each run).
        """
        if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
            raise TypeError(f"test_size must be a number, got {type(test_size).__name__}.")
        if isinstance(test_size, float) and not 0 < test_size < 1:
            raise ValueError(f"a fractional test_size must be between 0 and 1, got {test_size}.")
        if isinstance(test_size, int) and test_size < 0:
            raise ValueError(f"test_size must be >= 0, got {test_size}.")
        dataset = self.random_shuffle(seed=seed) if shuffle else self
        materialized = dataset.materialize()
        rows = materialized.count()
        if isinstance(test_size, float):
            train_rows = int(rows * (1 - test_size))
        elif test_size > rows:
            raise ValueError(f"test_size {test_size} is more than the dataset's {rows} rows.")
        else:
            train_rows = rows - test_size
        train, test = materialized.split_at_indices([train_rows])
        return train, test

    def limit(self, limit: int) -> Dataset:
        """The first ``limit`` rows; upstream work stops once they are produced."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}.")
        return self._with(Limit(self._plan, limit))

    def num_blocks(self) -> int:
        """Only a materialized dataset has a fixed number of blocks."""
        raise NotImplementedError(
            "The number of blocks is known once the dataset is computed: call "
            "ds.materialize().num_blocks()."
        )

    def repartition(self, num_blocks: int, *, shuffle: bool = False) -> Dataset:
        """``num_blocks`` blocks: of nearly equal row counts with the rows in order, or with
        ``shuffle=True`` every row moved to a random block (in a random order there)."""
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}.")
        if shuffle:
            params = {"seed": None, "num_blocks": num_blocks}
            return self._with(AllToAll(self._plan, "RandomShuffle", params))
        return self._with(AllToAll(self._plan, "Repartition", {"num_blocks": num_blocks}))

    def random_shuffle(self, *, seed: int | None = None) -> Dataset:
        return self._with(AllToAll(self._plan, "RandomShuffle", {"seed": seed}))

    def randomize_block_order(self, *, seed: int | None = None) -> Dataset:
        """The same blocks in a random order: a cheap shuffle that moves no rows."""
        return self._with(AllToAll(self._plan, "RandomizeBlockOrder", {"seed": seed}))

    def sort(self, key: str | list[str], descending: bool = False) -> Dataset:
        keys = [key] if isinstance(key, str) else list(key)
        return self._with(AllToAll(self._plan, "Sort", {"keys": keys, "descending": descending}))

    def groupby(self, key: str | list[str] | None) -> GroupedData:
        """Group rows by the values of one or more columns (None: the whole dataset)."""
        return GroupedData(self, key)

    def union(self, *others: Dataset) -> Dataset:
        """The rows of this dataset, then those of each of ``others``, in order.

        Streams like any other operator (nothing is materialized). The datasets must have
        the same columns: a mismatch raises ``ValueError`` naming the columns that differ,
        here when the schemas are known up front, else as soon as the execution sees it.
        """
        plans = [self._plan, *_plans("union", others)]
        check_union_schemas(plans)
        return self._with(Union(None, tuple(plans)))

    def zip(self, *others: Dataset) -> Dataset:
        """Each row joined with the row at the same position in each of ``others``.

        The result has this dataset's columns, then each other's; a column name already
        taken gets a suffix ``_1`` (then ``_2``, ...). The datasets must have the same number
        of rows: the execution raises ``ValueError`` as soon as one ends short.
        """
        return self._with(Zip(None, (self._plan, *_plans("zip", others))))

    def join(
        self,
        ds: Dataset,
        join_type: str = "inner",
        num_partitions: int | None = None,
        on: str | Sequence[str] = ("id",),
        right_on: str | Sequence[str] | None = None,
        left_suffix: str | None = None,
        right_suffix: str | None = None,
    ) -> Dataset:
        """This dataset's rows matched with ``ds``'s on key columns (Arrow hash joins).

        ``join_type``: inner, left_outer, right_outer, full_outer, left_semi, right_semi,
        left_anti or right_anti. ``on`` names the key columns here, ``right_on`` in ``ds``
        (default: the same names); the output keeps one copy of the keys. A non-key column
        in both needs ``left_suffix``/``right_suffix``. Both inputs are cut into
        ``num_partitions`` key ranges (default: as many as the larger input has blocks),
        each joined in one task, so a partition's rows must fit in one worker. Row order
        is by key range, and unspecified within one.
        """
        if not isinstance(ds, Dataset):
            raise TypeError(f"join takes a dataset, got {type(ds).__name__}.")
        spec = make_spec(join_type, num_partitions, on, right_on, left_suffix, right_suffix)
        check_keys(spec, known_schema(self._plan), known_schema(ds._plan))
        return self._with(Join(None, (self._plan, ds._plan), spec))

    # ---- execution --------------------------------------------------------------------

    def iter_internal_ref_bundles(self) -> Iterator[RefBundle]:
        """Stream the plan's output blocks (as references) in order."""
        executor = StreamingExecutor(self._plan)
        self._last_executor = executor
        yield from executor.run()

    def _iter_blocks(self, prefetch: int = 0) -> Iterator[Block]:
        """The plan's blocks in order; ``prefetch`` > 0 computes and fetches that many ahead."""
        if prefetch > 0:
            executor = StreamingExecutor(self._plan)
            self._last_executor = executor
            yield from prefetch_blocks(executor, prefetch)
            return
        for bundle in self.iter_internal_ref_bundles():
            yield nebula.get(bundle.ref)

    def materialize(self) -> MaterializedDataset:
        """Run the plan now and keep every block in the object store."""
        bundles = list(self.iter_internal_ref_bundles())
        materialized = MaterializedDataset(InputData(None, "Materialized", bundles))
        materialized._last_executor = self._last_executor
        return materialized

    def split(self, n: int, *, equal: bool = False) -> list[MaterializedDataset]:
        """Materialize, then cut into ``n`` datasets, in row order.

        Without ``equal`` each gets whole blocks, row counts as even as the blocks allow
        (with fewer blocks than ``n`` some get none); with ``equal`` each gets exactly
        ``count() // n`` rows, blocks being sliced where needed and the rest dropped.
        """
        _check_split_count(n)
        bundles = self._materialized_bundles()
        pieces = _split.split_equal(bundles, n) if equal else _split.split_blocks(bundles, n)
        return [MaterializedDataset(InputData(None, "Materialized", piece)) for piece in pieces]

    def split_at_indices(self, indices: Sequence[int]) -> list[MaterializedDataset]:
        """Materialize, then cut before each row index (ascending), as ``numpy.split`` does:
        ``[0, i0)``, ``[i0, i1)``, ..., ``[ik, end)``; indices past the end give empty pieces."""
        checked = _split.check_indices(indices)
        pieces = _split.split_at(self._materialized_bundles(), checked)
        return [MaterializedDataset(InputData(None, "Materialized", piece)) for piece in pieces]

    def split_proportionately(self, proportions: Sequence[float]) -> list[MaterializedDataset]:
        """Materialize, then cut in row order into pieces of these fractions of the rows,
        plus one last piece with the rest (``[0.2, 0.3]``: 20%, 30%, then 50%)."""
        fractions = list(proportions)
        if not fractions or any(
            isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 0 for f in fractions
        ):
            raise ValueError(f"proportions must be positive numbers, got {proportions!r}.")
        if sum(fractions) >= 1:
            raise ValueError(f"proportions must add up to less than 1, got {sum(fractions)}.")
        bundles = self._materialized_bundles()
        total = sum(bundle.meta.num_rows for bundle in bundles)
        indices, running = [], 0.0
        for fraction in fractions:
            running += fraction
            indices.append(int(total * running))
        pieces = _split.split_at(bundles, indices)
        return [MaterializedDataset(InputData(None, "Materialized", piece)) for piece in pieces]

    def streaming_split(self, n: int, *, equal: bool = False) -> list[DataIterator]:
        """``n`` iterators sharing one streaming execution; each block goes to one of them.

        Hand them to ``n`` different tasks or actors (they pickle). Each pass over them
        (``iter_batches``/``iter_rows``) starts once all ``n`` have started theirs, and runs
        the dataset again; a consumer that stops reading can hold the others up. With
        ``equal`` every consumer gets the same number of rows (the last ``rows % n`` are
        dropped); without it, whoever asks first gets the next block.
        """
        _check_split_count(n)
        context = DataContext.get_current()
        return list(_streaming_split.streaming_split(self._plan, n, equal, context))

    def _materialized_bundles(self) -> list[RefBundle]:
        plan = self.materialize()._plan
        assert isinstance(plan, InputData)
        return list(plan.bundles)

    def stats(self) -> str:
        """Per-operator tasks, blocks, rows and time of this dataset's last execution."""
        if self._last_executor is None:
            self.materialize()
        assert self._last_executor is not None
        return self._last_executor.stats_text()

    # ---- consumption ------------------------------------------------------------------

    def iterator(self) -> DataIterator:
        """A ``DataIterator`` over this dataset (each pass runs the plan again)."""
        return _DatasetIterator(self)

    def take(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.limit(limit).iter_rows())

    def take_all(self) -> list[dict[str, Any]]:
        return list(self.iter_rows())

    def take_batch(self, batch_size: int = 20, *, batch_format: str = "default") -> Any:
        _blocks.check_batch_format(batch_format)
        block = _blocks.concat(list(self.limit(batch_size)._iter_blocks()))
        return _blocks.to_batch(block, batch_format)

    def show(self, limit: int = 20) -> None:
        for row in self.take(limit):
            print(row)

    def count(self) -> int:
        """The number of rows: known without running anything for in-memory sources and
        ranges, read from the file footers (not the rows) for plain Parquet reads."""
        if isinstance(self._plan, (Read, InputData)) and self._plan.num_rows is not None:
            return self._plan.num_rows
        if isinstance(self._plan, Read) and (rows := file_row_count(self._plan)) is not None:
            return rows
        return sum(bundle.meta.num_rows for bundle in self.iter_internal_ref_bundles())

    def schema(self) -> pa.Schema | None:
        """The output schema; computed from the first non-empty block when not known."""
        known = known_schema(self._plan)
        if known is not None:
            return known
        schema = None
        for bundle in self.iter_internal_ref_bundles():
            schema = bundle.meta.schema
            if bundle.meta.num_rows:
                break
        return schema

    def input_files(self) -> list[str]:
        """The files the plan reads, in order (none for in-memory sources)."""
        files: list[str] = []
        stack = [self._plan]
        while stack:
            op = stack.pop()
            stack.extend(reversed(op.inputs))
            if isinstance(op, Read):
                files += [task.args[2] for task in op.read_tasks if task.fn is read_file]
        return list(dict.fromkeys(files))

    def size_bytes(self) -> int:
        """The bytes the dataset's blocks take in memory (runs the plan if not materialized)."""
        if isinstance(self._plan, InputData):
            bundles: Iterable[RefBundle] = self._plan.bundles
        else:
            bundles = self.iter_internal_ref_bundles()
        return sum(bundle.meta.size_bytes for bundle in bundles)

    def aggregate(self, *aggs: AggregateFn) -> dict[str, Any]:
        """Aggregate the whole dataset: ``{name: value}`` per aggregation (``nebula.data.
        aggregate``); every value is None when the dataset is empty."""
        return aggregate_dataset(self, aggs)

    def sum(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        """The sum of column ``on`` (a value), or of several or all columns (a dict keyed
        ``sum(col)``); None for no rows, or when ``ignore_nulls=False`` and there is a null."""
        return column_stat(self, Sum, on, ignore_nulls=ignore_nulls)

    def min(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        """The smallest value of ``on``; shaped as ``sum`` is."""
        return column_stat(self, Min, on, ignore_nulls=ignore_nulls)

    def max(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        """The largest value of ``on``; shaped as ``sum`` is."""
        return column_stat(self, Max, on, ignore_nulls=ignore_nulls)

    def mean(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        """The mean of ``on``; shaped as ``sum`` is."""
        return column_stat(self, Mean, on, ignore_nulls=ignore_nulls)

    def std(
        self, on: str | list[str] | None = None, ddof: int = 1, ignore_nulls: bool = True
    ) -> Any:
        """The standard deviation of ``on`` (divisor ``N - ddof``); shaped as ``sum`` is."""
        return column_stat(self, Std, on, ddof=ddof, ignore_nulls=ignore_nulls)

    def unique(self, column: str) -> list[Any]:
        """The distinct values of ``column`` (None included), in ascending order."""
        return [row[column] for row in self.groupby(column).count().take_all()]

    def columns(self) -> list[str]:
        schema = self.schema()
        return list(schema.names) if schema is not None else []

    def to_pandas(self) -> Any:
        import_soon("pandas")
        return _blocks.to_batch(_blocks.concat(list(self._iter_blocks())), "pandas")

    def to_arrow(self) -> pa.Table:
        return _blocks.concat(list(self._iter_blocks()))

    def to_arrow_refs(self) -> list[Any]:
        """One ``ObjectRef`` per block, to it as a ``pyarrow.Table`` (no copy is made)."""
        return [bundle.ref for bundle in self._materialized_bundles()]

    def get_internal_block_refs(self) -> list[Any]:
        return self.to_arrow_refs()

    def to_pandas_refs(self) -> list[Any]:
        """One ``ObjectRef`` per block, to it as a ``pandas.DataFrame`` (made in tasks)."""
        return refs_of(self._materialized_bundles(), "pandas", None)

    def to_numpy_refs(self, *, column: str | None = None) -> list[Any]:
        """One ``ObjectRef`` per block, to a dict of numpy arrays (or ``column``'s array)."""
        return refs_of(self._materialized_bundles(), "numpy", column)

    def _write(self, writer: BlockWriter, path: PathLike, method: str, **options: Any) -> None:
        """``options``: filesystem, min_rows_per_file, partition_cols (see write_dataset)."""
        self._last_executor = write_dataset(self._plan, writer, path, method=method, **options)

    def write_parquet(
        self,
        path: PathLike,
        *,
        filesystem: Any = None,
        min_rows_per_file: int | None = None,
        partition_cols: list[str] | None = None,
        **arrow_parquet_args: Any,
    ) -> None:
        """Write parquet files into the directory ``path`` (local, or a URI like ``s3://``).

        One file per block, or per run of blocks holding at least ``min_rows_per_file``
        rows; ``partition_cols`` spreads each file's rows over ``col=value/`` directories
        (hive style, as ``read_parquet`` reads them back); ``arrow_parquet_args`` go to
        ``pyarrow.parquet.write_table``.
        """
        self._write(
            ParquetWriter(arrow_parquet_args),
            path,
            "write_parquet",
            filesystem=filesystem,
            min_rows_per_file=min_rows_per_file,
            partition_cols=partition_cols,
        )

    def write_csv(
        self,
        path: PathLike,
        *,
        filesystem: Any = None,
        min_rows_per_file: int | None = None,
        partition_cols: list[str] | None = None,
        **arrow_csv_args: Any,
    ) -> None:
        """Write CSV files with a header row into ``path``, split as ``write_parquet`` does."""
        self._write(
            CsvWriter(arrow_csv_args),
            path,
            "write_csv",
            filesystem=filesystem,
            min_rows_per_file=min_rows_per_file,
            partition_cols=partition_cols,
        )

    def write_json(
        self,
        path: PathLike,
        *,
        filesystem: Any = None,
        min_rows_per_file: int | None = None,
        partition_cols: list[str] | None = None,
    ) -> None:
        """Write JSON lines files (one object per row) into ``path``, split as ``write_parquet``."""
        self._write(
            JsonWriter(),
            path,
            "write_json",
            filesystem=filesystem,
            min_rows_per_file=min_rows_per_file,
            partition_cols=partition_cols,
        )

    def write_numpy(
        self,
        path: PathLike,
        *,
        column: str = "data",
        filesystem: Any = None,
        min_rows_per_file: int | None = None,
    ) -> None:
        """Write ``column`` as ``.npy`` files (rows along the first axis) into ``path``."""
        self._write(
            NumpyWriter(column),
            path,
            "write_numpy",
            filesystem=filesystem,
            min_rows_per_file=min_rows_per_file,
        )


class MaterializedDataset(Dataset):
    """A dataset whose blocks are all computed and held in the object store."""

    def num_blocks(self) -> int:
        assert isinstance(self._plan, InputData)
        return len(self._plan.bundles)


class _DatasetIterator(DataIterator):
    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset

    def __repr__(self) -> str:
        return f"DataIterator({self._dataset!r})"

    def _iter_blocks(self, prefetch: int = 0) -> Iterator[Block]:
        return self._dataset._iter_blocks(prefetch)


def _plans(method: str, others: Sequence[Dataset]) -> list[LogicalOperator]:
    if not others:
        raise ValueError(f"{method} needs at least one other dataset.")
    for other in others:
        if not isinstance(other, Dataset):
            raise TypeError(f"{method} takes datasets, got {type(other).__name__}.")
    return [other._plan for other in others]


def _check_split_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of splits must be a positive integer, got {n!r}.")
