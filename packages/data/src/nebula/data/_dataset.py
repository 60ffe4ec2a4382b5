"""``Dataset``: a lazy chain of logical operators, executed when it is consumed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
from nebula.data import _blocks
from nebula.data._blocks import Block, RefBundle
from nebula.data._executor import StreamingExecutor
from nebula.data._logical import (
    AllToAll,
    InputData,
    Limit,
    LogicalOperator,
    MapOp,
    Read,
    chain,
    plan_string,
    source_schema,
)
from nebula.data._optimizer import optimize
from nebula.data._transforms import (
    AddColumnTransform,
    FilterTransform,
    FlatMapTransform,
    MapBatchesTransform,
    MapRowsTransform,
    ProjectTransform,
    WriteParquetTransform,
    fn_label,
)

import nebula

_DEFAULT_BATCH_SIZE = 1024


class Dataset:
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

    def map(self, fn: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Dataset:
        """Apply ``fn`` to each row (a dict); it returns the output row."""
        return self._map_op("Map", MapRowsTransform(fn), fn_label(fn), one_to_one=True)

    def map_batches(
        self,
        fn: Any,
        *,
        batch_size: int | None = _DEFAULT_BATCH_SIZE,
        batch_format: str = "default",
        concurrency: int | None = None,
        fn_args: Sequence[Any] = (),
        fn_kwargs: Mapping[str, Any] | None = None,
        fn_constructor_args: Sequence[Any] = (),
        fn_constructor_kwargs: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Apply ``fn`` to batches of at most ``batch_size`` rows.

        ``fn`` takes a batch in ``batch_format`` ("default"/"numpy": a dict of numpy arrays,
        "pandas", "pyarrow") and returns a dict of columns, a DataFrame or a Table. A class
        is constructed once per actor on ``concurrency`` actors; a function with
        ``concurrency`` runs in at most that many tasks at a time.
        """
        _blocks.check_batch_format(batch_format)
        is_class = isinstance(fn, type)
        if is_class and concurrency is None:
            raise ValueError(
                f"map_batches got the class {fn.__name__}; pass concurrency=N to run it on a "
                "pool of N actors."
            )
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}.")
        transform = MapBatchesTransform(
            fn,
            batch_size,
            batch_format,
            tuple(fn_args),
            dict(fn_kwargs or {}),
            tuple(fn_constructor_args),
            dict(fn_constructor_kwargs or {}),
        )
        return self._map_op(
            "MapBatches",
            transform,
            fn_label(fn),
            actor_pool_size=concurrency if is_class else None,
            max_tasks=None if is_class else concurrency,
        )

    def flat_map(self, fn: Callable[[dict[str, Any]], Iterable[Mapping[str, Any]]]) -> Dataset:
        """Apply ``fn`` to each row; it returns a list of output rows."""
        return self._map_op("FlatMap", FlatMapTransform(fn), fn_label(fn))

    def filter(self, fn: Callable[[dict[str, Any]], bool]) -> Dataset:
        """Keep the rows for which ``fn(row)`` is true."""
        return self._map_op("Filter", FilterTransform(fn), fn_label(fn))

    def add_column(
        self, col: str, fn: Callable[[Any], Any], *, batch_format: str = "pandas"
    ) -> Dataset:
        """Add (or replace) column ``col`` computed by ``fn`` from each batch."""
        _blocks.check_batch_format(batch_format)
        transform = AddColumnTransform(col, fn, batch_format)
        return self._map_op("MapBatches", transform, "add_column", one_to_one=True)

    def select_columns(self, cols: str | list[str]) -> Dataset:
        cols = [cols] if isinstance(cols, str) else list(cols)
        return self._map_op("Project", ProjectTransform(select=cols), None, one_to_one=True)

    def drop_columns(self, cols: str | list[str]) -> Dataset:
        cols = [cols] if isinstance(cols, str) else list(cols)
        return self._map_op("Project", ProjectTransform(drop=cols), None, one_to_one=True)

    def limit(self, limit: int) -> Dataset:
        """The first ``limit`` rows; upstream work stops once they are produced."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}.")
        return self._with(Limit(self._plan, limit))

    def repartition(self, num_blocks: int) -> Dataset:
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}.")
        return self._with(AllToAll(self._plan, "Repartition", {"num_blocks": num_blocks}))

    def random_shuffle(self, *, seed: int | None = None) -> Dataset:
        return self._with(AllToAll(self._plan, "RandomShuffle", {"seed": seed}))

    def sort(self, key: str | list[str], descending: bool = False) -> Dataset:
        keys = [key] if isinstance(key, str) else list(key)
        return self._with(AllToAll(self._plan, "Sort", {"keys": keys, "descending": descending}))

    def groupby(self, key: str | list[str]) -> GroupedData:
        return GroupedData(self, [key] if isinstance(key, str) else list(key))

    # ---- execution --------------------------------------------------------------------

    def iter_internal_ref_bundles(self) -> Iterator[RefBundle]:
        """Stream the plan's output blocks (as references) in order."""
        executor = StreamingExecutor(self._plan)
        self._last_executor = executor
        yield from executor.run()

    def _iter_blocks(self) -> Iterator[Block]:
        for bundle in self.iter_internal_ref_bundles():
            yield nebula.get(bundle.ref)

    def materialize(self) -> MaterializedDataset:
        """Run the plan now and keep every block in the object store."""
        bundles = list(self.iter_internal_ref_bundles())
        materialized = MaterializedDataset(InputData(None, "Materialized", bundles))
        materialized._last_executor = self._last_executor
        return materialized

    def stats(self) -> str:
        """Per-operator tasks, blocks, rows and time of this dataset's last execution."""
        if self._last_executor is None:
            self.materialize()
        assert self._last_executor is not None
        return self._last_executor.stats_text()

    # ---- consumption ------------------------------------------------------------------

    def iter_batches(
        self, *, batch_size: int | None = 256, batch_format: str = "default"
    ) -> Iterator[Any]:
        """Batches of exactly ``batch_size`` rows (the last may be smaller), in order.

        ``batch_size=None`` yields one batch per block.
        """
        _blocks.check_batch_format(batch_format)
        buffered: list[Block] = []
        rows = 0
        for block in self._iter_blocks():
            if batch_size is None:
                if block.num_rows:
                    yield _blocks.to_batch(block, batch_format)
                continue
            buffered.append(block)
            rows += block.num_rows
            while rows >= batch_size:
                merged = _blocks.concat(buffered)
                yield _blocks.to_batch(merged.slice(0, batch_size), batch_format)
                rest = merged.slice(batch_size)
                buffered, rows = [rest], rest.num_rows
        if rows:
            yield _blocks.to_batch(_blocks.concat(buffered), batch_format)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        for block in self._iter_blocks():
            yield from _blocks.iter_rows(block)

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
        """The number of rows; known without running anything for a plain source."""
        if isinstance(self._plan, (Read, InputData)) and self._plan.num_rows is not None:
            return self._plan.num_rows
        return sum(bundle.meta.num_rows for bundle in self.iter_internal_ref_bundles())

    def schema(self) -> pa.Schema | None:
        """The output schema; computed from the first non-empty block when not known."""
        known = source_schema(self._plan)
        if known is not None and all(
            isinstance(op, (Read, InputData, Limit)) for op in chain(self._plan)
        ):
            return known
        schema = None
        for bundle in self.iter_internal_ref_bundles():
            schema = bundle.meta.schema
            if bundle.meta.num_rows:
                break
        return schema

    def columns(self) -> list[str]:
        schema = self.schema()
        return list(schema.names) if schema is not None else []

    def to_pandas(self) -> Any:
        return _blocks.concat(list(self._iter_blocks())).to_pandas()

    def to_arrow(self) -> pa.Table:
        return _blocks.concat(list(self._iter_blocks()))

    def write_parquet(self, path: str) -> None:
        """Write one parquet file per block into the directory ``path``."""
        writer = self._map_op("Write", WriteParquetTransform(path), "Parquet")
        for _ in writer.iter_internal_ref_bundles():
            pass
        self._last_executor = writer._last_executor


class MaterializedDataset(Dataset):
    """A dataset whose blocks are all computed and held in the object store."""

    def num_blocks(self) -> int:
        assert isinstance(self._plan, InputData)
        return len(self._plan.bundles)


class GroupedData:
    """``ds.groupby(key)``: aggregate each group into one output row."""

    def __init__(self, dataset: Dataset, keys: list[str]) -> None:
        self._dataset = dataset
        self._keys = keys

    def _aggregate(self, aggs: list[tuple[str, str | None]]) -> Dataset:
        params = {"keys": self._keys, "aggs": aggs}
        return self._dataset._with(AllToAll(self._dataset._plan, "Aggregate", params))

    def count(self) -> Dataset:
        return self._aggregate([("count", None)])

    def sum(self, on: str | list[str]) -> Dataset:
        return self._aggregate([("sum", col) for col in ([on] if isinstance(on, str) else on)])

    def mean(self, on: str | list[str]) -> Dataset:
        return self._aggregate([("mean", col) for col in ([on] if isinstance(on, str) else on)])
