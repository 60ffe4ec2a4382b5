"""Small helpers shared by the loggers and the results."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["flatten", "flatten_metrics", "json_safe"]


def flatten(result: dict[str, Any], separator: str = "/", prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, separator, name + separator))
        else:
            flat[name] = value
    return flat


def flatten_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its ``config``, nested dicts flattened: one pass, as loggers need it."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            if key != "config":
                flat.update(flatten(value, "/", f"{key}/"))
        else:
            flat[key] = value
    return flat


def json_safe(value: Any) -> Any:
    """A stand-in ``json.dumps`` can write for values it cannot (numpy scalars, objects)."""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return repr(value)
