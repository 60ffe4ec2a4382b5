"""Arithmetic on resource dictionaries (``{"CPU": 2.0, "GPU": 1.0, ...}``)."""

from __future__ import annotations

from collections.abc import Mapping

_EPS = 1e-9


def fits(request: Mapping[str, float], available: Mapping[str, float]) -> bool:
    return all(amount <= available.get(name, 0.0) + _EPS for name, amount in request.items())


def subtract(available: dict[str, float], request: Mapping[str, float]) -> None:
    for name, amount in request.items():
        available[name] = available.get(name, 0.0) - amount


def add(available: dict[str, float], request: Mapping[str, float]) -> None:
    for name, amount in request.items():
        available[name] = available.get(name, 0.0) + amount


def describe(resources: Mapping[str, float]) -> str:
    parts = []
    for name, amount in sorted(resources.items()):
        if amount:
            shown = f"{amount / 2**30:.1f}GiB" if name == "memory" else f"{amount:g}"
            parts.append(f"{name}={shown}")
    return ", ".join(parts) or "nothing"
