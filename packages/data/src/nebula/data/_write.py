"""Writing a dataset into a directory: blocks grouped into files, one Nebula task per file.

The driver streams the dataset's blocks (as references), groups consecutive ones until a
group holds ``min_rows_per_file`` rows (by default each block is its own group), and hands
each group to a write task together with its file name ``{write_id}_{index:06d}.{ext}``.
The write id is fresh per write, so two writes into one directory never clobber each other,
and the index keeps the files in the dataset's order. At most the executor's in-flight
bound of write tasks run at once, which also bounds how far the upstream plan runs ahead.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from nebula.data import _blocks
from nebula.data._blocks import Block, RefBundle
from nebula.data._executor import DataContext
from nebula.data._read import PathLike, error_naming, resolve_path

import nebula


class BlockWriter:
    """How one block becomes one file's bytes; instances are shipped to write tasks."""

    extension: ClassVar[str]

    def write(self, block: Block, stream: pa.NativeFile) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class ParquetWriter(BlockWriter):
    extension: ClassVar[str] = "parquet"
    arrow_args: dict[str, Any] = field(default_factory=dict)

    def write(self, block: Block, stream: pa.NativeFile) -> None:
        pq.write_table(block, stream, **self.arrow_args)


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


# Compact separators, as JSON-lines files are conventionally written.
_JSON_OPTIONS: dict[str, Any] = {"separators": (",", ":"), "allow_nan": False}


def _json_line(row: dict[str, Any]) -> str:
    try:
        text = json.dumps(row, default=_json_default, **_JSON_OPTIONS)
    except ValueError:
        text = json.dumps(_json_value(row), default=_json_default, **_JSON_OPTIONS)
    return text + "\n"


def _write_file(writer: BlockWriter, fs: pafs.FileSystem, path: str, *blocks: Block) -> int:
    block = _blocks.concat(blocks)
    try:
        with fs.open_output_stream(path, compression=None) as stream:
            writer.write(block, stream)
    except Exception as exc:
        raise error_naming(exc, f"could not write the file {path!r}: {exc}") from exc
    return int(block.num_rows)


_write_task = nebula.remote(_write_file)


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
    bundles: Iterator[RefBundle],
    writer: BlockWriter,
    path: PathLike,
    *,
    filesystem: Any,
    min_rows_per_file: int | None,
    method: str,
) -> None:
    """Write the streamed blocks as files under ``path``; returns once every file is written."""
    check_min_rows_per_file(min_rows_per_file)
    fs, directory = _output_directory(path, filesystem, method)
    write_id = uuid.uuid4().hex[:16]
    bound = DataContext.get_current().in_flight_bound()
    threshold = min_rows_per_file or 1
    in_flight: list[Any] = []
    index = 0

    def submit(group: list[Any]) -> None:
        nonlocal index
        name = f"{directory}/{write_id}_{index:06d}.{writer.extension}"
        in_flight.append(_write_task.remote(writer, fs, name, *group))
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
