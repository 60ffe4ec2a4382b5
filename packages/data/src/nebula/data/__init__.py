"""Nebula data: streaming datasets on Arrow blocks, and parallel iterators (``nebula.data.iter``)."""  # noqa: E501

from __future__ import annotations

from nebula.data._dataset import Dataset, GroupedData, MaterializedDataset
from nebula.data._executor import DataContext
from nebula.data._sources import (
    from_arrow,
    from_items,
    from_numpy,
    from_pandas,
    range,
    read_csv,
    read_json,
    read_parquet,
)

__all__ = [
    "DataContext",
    "Dataset",
    "GroupedData",
    "MaterializedDataset",
    "from_arrow",
    "from_items",
    "from_numpy",
    "from_pandas",
    "range",
    "read_csv",
    "read_json",
    "read_parquet",
]
