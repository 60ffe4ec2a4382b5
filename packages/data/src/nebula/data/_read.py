"""Sources: read tasks over files (parquet, CSV, JSON, text, binary) and ranges.

Paths are resolved on the driver, all readers and writers alike, by :func:`resolve_path`
and :func:`expand_paths`: a path may be a file, a directory (read recursively, skipping
hidden and ``_``-prefixed entries), a glob, or a URI such as ``s3://bucket/prefix`` that
pyarrow's filesystems understand; ``filesystem=`` names the filesystem explicitly. Each
file becomes one read task, run later inside a Nebula task, which carries the (picklable)
filesystem with it.
"""

from __future__ import annotations

import inspect
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq
from nebula.data._blocks import Block, from_batch
from nebula.data._deferred import DeferredBlock, deferrable
from nebula.data._expressions import filter_block
from nebula.data._logical import Read, ReadTask
from nebula.data._partitioning import partition_schema, path_values, with_partition_columns
from nebula.data._zero_copy import arrow_from_numpy

import nebula

PathLike = str | os.PathLike[str]
Paths = PathLike | Sequence[PathLike]

_GLOB_CHARS = frozenset("*?[")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PATH_COLUMN = "path"


# ---- path resolution ------------------------------------------------------------------


def _local_path(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _as_pyarrow_filesystem(filesystem: Any) -> pafs.FileSystem:
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    try:
        import fsspec
    except ImportError:
        fsspec = None
    if fsspec is not None and isinstance(filesystem, fsspec.AbstractFileSystem):
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    raise TypeError(
        f"filesystem must be a pyarrow.fs.FileSystem (or an fsspec filesystem), got "
        f"{type(filesystem).__name__}."
    )


def _strip_scheme(uri: str) -> str:
    """``s3://bucket/key?x=1`` -> ``bucket/key``: the path an explicit filesystem expects."""
    scheme, rest = uri.split("://", 1)
    rest = rest.split("?", 1)[0]
    if scheme.lower() in ("file", "local", "hdfs", "viewfs"):
        # These name a host (often empty) before an absolute path.
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return rest.split("@", 1)[-1] if "@" in rest.split("/", 1)[0] else rest


def resolve_path(path: PathLike, filesystem: Any = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``path`` and the path as that filesystem names it.

    Without ``filesystem``, a plain path is local and a URI picks its filesystem from its
    scheme (credentials and options may ride in the URI, as pyarrow allows).
    """
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"a path must be a str or os.PathLike of str, got {text!r}.")
    is_uri = bool(_SCHEME.match(text))
    if filesystem is not None:
        fs = _as_pyarrow_filesystem(filesystem)
        if is_uri:
            text = _strip_scheme(text)
        if isinstance(fs, pafs.LocalFileSystem):
            text = _local_path(text)
        return fs, text
    if not is_uri:
        return pafs.LocalFileSystem(), _local_path(text)
    if text.lower().startswith("file://"):
        return pafs.LocalFileSystem(), _local_path(_strip_scheme(text))
    try:
        return pafs.FileSystem.from_uri(text)  # type: ignore[no-any-return]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(
            f"cannot open the URI {text!r}: {exc}; check its scheme or pass filesystem=."
        ) from exc


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _relative_parts(path: str, base: str) -> list[str]:
    return path[len(base) :].strip("/").split("/")


def _list_directory(fs: pafs.FileSystem, directory: str) -> list[str]:
    base = directory.rstrip("/") or "/"
    selector = pafs.FileSelector(base, recursive=True)
    return sorted(
        info.path
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File
        and not any(_hidden(part) for part in _relative_parts(info.path, base))
    )


def _part_matches(name: str, pattern: str) -> bool:
    """One path component against one glob component; wildcards skip hidden names."""
    if _hidden(name) and not pattern.startswith(name[0]):
        return False
    return fnmatchcase(name, pattern)


def _parts_match(names: list[str], patterns: list[str]) -> bool:
    if not patterns:
        return not names
    if patterns[0] == "**":
        return any(
            _parts_match(names[skip:], patterns[1:])
            for skip in range(len(names) + 1)
            if not any(_hidden(name) for name in names[:skip])
        )
    return (
        bool(names)
        and _part_matches(names[0], patterns[0])
        and _parts_match(names[1:], patterns[1:])
    )


def _glob(fs: pafs.FileSystem, pattern: str) -> list[pafs.FileInfo]:
    """Entries of ``fs`` matching ``pattern``; listing starts below its literal prefix."""
    parts = pattern.split("/")
    first = next(index for index, part in enumerate(parts) if _GLOB_CHARS & set(part))
    base = "/".join(parts[:first]) or ("/" if pattern.startswith("/") else "")
    rest = parts[first:]
    if "**" in rest:
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        return [
            info
            for info in fs.get_file_info(selector)
            if _parts_match(_relative_parts(info.path, base), rest)
        ]
    level = [base]
    matches: list[pafs.FileInfo] = []
    for depth, part in enumerate(rest):
        last = depth == len(rest) - 1
        matches = [
            info
            for directory in level
            for info in fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
            if _part_matches(info.base_name, part)
            and (last or info.type == pafs.FileType.Directory)
        ]
        level = [info.path for info in matches]
    return matches


def _files_under(fs: pafs.FileSystem, path: str, raw: str, reader: str) -> list[str]:
    if _GLOB_CHARS & set(path) and fs.get_file_info(path).type == pafs.FileType.NotFound:
        files: list[str] = []
        for info in _glob(fs, path):
            if info.type == pafs.FileType.Directory:
                files.extend(_list_directory(fs, info.path))
            elif info.type == pafs.FileType.File:
                files.append(info.path)
        if not files:
            raise FileNotFoundError(f"{reader}: no file matches the pattern {raw!r}.")
        return sorted(dict.fromkeys(files))
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(
            f"{reader}: the path {raw!r} does not exist; pass an existing file, directory, "
            "glob or URI."
        )
    if info.type == pafs.FileType.Directory:
        return _list_directory(fs, path)
    return [path]


def expand_paths(
    paths: Paths,
    filesystem: Any = None,
    reader: str = "read",
    file_extensions: Sequence[str] | None = None,
) -> list[tuple[pafs.FileSystem, str, str | None]]:
    """Every file the given paths name, in a stable order; a path naming nothing raises.

    Each comes with the directory it was found under (None for a file or glob named
    directly): hive partitions are read from the path in between. ``file_extensions``
    (``["csv", "csv.gz"]``) keeps only the files ending in one of them.
    """
    if isinstance(paths, (str, os.PathLike)):
        raw_paths: list[PathLike] = [paths]
    elif isinstance(paths, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in paths):
        raw_paths = list(paths)
    else:
        raise TypeError(
            f"{reader}: paths must be a path or URI string, or a list of them; got {paths!r}."
        )
    if not raw_paths:
        raise ValueError(f"{reader}: no paths given; pass a file, directory, glob or URI.")
    if isinstance(file_extensions, str):
        file_extensions = [file_extensions]
    suffixes = tuple("." + ext.lower().lstrip(".") for ext in file_extensions or ())
    files: list[tuple[pafs.FileSystem, str, str | None]] = []
    for raw in raw_paths:
        fs, path = resolve_path(raw, filesystem)
        base = path if fs.get_file_info(path).type == pafs.FileType.Directory else None
        for file in _files_under(fs, path, os.fspath(raw), reader):
            if not suffixes or file.lower().endswith(suffixes):
                files.append((fs, file, base))
    if not files:
        shown = [os.fspath(raw) for raw in raw_paths]
        kind = f"files ending in {', '.join(suffixes)}" if suffixes else "files"
        raise FileNotFoundError(f"{reader}: the paths {shown!r} contain no {kind}.")
    return files


def error_naming(exc: BaseException, message: str) -> BaseException:
    """An error of ``exc``'s class (or the nearest base that takes a message) saying ``message``.

    Keeping the class lets ``except pyarrow.ArrowInvalid`` (or ``ValueError``) still catch
    it; the caller raises it ``from exc`` so the original stays attached as the cause.
    """
    for cls in type(exc).__mro__:
        if not issubclass(cls, Exception):
            continue
        try:
            return cls(message)
        except Exception:  # a class whose constructor wants more arguments
            continue
    return RuntimeError(message)


# ---- file formats ---------------------------------------------------------------------


class FileFormat:
    """How one file becomes one block; instances are shipped to read tasks."""

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        raise NotImplementedError

    counts_rows = False  # whether ``num_rows`` can count a file without reading its rows

    def num_rows(self, fs: pafs.FileSystem, path: str) -> int:
        """The file's row count, from its metadata (formats whose ``counts_rows``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ParquetFormat(FileFormat):
    columns: list[str] | None = None
    # Rows to keep (evaluated in Arrow on each file before ``columns`` are selected).
    row_filter: Any = None

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        # One file needs no dataset machinery (importing it costs a worker a fifth of a
        # second). Remote files are pre-buffered: their column chunks come in few large
        # requests. A local file is read a page at a time, so that neither a whole column
        # chunk nor its decompressed copy sits in memory beside the decoded column. The
        # columns are decoded one after the other: the executor runs a read task per CPU
        # already, and decoding them all at once would hold all their buffers at once.
        # Together: a 750k-row file of 50 MB peaks at 75 MB of Arrow memory instead of 115.
        columns = self.columns if self.row_filter is None else None
        with _open_parquet(fs, path) as parquet:
            block = parquet.read(columns=columns, use_threads=False)
        if self.row_filter is None:
            return block
        block = filter_block(block, self.row_filter)
        return block if self.columns is None else block.select(self.columns)

    def open_deferred(
        self, fs: pafs.FileSystem, path: str, explain: Callable[[Exception], BaseException]
    ) -> DeferredBlock | None:
        """The file with its columns decoded on use, or None where the read must decode the
        whole file (a row filter)."""
        if self.row_filter is not None:
            return None
        parquet = _open_parquet(fs, path)
        if not deferrable(parquet, self.columns):
            parquet.close()
            return None
        return DeferredBlock(parquet, lambda: _open_parquet(fs, path), explain, self.columns)

    @property
    def counts_rows(self) -> bool:  # type: ignore[override]
        return self.row_filter is None

    def num_rows(self, fs: pafs.FileSystem, path: str) -> int:
        with fs.open_input_file(path) as stream:
            return int(pq.ParquetFile(stream).metadata.num_rows)  # the footer only


def _open_parquet(fs: pafs.FileSystem, path: str) -> pq.ParquetFile:
    """The file, opened by ``ParquetFile`` itself: closing it then closes the file (a
    ``ParquetFile`` leaves a stream it was handed open)."""
    local = isinstance(fs, pafs.LocalFileSystem)
    options: dict[str, Any] = {"buffer_size": 1 << 20} if local else {"pre_buffer": True}
    return pq.ParquetFile(path, filesystem=fs, **options)


@dataclass(frozen=True)
class CsvFormat(FileFormat):
    options: dict[str, Any] = field(default_factory=dict)

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        with fs.open_input_stream(path) as stream:
            return pacsv.read_csv(stream, **self.options)


@dataclass(frozen=True)
class JsonFormat(FileFormat):
    options: dict[str, Any] = field(default_factory=dict)

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        with fs.open_input_stream(path) as stream:
            return pajson.read_json(stream, **self.options)


@dataclass(frozen=True)
class TextFormat(FileFormat):
    """One row per line (``\n`` or ``\r\n``); the newline ending the file adds no row."""

    encoding: str = "utf-8"
    drop_empty_lines: bool = True

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        with fs.open_input_stream(path) as stream:
            text = stream.read().decode(self.encoding)
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if self.drop_empty_lines:
            lines = [line for line in lines if line.strip()]
        return pa.table({"text": pa.array(lines, type=pa.string())})


@dataclass(frozen=True)
class BinaryFormat(FileFormat):
    """The whole file, undecoded (a ``.gz`` file stays compressed), as one row."""

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        with fs.open_input_stream(path, compression=None) as stream:
            data = stream.read()
        return pa.table({"bytes": pa.array([data], type=pa.binary())})


@dataclass(frozen=True)
class NumpyFormat(FileFormat):
    """A ``.npy`` file as rows of a column ``data`` (its first axis: one row each)."""

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        with fs.open_input_stream(path) as stream:
            array = np.load(io.BytesIO(stream.read()), allow_pickle=False)
        return from_batch({"data": array})


IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp")


@dataclass(frozen=True)
class ImageFormat(FileFormat):
    """An image file as one row: a ``uint8`` array (height, width[, channels]) in ``image``,
    converted to ``mode`` ("RGB", "L", ...) and resized to ``size`` (height, width) when
    given. Decoding needs Pillow."""

    size: tuple[int, int] | None = None
    mode: str | None = None

    def read(self, fs: pafs.FileSystem, path: str) -> Block:
        image_module = import_pillow()
        with fs.open_input_stream(path, compression=None) as stream:
            image = image_module.open(io.BytesIO(stream.read()))
            image.load()
        if self.mode is not None and image.mode != self.mode:
            image = image.convert(self.mode)
        if self.size is not None:
            height, width = self.size
            image = image.resize((width, height))
        array = np.asarray(image)
        return from_batch({"image": np.ascontiguousarray(array).reshape((1, *array.shape))})


def import_pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("read_images needs Pillow to decode images: pip install pillow") from exc
    return Image


def check_options(reader: str, function: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Refuse now, not in every read task, options ``function`` (pyarrow's reader) lacks."""
    accepted = set(inspect.signature(function).parameters) - {"input_file"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(
            f"{reader} got unexpected argument(s) {unknown}; it passes on to pyarrow only "
            f"{', '.join(sorted(accepted))}."
        )
    return options


def read_file(
    file_format: FileFormat,
    fs: pafs.FileSystem,
    path: str,
    include_paths: bool,
    reader: str,
    partitions: tuple[tuple[str, str | None], ...] = (),
) -> Block:
    try:
        block = file_format.read(fs, path)
    except Exception as exc:
        raise _read_error(reader, path, exc) from exc
    block = with_partition_columns(block, partitions)
    if include_paths:
        column = pa.array([path] * block.num_rows, type=pa.string())
        block = block.append_column(_PATH_COLUMN, column)
    return block


def open_file_deferred(
    file_format: FileFormat,
    fs: pafs.FileSystem,
    path: str,
    include_paths: bool,
    reader: str,
    partitions: tuple[tuple[str, str | None], ...] = (),
) -> DeferredBlock | None:
    """What :func:`read_file` reads, as a block whose columns are decoded on use; None
    where the file must be read whole (see :mod:`nebula.data._deferred`)."""
    if include_paths or partitions or not isinstance(file_format, ParquetFormat):
        return None

    explain = partial(_read_error, reader, path)
    try:
        return file_format.open_deferred(fs, path, explain)
    except Exception as exc:
        raise explain(exc) from exc


def _read_error(reader: str, path: str, exc: Exception) -> BaseException:
    """``exc`` as the error a read raises: of its type, naming the reader and the file."""
    return error_naming(exc, f"{reader}: could not read the file {path!r}: {exc}")


def file_row_count(read: Read) -> int | None:
    """``read``'s rows counted from file metadata (a task per file), if its formats can."""
    tasks = list(read.read_tasks)
    if not tasks or not all(task.fn is read_file and task.args[0].counts_rows for task in tasks):
        return None
    counts = nebula.get(
        [_count_rows.remote(task.args[0], task.args[1], task.args[2]) for task in tasks]
    )
    return int(sum(counts))


def _count_file_rows(file_format: FileFormat, fs: pafs.FileSystem, path: str) -> int:
    try:
        return file_format.num_rows(fs, path)
    except Exception as exc:
        raise error_naming(exc, f"could not read the row count of {path!r}: {exc}") from exc


_count_rows = nebula.remote(_count_file_rows)


def _read_task(
    file_format: FileFormat,
    file: tuple[pafs.FileSystem, str, str | None],
    include_paths: bool,
    reader: str,
) -> ReadTask:
    fs, path, base = file
    partitions = tuple(path_values(path, base))
    args = (file_format, fs, path, include_paths, reader, partitions)
    return ReadTask(read_file, args, deferred=open_file_deferred)


def _with_path(schema: pa.Schema, include_paths: bool) -> pa.Schema:
    return schema.append(pa.field(_PATH_COLUMN, pa.string())) if include_paths else schema


def read_files(
    label: str,
    reader: str,
    paths: Paths,
    file_format: FileFormat,
    *,
    filesystem: Any,
    include_paths: bool,
    file_extensions: Sequence[str] | None = None,
    schema: pa.Schema | Callable[[pafs.FileSystem, str], pa.Schema] | None = None,
    rows_per_file: int | None = None,
) -> Read:
    """A read of one block per file of ``paths``, each read by ``file_format`` in a task.

    ``schema``, when the format fixes it, or how to read it from the first file; partition
    and path columns are added to it.
    """
    files = expand_paths(paths, filesystem, reader, file_extensions)
    tasks = [_read_task(file_format, file, include_paths, reader) for file in files]
    fs, first, base = files[0]
    if callable(schema):
        schema = schema(fs, first)
    if schema is not None:
        schema = _with_path(partition_schema(schema, path_values(first, base)), include_paths)
    num_rows = rows_per_file * len(files) if rows_per_file is not None else None
    return Read(None, label, tasks, schema=schema, num_rows=num_rows)


def parquet_schema(columns: list[str] | None) -> Callable[[pafs.FileSystem, str], pa.Schema]:
    """How to read a Parquet file's schema (``columns`` of it) for :func:`read_files`."""
    return lambda fs, path: _parquet_schema(fs, path, columns)


def _parquet_schema(fs: pafs.FileSystem, path: str, columns: list[str] | None) -> pa.Schema:
    try:
        schema = pq.read_schema(path, filesystem=fs)
    except Exception as exc:
        message = f"read_parquet: could not read the schema of {path!r}: {exc}"
        raise error_naming(exc, message) from exc
    if columns is None:
        return schema
    missing = [name for name in columns if name not in schema.names]
    if missing:
        raise ValueError(
            f"read_parquet: column(s) {missing} not in {path!r}, which has {schema.names}."
        )
    return pa.schema([schema.field(name) for name in columns])


def csv_format(options: dict[str, Any]) -> CsvFormat:
    return CsvFormat(check_options("read_csv", pacsv.read_csv, options))


def json_format(options: dict[str, Any]) -> JsonFormat:
    return JsonFormat(check_options("read_json", pajson.read_json, options))


def image_format(size: tuple[int, int] | None, mode: str | None) -> ImageFormat:
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError(f"size must be (height, width) in pixels, got {size!r}.")
    import_pillow()  # fail here, not in every read task
    return ImageFormat(None if size is None else (size[0], size[1]), mode)


# ---- ranges ---------------------------------------------------------------------------


def _range_block(start: int, stop: int) -> Block:
    ids = arrow_from_numpy(np.arange(start, stop, dtype=np.int64))
    return pa.table({"id": ids})


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
