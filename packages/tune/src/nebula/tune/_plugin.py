"""nebula-tune's hook implementations (found through the ``nebula.plugins`` entry point).

Cheap to import: the schedulers and searchers are imported inside the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from nebula.plugins import hookimpl

if TYPE_CHECKING:
    from nebula.tune.hookspecs import SchedulerRegistry, SearcherRegistry


@hookimpl
def nebula_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    from nebula.tune import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def nebula_register_tune_schedulers(registry: SchedulerRegistry) -> None:
    from nebula.tune import schedulers as s

    registry.add("fifo", s.FIFOScheduler, description="run every trial to the end")
    registry.add("asha", s.ASHAScheduler, description="asynchronous successive halving")
    registry.add("async_hyperband", s.AsyncHyperBandScheduler, description="same as asha")
    registry.add("hyperband", s.HyperBandScheduler, description="synchronous HyperBand")
    registry.add(
        "median_stopping_rule",
        s.MedianStoppingRule,
        description="stop trials below the median of the others",
    )
    registry.add("pbt", s.PopulationBasedTraining, description="population based training")


@hookimpl
def nebula_register_tune_searchers(registry: SearcherRegistry) -> None:
    from nebula.tune import search

    registry.add(
        "variant_generator",
        search.BasicVariantGenerator,
        description="grid search crossed with random sampling (the default)",
    )
    registry.add("random", search.BasicVariantGenerator, description="same as variant_generator")
    registry.add("optuna", _optuna, description="Optuna's TPE (needs the optuna extra)")


def _optuna(**kwargs: Any) -> Any:
    from nebula.tune.search.optuna import OptunaSearch

    return OptunaSearch(**kwargs)
