"""Nebula tune: hyperparameter sweeps from a laptop to the cluster.

Ray programs port by changing ``ray.tune`` to ``nebula.tune``::

    from nebula import tune

    def objective(config):
        for step in range(10):
            tune.report({"score": config["x"] * step})

    tuner = tune.Tuner(objective, param_space={"x": tune.uniform(0, 1)},
                       tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=8))
    best = tuner.fit().get_best_result()

The public names load on first use: every Nebula process loads this package's plugin
(``nebula.tune._plugin``), and only a sweep's driver and trials should pay for the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nebula.tune import schedulers, search, stopper
    from nebula.tune._callback import Callback
    from nebula.tune._checkpoint import Checkpoint
    from nebula.tune._config import (
        CheckpointConfig,
        FailureConfig,
        RunConfig,
        SyncConfig,
        TuneConfig,
    )
    from nebula.tune._errors import TrialError, TuneError
    from nebula.tune._resources import PlacementGroupFactory
    from nebula.tune._result import Result, ResultGrid
    from nebula.tune._session import TuneContext, get_checkpoint, get_context, report
    from nebula.tune._trainable import Trainable, with_parameters, with_resources
    from nebula.tune._trial import Trial
    from nebula.tune._tuner import Tuner
    from nebula.tune.logger import (
        CSVLoggerCallback,
        JsonLoggerCallback,
        LoggerCallback,
        TBXLoggerCallback,
    )
    from nebula.tune.search._sample import (
        choice,
        grid_search,
        lograndint,
        loguniform,
        qlograndint,
        qloguniform,
        qrandint,
        qrandn,
        quniform,
        randint,
        randn,
        sample_from,
        uniform,
    )
    from nebula.tune.stopper import Stopper

# Public name -> the module defining it ("" for a subpackage of the same name).
_EXPORTS = {
    "schedulers": "",
    "search": "",
    "stopper": "",
    "Callback": "_callback",
    "Checkpoint": "_checkpoint",
    "CheckpointConfig": "_config",
    "FailureConfig": "_config",
    "RunConfig": "_config",
    "SyncConfig": "_config",
    "TuneConfig": "_config",
    "TrialError": "_errors",
    "TuneError": "_errors",
    "PlacementGroupFactory": "_resources",
    "Result": "_result",
    "ResultGrid": "_result",
    "TuneContext": "_session",
    "get_checkpoint": "_session",
    "get_context": "_session",
    "report": "_session",
    "Trainable": "_trainable",
    "with_parameters": "_trainable",
    "with_resources": "_trainable",
    "Trial": "_trial",
    "Tuner": "_tuner",
    "CSVLoggerCallback": "logger",
    "JsonLoggerCallback": "logger",
    "LoggerCallback": "logger",
    "TBXLoggerCallback": "logger",
    "Stopper": "stopper",
    "choice": "search._sample",
    "grid_search": "search._sample",
    "lograndint": "search._sample",
    "loguniform": "search._sample",
    "qlograndint": "search._sample",
    "qloguniform": "search._sample",
    "qrandint": "search._sample",
    "qrandn": "search._sample",
    "quniform": "search._sample",
    "randint": "search._sample",
    "randn": "search._sample",
    "sample_from": "search._sample",
    "uniform": "search._sample",
}

__all__ = [
    "CSVLoggerCallback",
    "Callback",
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "JsonLoggerCallback",
    "LoggerCallback",
    "PlacementGroupFactory",
    "Result",
    "ResultGrid",
    "RunConfig",
    "Stopper",
    "SyncConfig",
    "TBXLoggerCallback",
    "Trainable",
    "Trial",
    "TrialError",
    "TuneConfig",
    "TuneContext",
    "TuneError",
    "Tuner",
    "choice",
    "create_scheduler",
    "create_searcher",
    "get_checkpoint",
    "get_context",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "register_trainable",
    "report",
    "sample_from",
    "schedulers",
    "search",
    "stopper",
    "uniform",
    "with_parameters",
    "with_resources",
]


def create_scheduler(name: str, **kwargs: Any) -> Any:
    """A scheduler by its registered name (``"asha"``, ``"pbt"``, a plugin's...)."""
    from nebula.tune.hookspecs import scheduler_registry

    return scheduler_registry().get(name)(**kwargs)  # type: ignore[no-any-return]


def create_searcher(name: str, **kwargs: Any) -> Any:
    """A search algorithm by its registered name (``"optuna"``, ``"random"``...)."""
    from nebula.tune.hookspecs import searcher_registry

    return searcher_registry().get(name)(**kwargs)


def register_trainable(name: str, trainable: Any) -> None:
    """Make ``trainable`` available as ``Tuner(name)`` in this process."""
    from nebula.tune.hookspecs import trainable_registry

    trainable_registry().add(name, trainable)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nebula.tune' has no attribute {name!r}")
    if module == "":
        value: Any = importlib.import_module(f"nebula.tune.{name}")
    else:
        value = getattr(importlib.import_module(f"nebula.tune.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
