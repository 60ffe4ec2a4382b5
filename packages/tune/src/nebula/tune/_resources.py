"""What a trial asks the cluster for: one bundle, or a placement group of several.

A trial of several bundles runs in a placement group reserved for it alone: the trainable in
the first bundle, and everything it starts without a scheduling strategy of its own (the
workers of a trainer, an RL algorithm's env runners) in the others, since the group captures
its child tasks. A trial is started only once its whole group fits, so nested actors never
wait on resources another trial holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PlacementGroupFactory", "resources_from"]

_KEY_NAMES = {"cpu": "CPU", "gpu": "GPU", "CPU": "CPU", "GPU": "GPU", "memory": "memory"}


class PlacementGroupFactory:
    """Bundles a trial reserves together; the trial runs in the first, its workers in the rest.

    ``PlacementGroupFactory([{"CPU": 1}, {"CPU": 2}], strategy="PACK")`` reserves three
    CPUs for the trial: one for the trainable's own process and two for what it starts
    (read them back with ``tune.get_context().get_trial_resources()``).
    """

    def __init__(self, bundles: Sequence[Mapping[str, float]], strategy: str = "PACK") -> None:
        if isinstance(bundles, Mapping) or not isinstance(bundles, Sequence) or not bundles:
            raise ValueError(
                "a PlacementGroupFactory needs a non-empty list of bundles, such as "
                f"[{{'CPU': 1}}, {{'CPU': 2}}]; got {bundles!r}."
            )
        head, *rest = (_normalized(b) for b in bundles)
        # A bundle of nothing reserves nothing: only the trainable's own may be empty.
        self.bundles = [head, *(b for b in rest if b)]
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

    @property
    def head_bundle_is_empty(self) -> bool:
        """The trainable asks for nothing itself: the group holds only its workers' bundles."""
        return not self.bundles[0]

    @property
    def group_bundles(self) -> list[dict[str, float]]:
        """The bundles the trial's placement group reserves."""
        return [dict(b) for b in (self.bundles[1:] if self.head_bundle_is_empty else self.bundles)]

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
    """A trial's request as a factory: from a dict (``{"cpu": 2, "gpu": 1}``), a list of
    bundle dicts (the trainable's first, then its workers'), or a factory."""
    if isinstance(request, PlacementGroupFactory):
        return request
    if request is None:
        return PlacementGroupFactory([{"CPU": 1}])
    if isinstance(request, Mapping):
        bundle = _normalized(request)
        return PlacementGroupFactory([bundle])
    if isinstance(request, list | tuple) and request:
        return PlacementGroupFactory(request)
    raise TypeError(
        "trial resources must be a dict such as {'cpu': 1, 'gpu': 1}, a list of such bundles "
        f"(the trainable's first), or a PlacementGroupFactory; got {request!r}."
    )
