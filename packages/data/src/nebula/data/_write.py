"""Writing a dataset into a directory as files named ``{write_id}_{index:06d}.{ext}``.

By default each block becomes one file, written by a ``Write`` stage at the end of the plan:
the optimizer fuses it into the task that computes the block (read, map, filter, write in
one task per input file), so the block never goes through the object store, and the
executor's bounds keep the pipeline streaming. The index is the block's position, so the
files sort in the dataset's order; empty blocks write no file (the indices keep their gaps).

With ``min_rows_per_file``, the driver streams the dataset's blocks (as references), groups
consecutive ones until a group holds that many rows, and hands each group to a write task;
at most the executor's in-flight bound of them run at once, which also bounds how far the
upstream plan runs ahead. The write id is fresh per write, so two writes into one directory
never clobber each other.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from nebula.data import _blocks
from nebula.data._blocks import Block, RefBundle
from nebula.data._executor import DataContext, StreamingExecutor
from nebula.data._logical import LogicalOperator, MapOp
from nebula.data._partitioning import check_partition_cols, split_by_partition
from nebula.data._read import PathLike, error_naming, resolve_path
from nebula.data._transforms import BlockTransform, TaskContext
from nebula.data._zero_copy import arrow_from_numpy

import nebula


class BlockWriter:
    """How one block becomes one file's bytes; instances are shipped to write tasks."""

    extension: ClassVar[str]

    def write(self, block: Block, stream: pa.NativeFile) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class ParquetWriter(BlockWriter):
    """``pyarrow.parquet.write_table`` with ``arrow_args``; unless they choose the dictionary
    encoding (``use_dictionary``, ``dictionary_pagesize_limit``), a column whose sampled
    values are all but all distinct is written plain (see :func:`dictionary_columns`)."""

    extension: ClassVar[str] = "parquet"
    arrow_args: dict[str, Any] = field(default_factory=dict)

    def write(self, block: Block, stream: pa.NativeFile) -> None:
        args = self.arrow_args
        if not _DICTIONARY_ARGS & args.keys():
            columns = dictionary_columns(block)
            if columns is not None:
                args = {**args, "use_dictionary": columns}
        pq.write_table(block, stream, **args)


_DICTIONARY_ARGS = frozenset({"use_dictionary", "dictionary_pagesize_limit"})
# A sample of this many windows of this many consecutive rows, spread over the block.
_SAMPLE_WINDOWS, _WINDOW_ROWS = 16, 512
_MOSTLY_DISTINCT = 0.99


def dictionary_columns(block: Block) -> list[str] | None:
    """The columns worth a dictionary, or None to leave every column to Arrow's default.

    Arrow starts every column with a dictionary and writes the rest of the row group plain
    once the dictionary outgrows its page (1 MiB): for values nearly all distinct (random
    floats, ids, free text) that dictionary is built only to be dropped, a quarter of the
    write's time. Sixteen windows of 512 consecutive rows are sampled; a column whose sample
    is at least 99% distinct has more than about 400,000 distinct values in the block if
    they are spread evenly (a dictionary of over 1.6 MB at 4 bytes a value, which Arrow
    would give up), and no runs of repeats within a window (sorted data keeps its
    dictionary). Small blocks, blocks with nested columns and columns of other types (dictionaries,
    booleans, extension types) keep Arrow's default.
    """
    rows = block.num_rows
    if rows < 4 * _SAMPLE_WINDOWS * _WINDOW_ROWS:
        return None
    if any(pa.types.is_nested(f.type) for f in block.schema):
        return None
    step = (rows - _WINDOW_ROWS) // (_SAMPLE_WINDOWS - 1)
    starts = range(0, step * _SAMPLE_WINDOWS, step)
    keep = []
    for name, column in zip(block.column_names, block.columns, strict=True):
        if not _sampled(column.type):
            keep.append(name)
            continue
        sample = pa.chunked_array(
            [chunk for start in starts for chunk in column.slice(start, _WINDOW_ROWS).chunks],
            type=column.type,
        )
        distinct = pc.count_distinct(sample, mode="all").as_py()
        if distinct < _MOSTLY_DISTINCT * len(sample):
            keep.append(name)
    return keep


def _sampled(data_type: pa.DataType) -> bool:
    """Whether a column of this type is sampled (other types keep their dictionary)."""
    checks = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_fixed_size_binary,
        pa.types.is_decimal,
        pa.types.is_temporal,
    )
    return any(check(data_type) for check in checks)


@dataclass(frozen=True)
class CsvWriter(BlockWriter):
    """A header row, then one line per row (``arrow_args`` go to ``pyarrow.csv.write_csv``)."""

    extension: ClassVar[str] = "csv"
    arrow_args: dict[str, Any] = field(default_factory=dict)

    def write(self, block: Block, stream: pa.NativeFile) -> None:
        pacsv.write_csv(block, stream, **self.arrow_args)


def _json_value(value: Any) -> Any:
    """A JSON-ready form of a value ``json`` cannot write as is (NaN and infinity -> null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"a value of type {type(value).__name__} cannot be written as JSON.")


@dataclass(frozen=True)
class JsonWriter(BlockWriter):
    """JSON lines: one object per row, as ``read_json`` reads them back.

    Timestamps and dates become ISO 8601 strings, NaN and infinity become null.
    """

    extension: ClassVar[str] = "json"

    def write(self, block: Block, stream: pa.NativeFile) -> None:
        for piece in _blocks.iter_slices(block, 1024):
            lines = [_json_line(row) for row in _blocks.iter_rows(piece)]
            stream.write("".join(lines).encode("utf-8"))


@dataclass(frozen=True)
class NumpyWriter(BlockWriter):
    """One column as a ``.npy`` array (rows along the first axis), as ``read_numpy`` reads."""

    extension: ClassVar[str] = "npy"
    column: str = "data"

    def write(self, block: Block, stream: pa.NativeFile) -> None:
        if self.column not in block.column_names:
            raise KeyError(
                f"write_numpy: no column {self.column!r}; the dataset has {block.column_names}."
            )
        array = _blocks.to_batch(block.select([self.column]), "numpy")[self.column]
        np.save(stream, np.ascontiguousarray(array), allow_pickle=False)


# Compact separators, as JSON-lines files are conventionally written.
_JSON_OPTIONS: dict[str, Any] = {"separators": (",", ":"), "allow_nan": False}


def _json_line(row: dict[str, Any]) -> str:
    try:
        text = json.dumps(row, default=_json_default, **_JSON_OPTIONS)
    except ValueError:
        text = json.dumps(_json_value(row), default=_json_default, **_JSON_OPTIONS)
    return text + "\n"


def _write_file(
    writer: BlockWriter,
    fs: pafs.FileSystem,
    path: str,
    partition_cols: tuple[str, ...],
    *blocks: Block,
) -> int:
    """Write ``blocks`` as the file ``path``, or with ``partition_cols`` as one file of that
    name in each ``col=value/`` directory the rows fall in."""
    block = _blocks.concat(blocks)
    if not partition_cols:
        _write_one(writer, fs, path, block)
        return int(block.num_rows)
    directory, name = path.rsplit("/", 1)
    for subdirectory, rows in split_by_partition(block, partition_cols):
        target = f"{directory}/{subdirectory}"
        fs.create_dir(target, recursive=True)
        _write_one(writer, fs, f"{target}/{name}", rows)
    return int(block.num_rows)


def _write_one(writer: BlockWriter, fs: pafs.FileSystem, path: str, block: Block) -> None:
    try:
        with fs.open_output_stream(path, compression=None) as stream:
            writer.write(block, stream)
    except Exception as exc:
        raise error_naming(exc, f"could not write the file {path!r}: {exc}") from exc


_write_task = nebula.remote(_write_file)


@dataclass(frozen=True)
class WriteTransform(BlockTransform):
    """Writes each block as one file named by its task's index; outputs the file's stats."""

    writer: BlockWriter
    filesystem: pafs.FileSystem
    directory: str
    write_id: str
    partition_cols: tuple[str, ...] = ()

    def __call__(self, block: Block) -> Block:
        return self.apply(block, TaskContext())

    def apply(self, block: Block, context: TaskContext) -> Block:
        if block.num_rows == 0:
            return _WRITE_STATS.empty_table()
        name = f"{self.directory}/{self.write_id}_{context.task_index:06d}.{self.writer.extension}"
        rows = _write_file(self.writer, self.filesystem, name, self.partition_cols, block)
        written = arrow_from_numpy(np.array([rows], dtype=np.int64))
        return pa.Table.from_arrays([written], schema=_WRITE_STATS)


_WRITE_STATS = pa.schema([("num_rows", pa.int64())])


def check_min_rows_per_file(min_rows_per_file: int | None) -> None:
    if min_rows_per_file is None:
        return
    if isinstance(min_rows_per_file, bool) or not isinstance(min_rows_per_file, int):
        raise TypeError(
            f"min_rows_per_file must be an int or None, got {type(min_rows_per_file).__name__}."
        )
    if min_rows_per_file < 1:
        raise ValueError(f"min_rows_per_file must be >= 1 (or None), got {min_rows_per_file}.")


def _output_directory(path: PathLike, filesystem: Any, method: str) -> tuple[pafs.FileSystem, str]:
    fs, directory = resolve_path(path, filesystem)
    directory = directory.rstrip("/") or "/"
    info = fs.get_file_info(directory)
    if info.type == pafs.FileType.File:
        raise FileExistsError(
            f"{method}: the output path {directory!r} is a file; pass a directory to write into."
        )
    if info.type == pafs.FileType.NotFound:
        fs.create_dir(directory, recursive=True)
    return fs, directory


def write_dataset(
    plan: LogicalOperator,
    writer: BlockWriter,
    path: PathLike,
    *,
    filesystem: Any,
    min_rows_per_file: int | None,
    method: str,
    partition_cols: Sequence[str] | None = None,
) -> StreamingExecutor:
    """Write the plan's blocks as files under ``path``; returns the finished execution."""
    check_min_rows_per_file(min_rows_per_file)
    columns = check_partition_cols(partition_cols)
    fs, directory = _output_directory(path, filesystem, method)
    write_id = uuid.uuid4().hex[:16]
    if min_rows_per_file is None:
        transform = WriteTransform(writer, fs, directory, write_id, columns)
        executor = StreamingExecutor(MapOp(plan, "Write", transform))
        for _ in executor.run():
            pass
        return executor
    executor = StreamingExecutor(plan)
    target = _Target(writer, fs, directory, write_id, columns)
    _write_groups(executor.run(), target, min_rows_per_file)
    return executor


@dataclass(frozen=True)
class _Target:
    """Where grouped blocks are written: the format, the directory and the file names."""

    writer: BlockWriter
    fs: pafs.FileSystem
    directory: str
    write_id: str
    partition_cols: tuple[str, ...]


def _write_groups(bundles: Iterator[RefBundle], target: _Target, threshold: int) -> None:
    """Write runs of consecutive blocks holding at least ``threshold`` rows, a file each."""
    bound = DataContext.get_current().in_flight_bound()
    in_flight: list[Any] = []
    index = 0

    def submit(group: list[Any]) -> None:
        nonlocal index
        name = f"{target.directory}/{target.write_id}_{index:06d}.{target.writer.extension}"
        in_flight.append(
            _write_task.remote(target.writer, target.fs, name, target.partition_cols, *group)
        )
        index += 1
        while len(in_flight) >= bound:
            ready, in_flight[:] = nebula.wait(in_flight, num_returns=1)
            nebula.get(ready)

    group: list[Any] = []
    rows = 0
    try:
        for bundle in bundles:
            if bundle.meta.num_rows == 0:
                continue
            group.append(bundle.ref)
            rows += bundle.meta.num_rows
            if rows >= threshold:
                submit(group)
                group, rows = [], 0
        if group:
            submit(group)
        nebula.get(in_flight)
    finally:
        # Stop the upstream plan (and release what it holds) even when a write failed.
        close = getattr(bundles, "close", None)
        if close is not None:
            close()
