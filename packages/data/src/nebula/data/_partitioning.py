"""Hive-style partitioned directories: ``year=2024/country=FR/part.parquet``.

Writing with ``partition_cols`` puts each row in the directory named by its values in those
columns (the columns leave the files); reading a directory adds a string column for each
``key=value`` directory between it and each file, as Hive, Spark and pyarrow lay them out.
A null value is written as ``__HIVE_DEFAULT_PARTITION__`` and read back as null.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
from nebula.data._blocks import Block

NULL_VALUE = "__HIVE_DEFAULT_PARTITION__"


def path_values(path: str, base: str | None) -> list[tuple[str, str | None]]:
    """The ``(key, value)`` pairs of the ``key=value`` directories from ``base`` to ``path``."""
    if base is None:
        return []
    relative = posixpath.relpath(posixpath.dirname(path), base.rstrip("/") or "/")
    pairs: list[tuple[str, str | None]] = []
    for part in relative.split("/"):
        key, found, value = part.partition("=")
        if found and key:
            pairs.append((unquote(key), None if value == NULL_VALUE else unquote(value)))
    return pairs


def with_partition_columns(block: Block, pairs: Sequence[tuple[str, str | None]]) -> Block:
    for key, value in pairs:
        if key in block.column_names:
            continue  # the file's own column wins
        block = block.append_column(key, pa.array([value] * block.num_rows, type=pa.string()))
    return block


def partition_schema(schema: pa.Schema, pairs: Sequence[tuple[str, str | None]]) -> pa.Schema:
    for key, _ in pairs:
        if key not in schema.names:
            schema = schema.append(pa.field(key, pa.string()))
    return schema


def check_partition_cols(partition_cols: Sequence[str] | None) -> tuple[str, ...]:
    if partition_cols is None:
        return ()
    if isinstance(partition_cols, str):
        partition_cols = [partition_cols]
    columns = tuple(partition_cols)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"partition_cols must name columns, got {partition_cols!r}.")
    return columns


def split_by_partition(block: Block, columns: Sequence[str]) -> Iterator[tuple[str, Block]]:
    """``(directory, rows)`` for each combination of values of ``columns`` in ``block``; the
    rows keep their order and lose the partition columns."""
    missing = [c for c in columns if c not in block.column_names]
    if missing:
        raise KeyError(
            f"partition_cols {missing} are not columns of the dataset: {block.column_names}."
        )
    keys = block.select(list(columns)).append_column(
        "__row", pa.array(np.arange(block.num_rows, dtype=np.int64))
    )
    grouped = keys.group_by(list(columns), use_threads=False).aggregate([("__row", "list")])
    rest = block.drop_columns(list(columns))
    for index in range(grouped.num_rows):
        parts = []
        for column in columns:
            value = grouped.column(column)[index].as_py()
            text = NULL_VALUE if value is None else quote(str(value), safe="")
            parts.append(f"{quote(column, safe='')}={text}")
        rows = grouped.column("__row_list")[index].values
        yield "/".join(parts), rest.take(rows)
