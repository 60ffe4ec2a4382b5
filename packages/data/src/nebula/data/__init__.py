"""Nebula data: streaming datasets on Arrow blocks, and parallel iterators (``nebula.data.iter``)."""  # noqa: E501

from __future__ import annotations

from nebula.data._dataset import Dataset, MaterializedDataset
from nebula.data._executor import DataContext
from nebula.data._grouped import GroupedData
from nebula.data._iterator import DataIterator
from nebula.data._sources import (
    from_arrow,
    from_items,
    from_numpy,
    from_pandas,
    range,
    read_binary_files,
    read_csv,
    read_json,
    read_parquet,
    read_text,
)

__all__ = [
    "DataContext",
    "DataIterator",
    "Dataset",
    "GroupedData",
    "MaterializedDataset",
    "from_arrow",
    "from_items",
    "from_numpy",
    "from_pandas",
    "range",
    "read_binary_files",
    "read_csv",
    "read_json",
    "read_parquet",
    "read_text",
]
