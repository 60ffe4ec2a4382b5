"""``OptunaSearch``: Optuna's samplers (TPE by default) as a tune searcher.

Needs the ``optuna`` extra (``pip install nebula-tune[optuna]``); optuna is imported when a
search starts, not when this module is.
"""

from __future__ import annotations

from typing import Any

from nebula.tune.search._sample import (
    Categorical,
    Domain,
    Float,
    Integer,
    LogUniform,
    Normal,
)
from nebula.tune.search._searcher import Searcher
from nebula.tune.search._variants import find_unresolved, unflatten

__all__ = ["OptunaSearch"]


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError(
            "OptunaSearch needs optuna; install it with `pip install nebula-tune[optuna]`."
        ) from None
    return optuna


class OptunaSearch(Searcher):
    """Suggests configs with an Optuna study (TPE unless ``sampler`` says otherwise).

    ``space`` defaults to the Tuner's ``param_space`` (its domains are converted); an
    Optuna distribution dict (``{"lr": FloatDistribution(...)}``) is accepted too.
    ``points_to_evaluate`` run first; ``evaluated_rewards`` (one per point) tell the study
    how those points already scored, so they are not run at all.
    """

    def __init__(
        self,
        space: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        sampler: Any = None,
        seed: int | None = None,
        evaluated_rewards: list[float] | None = None,
    ) -> None:
        super().__init__(metric, mode)
        if evaluated_rewards is not None and len(evaluated_rewards) != len(
            points_to_evaluate or []
        ):
            raise ValueError("evaluated_rewards needs exactly one value per points_to_evaluate.")
        self._space_arg = space
        self._points = list(points_to_evaluate or [])
        self._rewards = evaluated_rewards
        self._sampler = sampler
        self._seed = seed
        self._study: Any = None
        self._distributions: dict[str, Any] = {}
        self._trials: dict[str, Any] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        super().set_search_properties(metric, mode, config)
        if self._study is not None:
            return True
        space = self._space_arg if self._space_arg is not None else config
        self._distributions = _to_distributions(space)
        self._create_study()
        return True

    def _create_study(self) -> None:
        optuna = _import_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self._mode is None:
            raise ValueError("OptunaSearch needs a mode ('min' or 'max'); set it in TuneConfig.")
        sampler = self._sampler or optuna.samplers.TPESampler(seed=self._seed)
        direction = "maximize" if self._mode == "max" else "minimize"
        self._study = optuna.create_study(sampler=sampler, direction=direction)
        if self._rewards is not None:
            for point, reward in zip(self._points, self._rewards):
                self._study.add_trial(
                    optuna.trial.create_trial(
                        params=_flatten(point),
                        distributions=self._distributions,
                        value=reward,
                    )
                )
        else:
            for point in self._points:
                self._study.enqueue_trial(_flatten(point))

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._study is None:
            raise RuntimeError(
                "OptunaSearch has no search space yet; pass it to a Tuner (or give space=)."
            )
        trial = self._study.ask(fixed_distributions=self._distributions)
        self._trials[trial_id] = trial
        return unflatten(dict(trial.params))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        trial = self._trials.pop(trial_id, None)
        if trial is None:
            return
        optuna = _import_optuna()
        value = None if result is None or self._metric is None else result.get(self._metric)
        if error or value is None:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(trial, float(value))

    def get_state(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # Optuna trials that were asked but never told cannot be resumed; they count as failed.
        state["_trials"] = {}
        return state


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not _is_distribution(value):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _is_distribution(value: Any) -> bool:
    return type(value).__module__.startswith("optuna")


def _to_distributions(space: dict[str, Any]) -> dict[str, Any]:
    optuna = _import_optuna()
    flat = _flatten(space)
    if flat and all(_is_distribution(v) for v in flat.values()):
        return flat
    grids, domains = find_unresolved(space)
    if grids:
        raise ValueError("OptunaSearch cannot search grid_search values; use choice() instead.")
    distributions: dict[str, Any] = {}
    for path in domains:
        domain: Any = space
        for key in path:
            domain = domain[key]
        name = "/".join(map(str, path))
        distributions[name] = _convert(optuna, name, domain)
    return distributions


def _convert(optuna: Any, name: str, domain: Domain) -> Any:
    dists = optuna.distributions
    if isinstance(domain, Categorical):
        return dists.CategoricalDistribution(domain.categories)
    if isinstance(domain, Float | Integer) and not isinstance(domain.sampler, Normal):
        log = isinstance(domain.sampler, LogUniform)
        if log and domain.q is not None:
            raise ValueError(
                f"OptunaSearch cannot search {name!r}: Optuna has no quantized log scale; "
                "use loguniform() or quniform()."
            )
        if isinstance(domain, Integer):
            upper = int(domain.upper) if domain.q is not None else int(domain.upper) - 1
            return dists.IntDistribution(int(domain.lower), upper, log=log, step=domain.q or 1)
        return dists.FloatDistribution(domain.lower, domain.upper, log=log, step=domain.q)
    raise ValueError(
        f"OptunaSearch cannot search {name!r} ({domain!r}); use uniform, loguniform, "
        "quniform, randint, choice (or an Optuna distribution)."
    )
