"""Registrar objects handed to ``nebula_register_*`` hooks.

A plugin never mutates a shared dict: it calls ``add`` on a registry, which validates the
name and refuses to let two plugins silently claim the same one. Each registry remembers
which plugin registered what, so a clash names both sides.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from nebula._scheduler.view import PlacementGroupStrategy, SchedulingPolicy

if TYPE_CHECKING:
    import argparse

__all__ = [
    "Command",
    "CommandRegistry",
    "Detector",
    "PlacementGroupStrategyRegistry",
    "Registration",
    "Registry",
    "RegistryLookupError",
    "ResourceRegistry",
    "SchedulingPolicyRegistry",
]

T = TypeVar("T")

Detector = Callable[[], float | None]
"""Returns how much of a resource this node has, or ``None`` when it cannot tell."""

_logger = logging.getLogger(__name__)


class RegistryLookupError(KeyError):
    """A name was looked up that no plugin registered."""

    def __str__(self) -> str:
        # KeyError would repr() the message, wrapping the whole sentence in quotes.
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Registration(Generic[T]):
    """One registered item, with where it came from (``plugin`` is None outside a hook)."""

    name: str
    item: T
    description: str = ""
    plugin: str | None = None


class Registry(Generic[T]):
    """Named items contributed by plugins.

    A domain package subclasses it once per kind of item, setting ``kind`` (the word error
    messages use) and, where it helps, giving ``add`` a typed signature that ends in
    ``super().add(name, item, description=...)``.
    """

    kind: ClassVar[str] = "item"

    def __init__(self) -> None:
        self._registrations: dict[str, Registration[T]] = {}
        self._current_plugin: str | None = None

    def add(self, name: str, item: T, *, description: str = "") -> None:
        """Register ``item`` under ``name``; a name can be taken only once per process."""
        _check_name(self.kind, name)
        existing = self._registrations.get(name)
        if existing is not None:
            raise ValueError(self._duplicate_message(existing))
        plugin = self._current_plugin
        self._registrations[name] = Registration(name, item, description, plugin)

    def get(self, name: str) -> T:
        return self.registration(name).item

    def registration(self, name: str) -> Registration[T]:
        """The item together with its description and the plugin that registered it."""
        try:
            return self._registrations[name]
        except KeyError:
            known = ", ".join(repr(n) for n in self._registrations) or "none"
            message = f"unknown {self.kind} {name!r}; registered names are: {known}."
            raise RegistryLookupError(message) from None

    def names(self) -> list[str]:
        return list(self._registrations)

    def __contains__(self, name: object) -> bool:
        return name in self._registrations

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._registrations))

    def __len__(self) -> int:
        return len(self._registrations)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.names()!r})"

    def _duplicate_message(self, existing: Registration[T]) -> str:
        owner = f" by plugin {existing.plugin!r}" if existing.plugin else ""
        claimant = f"plugin {self._current_plugin!r}" if self._current_plugin else "this call"
        return (
            f"{self.kind} {existing.name!r} is already registered{owner}, so {claimant} "
            "cannot register it again; pick another name or uninstall one of the plugins."
        )

    @contextmanager
    def _attributed_to(self, plugin: str) -> Iterator[None]:
        """Credit what is added inside the block to ``plugin`` (used by the plugin manager)."""
        previous, self._current_plugin = self._current_plugin, plugin
        try:
            yield
        finally:
            self._current_plugin = previous


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a {kind} name must be a str, got {type(name).__name__}.")
    if not name.strip():
        raise ValueError(f"a {kind} name must be a non-empty string.")


class ResourceRegistry(Registry[Detector | None]):
    """Resource kinds a node can offer; a kind without a detector is only offered on request."""

    kind = "resource"

    def add(self, name: str, detect: Detector | None = None, *, description: str = "") -> None:
        """Declare resource ``name``; ``detect`` measures it on the node (None: user-supplied)."""
        super().add(name, detect, description=description)

    def detect_all(self) -> dict[str, float]:
        """Measure every detectable resource on this node.

        A detector that fails or returns None is skipped so one broken plugin cannot stop a
        node from starting; a negative or non-numeric answer is a plugin bug and raises.
        """
        detected: dict[str, float] = {}
        for registration in self._registrations.values():
            quantity = _run_detector(registration)
            if quantity is not None:
                detected[registration.name] = quantity
        return detected


def _run_detector(registration: Registration[Detector | None]) -> float | None:
    detect = registration.item
    if detect is None:
        return None
    try:
        value = detect()
    except Exception as exc:
        _logger.warning(
            "skipping resource %r: its detector (plugin %r) raised %r",
            registration.name,
            registration.plugin,
            exc,
        )
        return None
    if value is None:
        _logger.warning("skipping resource %r: its detector found nothing", registration.name)
        return None
    return _validated_quantity(registration, value)


def _validated_quantity(registration: Registration[Detector | None], value: object) -> float:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"the detector for resource {registration.name!r} (plugin {registration.plugin!r}) "
            f"returned {value!r}; it must return a finite number >= 0, or None."
        )
    return float(value)


class SchedulingPolicyRegistry(Registry[SchedulingPolicy]):
    """Placement policies selectable by name through ``scheduling_strategy=``."""

    kind = "scheduling policy"

    def add(self, name: str, policy: SchedulingPolicy, *, description: str = "") -> None:
        if not callable(getattr(policy, "select_node", None)):
            raise TypeError(
                f"scheduling policy {name!r} must have a select_node(request, nodes) method "
                f"(see nebula.plugins.SchedulingPolicy), got {type(policy).__name__}."
            )
        super().add(name, policy, description=description)


class PlacementGroupStrategyRegistry(Registry[PlacementGroupStrategy]):
    """Placement-group strategies selectable by name through ``placement_group(strategy=)``."""

    kind = "placement group strategy"

    def add(self, name: str, strategy: PlacementGroupStrategy, *, description: str = "") -> None:
        if not callable(getattr(strategy, "select_nodes", None)):
            raise TypeError(
                f"placement group strategy {name!r} must have a select_nodes(bundles, nodes) "
                f"method (see nebula.plugins.PlacementGroupStrategy), got "
                f"{type(strategy).__name__}."
            )
        super().add(name, strategy, description=description)


@dataclass(frozen=True, slots=True)
class Command:
    """A ``nebula <name>`` subcommand: ``configure`` adds its arguments, ``run`` executes it."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


class CommandRegistry(Registry[Command]):
    """Subcommands of the ``nebula`` CLI."""

    kind = "command"

    # A command is assembled from its parts rather than passed whole, hence the new signature.
    def add(  # type: ignore[override]
        self,
        name: str,
        *,
        help: str,
        configure: Callable[[argparse.ArgumentParser], None],
        run: Callable[[argparse.Namespace], int | None],
    ) -> None:
        super().add(name, Command(name, help, configure, run), description=help)
