"""Small helpers shared by the loggers and the results."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["flat_view", "flatten", "flatten_metrics", "json_safe", "lookup"]


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


def lookup(result: dict[str, Any], key: str) -> Any:
    """``result[key]``, where ``"a/b"`` also names ``result["a"]["b"]`` (None if absent).

    RL results nest their metrics (``env_runners/episode_return_mean``); sweeps name them by
    that path in ``metric=``, ``stop=`` and ``get_best_result``.
    """
    value = result.get(key)
    if value is None and "/" in key:
        node: Any = result
        for part in key.split("/"):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        value = node
    return value


def flat_view(result: dict[str, Any]) -> dict[str, Any]:
    """The result as schedulers, searchers and stoppers see it: nested metrics flattened to
    ``a/b`` keys beside the originals (``result`` itself when nothing is nested)."""
    if not any(isinstance(v, dict) for k, v in result.items() if k != "config"):
        return result
    view = dict(result)
    for key, value in result.items():
        if isinstance(value, dict) and key != "config":
            view.update(flatten(value, "/", f"{key}/"))
    return view


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
