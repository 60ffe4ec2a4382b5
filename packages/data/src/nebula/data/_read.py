"""Sources: read tasks over files (parquet, CSV, JSON) and ranges, resolved on the driver.

Paths may be files, directories (read recursively, skipping hidden and ``_``-prefixed
files) or local globs; a path with a scheme (``s3://...``) goes through pyarrow's
filesystems. Each file becomes one read task, run later inside a Nebula task.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq
from nebula.data._blocks import Block
from nebula.data._logical import Read, ReadTask

_GLOB_CHARS = frozenset("*?[")


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        return pafs.FileSystem.from_uri(path)  # type: ignore[no-any-return]
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def _visible(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith((".", "_"))


def expand_paths(paths: str | Sequence[str], reader: str) -> list[tuple[pafs.FileSystem, str]]:
    """Every file the given paths name, in a stable order; a path naming nothing raises."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [os.fspath(paths)]
    files: list[tuple[pafs.FileSystem, str]] = []
    for raw in paths:
        path = os.fspath(raw)
        if "://" not in path and _GLOB_CHARS & set(path):
            matches = sorted(glob.glob(os.path.expanduser(path), recursive=True))
            if not matches:
                raise FileNotFoundError(f"{reader}: no file matches the pattern {path!r}.")
            for match in matches:
                files.extend(expand_paths(match, reader))
            continue
        fs, resolved = _filesystem(path)
        info = fs.get_file_info(resolved)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(
                f"{reader}: the path {path!r} does not exist; pass an existing file, "
                "directory or glob."
            )
        if info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(resolved, recursive=True)
            found = [
                item.path
                for item in fs.get_file_info(selector)
                if item.type == pafs.FileType.File
                and _visible(os.path.relpath(item.path, resolved).split(os.sep)[0])
                and _visible(item.path)
            ]
            files.extend((fs, file) for file in sorted(found))
        else:
            files.append((fs, resolved))
    if not files:
        raise FileNotFoundError(f"{reader}: the paths {list(paths)!r} contain no files.")
    return files


def _read_parquet_file(fs: pafs.FileSystem, path: str, columns: list[str] | None) -> Block:
    return pq.read_table(path, filesystem=fs, columns=columns)


def _read_csv_file(fs: pafs.FileSystem, path: str, options: dict[str, Any]) -> Block:
    with fs.open_input_stream(path) as stream:
        return pacsv.read_csv(stream, **options)


def _read_json_file(fs: pafs.FileSystem, path: str, options: dict[str, Any]) -> Block:
    with fs.open_input_stream(path) as stream:
        return pajson.read_json(stream, **options)


def read_parquet(paths: str | Sequence[str], *, columns: list[str] | None = None) -> Read:
    files = expand_paths(paths, "read_parquet")
    tasks = [ReadTask(_read_parquet_file, (fs, path, columns)) for fs, path in files]
    fs, first = files[0]
    schema = pq.read_schema(first, filesystem=fs)
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    return Read(None, "ReadParquet", tasks, schema=schema)


def read_csv(paths: str | Sequence[str], **options: Any) -> Read:
    files = expand_paths(paths, "read_csv")
    tasks = [ReadTask(_read_csv_file, (fs, path, options)) for fs, path in files]
    return Read(None, "ReadCSV", tasks)


def read_json(paths: str | Sequence[str], **options: Any) -> Read:
    """Newline-delimited JSON records, one object per line."""
    files = expand_paths(paths, "read_json")
    tasks = [ReadTask(_read_json_file, (fs, path, options)) for fs, path in files]
    return Read(None, "ReadJSON", tasks)


def _range_block(start: int, stop: int) -> Block:
    return pa.table({"id": pa.array(range(start, stop), type=pa.int64())})


def read_range(n: int, parallelism: int) -> Read:
    if n < 0:
        raise ValueError(f"range(n) needs n >= 0, got {n}.")
    parts = max(1, min(n, parallelism))
    base, extra = divmod(n, parts)
    tasks, start = [], 0
    for index in range(parts):
        stop = start + base + (1 if index < extra else 0)
        tasks.append(ReadTask(_range_block, (start, stop)))
        start = stop
    schema = pa.schema([("id", pa.int64())])
    return Read(None, "ReadRange", tasks, schema=schema, num_rows=n)
