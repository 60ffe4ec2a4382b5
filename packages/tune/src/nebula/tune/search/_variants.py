"""Turning a search space into concrete configs, the way Ray resolves one.

Every ``{"grid_search": [...]}`` is crossed with every other (the first grid found varies
fastest), and each combination gets fresh draws of the sampling domains; ``sample_from``
functions run last, so they can read the rest of the config. Nested dicts and lists are
walked; everything else is a constant.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
from nebula.tune.search._sample import Domain, Function

__all__ = [
    "Path",
    "assign",
    "count_grid_variants",
    "find_unresolved",
    "format_tag",
    "is_grid",
    "resolve_variants",
    "unflatten",
]

Path = tuple[Any, ...]

_FUNCTION_PASSES = 10


def is_grid(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "grid_search" in value


def find_unresolved(space: Any, path: Path = ()) -> tuple[list[Path], list[Path]]:
    """The paths of the grids and of the sampling domains in ``space``, in walking order."""
    grids: list[Path] = []
    domains: list[Path] = []
    _walk(space, path, grids, domains)
    return grids, domains


def _walk(value: Any, path: Path, grids: list[Path], domains: list[Path]) -> None:
    if is_grid(value):
        grids.append(path)
    elif isinstance(value, Domain):
        domains.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, (*path, key), grids, domains)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, (*path, index), grids, domains)


def count_grid_variants(space: dict[str, Any]) -> int:
    grids, _ = find_unresolved(space)
    total = 1
    for path in grids:
        total *= len(_get(space, path)["grid_search"])
    return total


def resolve_variants(
    space: dict[str, Any], rng: np.random.Generator
) -> Iterator[tuple[dict[Path, Any], dict[str, Any]]]:
    """Every grid combination of ``space`` with its domains drawn: (chosen values, config)."""
    grids, _ = find_unresolved(space)
    options = [_get(space, path)["grid_search"] for path in grids]
    # itertools.product varies its last iterable fastest; Ray's order varies the first grid.
    for combination in itertools.product(*reversed(options)):
        config = _copy(space)
        chosen: dict[Path, Any] = {}
        for path, value in zip(grids, reversed(combination)):
            assign(config, path, value)
            chosen[path] = value
        chosen.update(sample_domains(config, rng))
        yield chosen, config


def sample_domains(config: dict[str, Any], rng: np.random.Generator) -> dict[Path, Any]:
    """Replace every domain in ``config`` (in place) by a draw; functions see the others."""
    _, domains = find_unresolved(config)
    chosen: dict[Path, Any] = {}
    functions = []
    for path in domains:
        domain = _get(config, path)
        if isinstance(domain, Function):
            functions.append(path)
            continue
        value = domain.sample(config, random_state=rng)
        assign(config, path, value)
        chosen[path] = value
    for _ in range(_FUNCTION_PASSES):
        waiting = []
        for path in functions:
            try:
                value = _get(config, path).sample(config, random_state=rng)
            except (KeyError, AttributeError):
                waiting.append(path)  # reads a value another function has yet to compute
                continue
            if isinstance(value, Domain):
                value = value.sample(config, random_state=rng)
            assign(config, path, value)
            chosen[path] = value
        if not waiting:
            return chosen
        if len(waiting) == len(functions):
            break
        functions = waiting
    names = ", ".join("/".join(map(str, path)) for path in functions)
    _get(config, functions[0]).sample(config, random_state=rng)  # raise the underlying error
    raise ValueError(f"sample_from() functions for {names} read values that never resolve.")


def _copy(value: Any) -> Any:
    """Copies the containers a resolution writes into; leaves (and domains) are shared."""
    if isinstance(value, dict) and not is_grid(value):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, tuple):
        return [_copy(item) for item in value] if _has_unresolved(value) else value
    return value


def _has_unresolved(value: Any) -> bool:
    grids, domains = find_unresolved(value)
    return bool(grids or domains)


def _get(container: Any, path: Path) -> Any:
    for key in path:
        container = container[key]
    return container


def assign(container: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        container = container[key]
    container[path[-1]] = value


def unflatten(flat: dict[str, Any], separator: str = "/") -> dict[str, Any]:
    """``{"a/b": 1}`` -> ``{"a": {"b": 1}}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(separator)
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return nested


def format_tag(chosen: dict[Path, Any], limit: int = 80) -> str:
    """A short ``lr=0.01,layers=2`` label of the chosen values, for names and tables."""
    parts = []
    for path, value in chosen.items():
        name = str(path[-1]) if path else "?"
        if isinstance(value, float):
            text = f"{value:.4g}"
        elif isinstance(value, int | str | bool) or value is None:
            text = str(value)
        else:
            text = type(value).__name__
        parts.append(f"{name}={text}")
    return ",".join(parts)[:limit]
