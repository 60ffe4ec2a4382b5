"""What a trial asks the cluster for: one bundle, or a placement group of several."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PlacementGroupFactory", "resources_from"]

_KEY_NAMES = {"cpu": "CPU", "gpu": "GPU", "CPU": "CPU", "GPU": "GPU", "memory": "memory"}


class PlacementGroupFactory:
    """Bundles a trial reserves together; the trial runs in the first, its workers in the rest.

    ``PlacementGroupFactory([{"CPU": 1}, {"CPU": 2}], strategy="PACK")`` reserves three
    CPUs for the trial: one for the trainable's own process and two for what it starts
    (read them back with ``tune.get_context().get_trial_resources()``).
    """

    def __init__(self, bundles: list[Mapping[str, float]], strategy: str = "PACK") -> None:
        if not bundles:
            raise ValueError("a PlacementGroupFactory needs at least one bundle.")
        self.bundles = [_normalized(b) for b in bundles]
        self.strategy = strategy

    @property
    def head_resources(self) -> dict[str, float]:
        return dict(self.bundles[0])

    @property
    def required_resources(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for bundle in self.bundles:
            for key, value in bundle.items():
                total[key] = total.get(key, 0.0) + value
        return total

    @property
    def needs_placement_group(self) -> bool:
        return len(self.bundles) > 1

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PlacementGroupFactory)
            and self.bundles == other.bundles
            and self.strategy == other.strategy
        )

    def __hash__(self) -> int:
        return hash((tuple(tuple(sorted(b.items())) for b in self.bundles), self.strategy))

    def __repr__(self) -> str:
        return f"PlacementGroupFactory({self.bundles}, strategy={self.strategy!r})"


def _normalized(bundle: Mapping[str, Any]) -> dict[str, float]:
    if not isinstance(bundle, Mapping):
        raise TypeError(f"a resource bundle must be a dict, got {type(bundle).__name__}.")
    out: dict[str, float] = {}
    for key, value in bundle.items():
        if key == "resources" and isinstance(value, Mapping):
            out.update(_normalized(value))
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ValueError(f"resource {key!r} must be a number >= 0, got {value!r}.")
        if value:
            out[_KEY_NAMES.get(key, key)] = float(value)
    return out


def resources_from(request: Any) -> PlacementGroupFactory:
    """A trial's request as a factory: from a dict (``{"cpu": 2, "gpu": 1}``) or a factory."""
    if isinstance(request, PlacementGroupFactory):
        return request
    if request is None:
        return PlacementGroupFactory([{"CPU": 1}])
    if isinstance(request, Mapping):
        bundle = _normalized(request)
        return PlacementGroupFactory([bundle])
    raise TypeError(
        "trial resources must be a dict such as {'cpu': 1, 'gpu': 1} or a "
        f"PlacementGroupFactory, got {type(request).__name__}."
    )
