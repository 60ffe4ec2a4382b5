"""Numpy batches to ``torch.Tensor`` batches, for ``iter_torch_batches`` (torch is optional)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "iter_torch_batches needs PyTorch: pip install torch (or use iter_batches, which "
            "gives numpy arrays)."
        ) from exc
    return torch


def to_torch(
    batches: Iterator[Mapping[str, np.ndarray]],
    dtypes: Any,
    device: Any,
    collate_fn: Callable[[dict[str, np.ndarray]], Any] | None,
) -> Iterator[Any]:
    torch = _import_torch()
    if collate_fn is not None:
        for batch in batches:
            yield collate_fn(dict(batch))
        return
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = torch.device(device) if device is not None else None
    for batch in batches:
        yield {name: _tensor(torch, batch[name], name, dtypes, target) for name in batch}


def _tensor(torch: Any, values: np.ndarray, name: str, dtypes: Any, device: Any) -> Any:
    dtype = dtypes.get(name) if isinstance(dtypes, Mapping) else dtypes
    if values.dtype == object:
        try:
            values = np.stack(list(values))  # a column of equal-shape arrays
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"column {name!r} holds {values.dtype} values that do not make a tensor; "
                "drop or convert it first (select_columns / map_batches), or pass collate_fn."
            ) from exc
    if not values.flags.writeable:
        values = values.copy()  # torch tensors may be written to; blocks are shared memory
    return torch.as_tensor(values, dtype=dtype, device=device)
