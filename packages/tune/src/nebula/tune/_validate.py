"""Checks that turn bad input into a clear error before any trial starts."""

from __future__ import annotations

import inspect
from typing import Any

import cloudpickle
from nebula.tune._config import CheckpointConfig
from nebula.tune.schedulers import FIFOScheduler, TrialScheduler
from nebula.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher, SearchGenerator

__all__ = [
    "check_param_space",
    "check_trainable",
    "resolve_scheduler",
    "resolve_search",
    "resolve_trainable",
]


def resolve_trainable(trainable: Any) -> Any:
    if isinstance(trainable, str):
        from nebula.tune.hookspecs import trainable_registry

        return trainable_registry().get(trainable)
    return trainable


def check_trainable(trainable: Any, checkpoint_config: CheckpointConfig) -> None:
    if inspect.isclass(trainable):
        if not callable(getattr(trainable, "train", None)):
            raise TypeError(
                f"trainable class {trainable.__name__} has no train() method; subclass "
                "tune.Trainable (setup/step) or give it train() -> dict."
            )
        return
    if not callable(trainable):
        raise TypeError(
            "the trainable must be a function taking the config dict, a class, or a registered "
            f"name; got {type(trainable).__name__}."
        )
    if checkpoint_config.checkpoint_frequency or checkpoint_config.checkpoint_at_end:
        raise ValueError(
            "checkpoint_frequency and checkpoint_at_end apply to class trainables only; a "
            "function trainable saves by passing checkpoint= to tune.report()."
        )
    target = getattr(trainable, "function", trainable)
    target = getattr(target, "__nebula_tune_wrapped__", target)
    extra = set(getattr(trainable, "_values", None) or getattr(trainable, "_refs", None) or {})
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return
    try:
        signature.bind({}, **{k: None for k in extra})
    except TypeError as exc:
        raise TypeError(
            f"the trainable {getattr(target, '__name__', target)!r} must take the config dict "
            f"as its one argument (fn(config)), but {signature} does not ({exc}); use "
            "tune.with_parameters for other arguments."
        ) from None


def check_param_space(param_space: Any) -> dict[str, Any]:
    if param_space is None:
        return {}
    to_dict = getattr(param_space, "to_dict", None)
    if callable(to_dict) and not isinstance(param_space, dict):
        param_space = to_dict()
    if not isinstance(param_space, dict):
        raise TypeError(f"param_space must be a dict, got {type(param_space).__name__}.")
    for key, value in param_space.items():
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            raise ValueError(
                f"param_space[{key!r}] cannot be pickled ({type(exc).__name__}: {exc}), so it "
                "cannot reach the trials; pass something picklable, or build the object inside "
                "the trainable (or hand it over with tune.with_parameters)."
            ) from None
    return param_space


def resolve_search(search_alg: Any) -> SearchAlgorithm:
    if search_alg is None:
        return BasicVariantGenerator()
    if isinstance(search_alg, str):
        from nebula.tune.hookspecs import searcher_registry

        search_alg = searcher_registry().get(search_alg)()
    if isinstance(search_alg, SearchAlgorithm):
        return search_alg
    if isinstance(search_alg, Searcher):
        return SearchGenerator(search_alg)
    raise TypeError(
        "TuneConfig.search_alg must be a Searcher, a BasicVariantGenerator or a registered name, "
        f"got {type(search_alg).__name__}."
    )


def resolve_scheduler(scheduler: Any) -> TrialScheduler:
    if scheduler is None:
        return FIFOScheduler()
    if isinstance(scheduler, str):
        from nebula.tune.hookspecs import scheduler_registry

        scheduler = scheduler_registry().get(scheduler)()
    if not isinstance(scheduler, TrialScheduler):
        raise TypeError(
            "TuneConfig.scheduler must be a TrialScheduler or a registered name, got "
            f"{type(scheduler).__name__}."
        )
    return scheduler
