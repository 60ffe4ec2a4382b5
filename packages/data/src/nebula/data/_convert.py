"""Datasets to and from object references of DataFrames, Arrow tables and numpy arrays,
and from Hugging Face datasets: each conversion runs in one task per block."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from nebula.data import _blocks
from nebula.data._blocks import Block, BlockMetadata, RefBundle

import nebula


@nebula.remote(num_returns=2)
def _as_block(value: Any) -> tuple[Block, BlockMetadata]:
    block = value if isinstance(value, pa.Table) else _blocks.from_batch(_numpy_columns(value))
    return block, BlockMetadata.of(block)


def _numpy_columns(value: Any) -> Any:
    """A bare array stands for a column named ``data``, as ``from_numpy`` makes it."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return {"data": value}
    return value


@nebula.remote
def _block_to(block: Block, batch_format: str, column: str | None) -> Any:
    if column is not None:
        if column not in block.column_names:
            raise KeyError(f"no column {column!r}; the dataset has {block.column_names}.")
        return _blocks.to_batch(block.select([column]), "numpy")[column]
    if batch_format == "pandas":
        return _blocks.to_batch(block, "pandas")
    return dict(_blocks.to_batch(block, "numpy"))


def bundles_from_refs(refs: Any, what: str) -> list[RefBundle]:
    """Blocks made (in tasks) from references to DataFrames, tables or numpy arrays."""
    ref_list = [refs] if isinstance(refs, nebula.ObjectRef) else list(refs)
    for ref in ref_list:
        if not isinstance(ref, nebula.ObjectRef):
            raise TypeError(f"{what} takes ObjectRefs, got {type(ref).__name__}.")
    pairs = [_as_block.remote(ref) for ref in ref_list]
    metas = nebula.get([meta for _, meta in pairs])
    return [RefBundle(block, meta) for (block, _), meta in zip(pairs, metas)]


def refs_of(bundles: Sequence[RefBundle], batch_format: str, column: str | None) -> list[Any]:
    """One reference per block to it as a DataFrame, or as numpy arrays."""
    return [_block_to.remote(bundle.ref, batch_format, column) for bundle in bundles]


def huggingface_table(dataset: Any) -> pa.Table:
    """The Arrow table behind a ``datasets.Dataset`` (its rows, in order)."""
    data = getattr(dataset, "data", None)
    table = getattr(data, "table", None)
    if not isinstance(table, pa.Table):
        raise TypeError(
            "from_huggingface takes a datasets.Dataset (a map-style Hugging Face dataset), "
            f"got {type(dataset).__name__}; for an IterableDataset use from_items(list(ds))."
        )
    indices = getattr(dataset, "_indices", None)
    if indices is not None:  # a shuffled or selected view: its rows, in its order
        table = table.take(indices.column(0))
    return table


def import_soon(module: str) -> None:
    """Start importing ``module`` on a thread of its own, unless it is imported already.

    ``to_pandas`` needs pandas only once the dataset's last block is in, and importing it
    takes a fifth of a second: imported while the driver waits on the dataset's tasks, it
    is ready by then. The import is the same one the caller would make (Python's import
    lock makes the caller wait for it, if it comes first); an error is the caller's to
    see when it imports the module itself.
    """
    if module in sys.modules:
        return
    thread = threading.Thread(target=_import_quietly, args=(module,), daemon=True)
    thread.name = f"nebula-data-import-{module}"
    thread.start()


def _import_quietly(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception:  # the caller's own import says what is wrong
        pass
