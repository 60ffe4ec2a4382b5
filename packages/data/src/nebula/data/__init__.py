"""Nebula data: streaming datasets on Arrow blocks, and parallel iterators (``nebula.data.iter``).

The public names load on first use: every Nebula process loads this package's plugin
(``nebula.data._plugin``), and only those that use datasets should pay for importing pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nebula.data._compute import ActorPoolStrategy, TaskPoolStrategy
    from nebula.data._dataset import Dataset, MaterializedDataset
    from nebula.data._executor import DataContext, ExecutionOptions, ExecutionResources
    from nebula.data._grouped import GroupedData
    from nebula.data._iterator import DataIterator
    from nebula.data._registries import Rule
    from nebula.data._sources import (
        from_arrow,
        from_arrow_refs,
        from_huggingface,
        from_items,
        from_numpy,
        from_numpy_refs,
        from_pandas,
        from_pandas_refs,
        range,
        read_binary_files,
        read_csv,
        read_images,
        read_json,
        read_numpy,
        read_parquet,
        read_text,
    )

# Public name -> the private module defining it.
_EXPORTS = {
    "ActorPoolStrategy": "_compute",
    "TaskPoolStrategy": "_compute",
    "DataContext": "_executor",
    "ExecutionOptions": "_executor",
    "ExecutionResources": "_executor",
    "DataIterator": "_iterator",
    "Dataset": "_dataset",
    "GroupedData": "_grouped",
    "MaterializedDataset": "_dataset",
    "Rule": "_registries",
    "from_arrow": "_sources",
    "read_numpy": "_sources",
    "from_pandas_refs": "_sources",
    "from_numpy_refs": "_sources",
    "from_huggingface": "_sources",
    "from_arrow_refs": "_sources",
    "from_items": "_sources",
    "from_numpy": "_sources",
    "from_pandas": "_sources",
    "range": "_sources",
    "read_binary_files": "_sources",
    "read_csv": "_sources",
    "read_images": "_sources",
    "read_json": "_sources",
    "read_parquet": "_sources",
    "read_text": "_sources",
}

__all__ = [
    "ActorPoolStrategy",
    "TaskPoolStrategy",
    "DataContext",
    "DataIterator",
    "ExecutionOptions",
    "ExecutionResources",
    "Dataset",
    "GroupedData",
    "MaterializedDataset",
    "Rule",
    "from_arrow",
    "read_numpy",
    "from_pandas_refs",
    "from_numpy_refs",
    "from_huggingface",
    "from_arrow_refs",
    "from_items",
    "from_numpy",
    "from_pandas",
    "range",
    "read_binary_files",
    "read_csv",
    "read_images",
    "read_json",
    "read_parquet",
    "read_text",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nebula.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nebula.data.{module}"), name)
    globals()[name] = value
    return value


_NOT_PUBLIC = {"annotations", "importlib", "TYPE_CHECKING", "Any"}


def __dir__() -> list[str]:
    loaded = {name for name in globals() if not name.startswith("_")} - _NOT_PUBLIC
    return sorted(loaded | set(__all__))
