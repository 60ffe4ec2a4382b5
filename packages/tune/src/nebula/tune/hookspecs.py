"""Hooks that ``nebula.tune`` offers to plugins: trainables, schedulers and searchers by name.

Added to the plugin manager by nebula-tune's own plugin (through ``nebula_add_hookspecs``),
so they exist exactly when nebula-tune is installed. A plugin implements them with
:data:`nebula.plugins.hookimpl`::

    from nebula.plugins import hookimpl

    @hookimpl
    def nebula_register_tune_schedulers(registry):
        registry.add("my_scheduler", MyScheduler, description="...")

after which ``TuneConfig(scheduler="my_scheduler")`` builds ``MyScheduler()``. Importing
this module is cheap (no numpy, no optuna).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nebula.plugins import Registry, hookspec

__all__ = [
    "SchedulerRegistry",
    "SearcherRegistry",
    "TrainableRegistry",
    "nebula_register_tune_schedulers",
    "nebula_register_tune_searchers",
    "nebula_register_tune_trainables",
]


class TrainableRegistry(Registry[Any]):
    """Trainables by name: ``Tuner("PPO", ...)`` looks the name up here."""

    kind = "tune trainable"

    def add(self, name: str, trainable: Any, *, description: str = "") -> None:
        if not callable(trainable):
            raise TypeError(
                f"tune trainable {name!r} must be a function or a class, got "
                f"{type(trainable).__name__}."
            )
        super().add(name, trainable, description=description)


class SchedulerRegistry(Registry[Callable[..., Any]]):
    """Scheduler factories by name (called with keyword arguments, or none)."""

    kind = "tune scheduler"

    def add(self, name: str, factory: Callable[..., Any], *, description: str = "") -> None:
        if not callable(factory):
            raise TypeError(f"tune scheduler {name!r} needs a callable factory, got {factory!r}.")
        super().add(name, factory, description=description)


class SearcherRegistry(Registry[Callable[..., Any]]):
    """Search algorithm factories by name (called with keyword arguments, or none)."""

    kind = "tune searcher"

    def add(self, name: str, factory: Callable[..., Any], *, description: str = "") -> None:
        if not callable(factory):
            raise TypeError(f"tune searcher {name!r} needs a callable factory, got {factory!r}.")
        super().add(name, factory, description=description)


@hookspec
def nebula_register_tune_trainables(registry: TrainableRegistry) -> None:
    """Add trainables that users can name instead of passing them (``Tuner("PPO")``).

    :param registry: call ``registry.add(name, trainable, description=...)`` where
        ``trainable`` is a function taking the config, or a class built as ``cls(config)``
        with ``train() -> dict``, ``save_checkpoint(dir)`` and ``load_checkpoint(dir)``.

    Called the first time a process looks a trainable up by name. nebula-tune registers
    none itself. Not first-result: every implementation runs. Added in Nebula 0.2.
    """


@hookspec
def nebula_register_tune_schedulers(registry: SchedulerRegistry) -> None:
    """Add trial schedulers selectable by name (``TuneConfig(scheduler="asha")``).

    :param registry: call ``registry.add(name, factory, description=...)``; ``factory(**kw)``
        returns a :class:`nebula.tune.schedulers.TrialScheduler`.

    Called the first time a process looks a scheduler up by name; nebula-tune's own plugin
    adds ``fifo``, ``asha`` (``async_hyperband``), ``hyperband``, ``median_stopping_rule``
    and ``pbt``. Not first-result: every implementation runs. Added in Nebula 0.2.
    """


@hookspec
def nebula_register_tune_searchers(registry: SearcherRegistry) -> None:
    """Add search algorithms selectable by name (``TuneConfig(search_alg="optuna")``).

    :param registry: call ``registry.add(name, factory, description=...)``; ``factory(**kw)``
        returns a :class:`nebula.tune.search.Searcher` (or a ``SearchAlgorithm``).

    Called the first time a process looks a searcher up by name; nebula-tune's own plugin
    adds ``variant_generator`` (alias ``random``) and ``optuna``. Not first-result: every
    implementation runs. Added in Nebula 0.2.
    """


def trainable_registry() -> TrainableRegistry:
    from nebula.plugins import get_registry

    return get_registry("nebula_register_tune_trainables", TrainableRegistry)


def scheduler_registry() -> SchedulerRegistry:
    from nebula.plugins import get_registry

    return get_registry("nebula_register_tune_schedulers", SchedulerRegistry)


def searcher_registry() -> SearcherRegistry:
    from nebula.plugins import get_registry

    return get_registry("nebula_register_tune_searchers", SearcherRegistry)
