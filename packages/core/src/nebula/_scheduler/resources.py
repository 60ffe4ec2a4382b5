"""Arithmetic on resource dictionaries (``{"CPU": 2.0, "GPU": 1.0, ...}``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FIT_EPSILON = 1e-6
"""Slack for fractional requests: ten tasks of 0.1 CPU must fit on one CPU despite rounding.
The one tolerance every placement decision uses."""


def fits(request: Mapping[str, float], available: Mapping[str, float]) -> bool:
    """Whether ``available`` covers ``request``; a resource it lacks counts as zero."""
    return all(amount <= available.get(name, 0.0) + FIT_EPSILON for name, amount in request.items())


def subtract(available: dict[str, float], request: Mapping[str, float]) -> None:
    for name, amount in request.items():
        available[name] = available.get(name, 0.0) - amount


def add(available: dict[str, float], request: Mapping[str, float]) -> None:
    for name, amount in request.items():
        available[name] = available.get(name, 0.0) + amount


def total(requests: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The sum of several requests."""
    out: dict[str, float] = {}
    for request in requests:
        add(out, request)
    return out


def describe(resources: Mapping[str, float]) -> str:
    parts = []
    for name, amount in sorted(resources.items()):
        if amount:
            shown = f"{amount / 2**30:.1f}GiB" if name == "memory" else f"{amount:g}"
            parts.append(f"{name}={shown}")
    return ", ".join(parts) or "nothing"
