"""Population based training: the worst trials copy the best ones and vary their settings.

Every ``perturbation_interval`` of ``time_attr`` a trial is ranked against the others. In
the bottom ``quantile_fraction`` it *exploits*: it takes the checkpoint and config of a trial
from the top quantile, *explores* by perturbing or resampling the ``hyperparam_mutations``,
and resumes from that checkpoint. Trials in the top quantile save a checkpoint so there is
a fresh one to copy.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nebula.tune.schedulers._base import SchedulerContext, TrialScheduler
from nebula.tune.search._sample import Domain, Float, Integer

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["PopulationBasedTraining", "explore"]


@dataclass
class _State:
    last_score: float | None = None
    last_perturbation_time: float = 0.0
    num_exploits: int = 0


class PopulationBasedTraining(TrialScheduler):
    """PBT (asynchronous): exploit by checkpoint copy, explore by perturbation or resampling.

    ``hyperparam_mutations`` maps a config key to a list of values, a domain
    (``tune.uniform(...)``), a function returning a value, or a nested dict of those.
    Keys missing from a trial's config are drawn from their mutation when the trial is added.
    """

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        burn_in_period: float = 0.0,
        hyperparam_mutations: dict[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: tuple[float, float] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(metric, mode)
        if not hyperparam_mutations and custom_explore_fn is None:
            raise ValueError(
                "PopulationBasedTraining needs hyperparam_mutations or custom_explore_fn "
                "to know what to vary."
            )
        if not 0 <= quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction must be in [0, 0.5], got {quantile_fraction}.")
        if perturbation_interval <= 0:
            raise ValueError(
                f"perturbation_interval must be positive, got {perturbation_interval}."
            )
        if synch:
            raise ValueError("synch=True is not supported; PBT here is asynchronous.")
        self.time_attr = time_attr
        self.perturbation_interval = perturbation_interval
        self.burn_in_period = burn_in_period
        self.hyperparam_mutations = hyperparam_mutations or {}
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability
        self.perturbation_factors = perturbation_factors
        self.custom_explore_fn = custom_explore_fn
        self.log_config = log_config
        self._random = random.Random(seed)
        self._state: dict[str, _State] = {}
        self.num_perturbations = 0

    def on_trial_add(self, controller: SchedulerContext, trial: Trial) -> None:
        self._state[trial.trial_id] = _State()
        _fill_missing(trial.config, self.hyperparam_mutations, self._random)

    def on_trial_result(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> str:
        if self.time_attr not in result:
            return self.CONTINUE
        time = float(result[self.time_attr])
        state = self._state.setdefault(trial.trial_id, _State())
        score = self._score(result)
        if score is None:
            return self.CONTINUE
        state.last_score = score
        if time < self.burn_in_period:
            return self.CONTINUE
        if time - state.last_perturbation_time < self.perturbation_interval:
            return self.CONTINUE
        state.last_perturbation_time = time
        lower, upper = self._quantiles(controller)
        if trial in upper:
            controller.request_checkpoint(trial)
            return self.CONTINUE
        if trial not in lower:
            return self.CONTINUE
        donors = [t for t in upper if t.checkpoint is not None]
        if not donors:
            return self.CONTINUE
        donor = self._random.choice(donors)
        assert donor.checkpoint is not None
        new_config = self._explore(donor.config)
        tag = (
            f"{trial.experiment_tag}@perturbed[{_describe(new_config, self.hyperparam_mutations)}]"
        )
        controller.set_trial_restore(trial, new_config, donor.checkpoint, tag)
        state.num_exploits += 1
        donor_state = self._state.get(donor.trial_id)
        if donor_state is not None:
            state.last_score = donor_state.last_score
        self.num_perturbations += 1
        return self.PAUSE

    def _explore(self, config: dict[str, Any]) -> dict[str, Any]:
        return explore(
            config,
            self.hyperparam_mutations,
            self.resample_probability,
            self.perturbation_factors,
            self.custom_explore_fn,
            self._random,
        )

    def _quantiles(self, controller: SchedulerContext) -> tuple[list[Trial], list[Trial]]:
        scored = [
            t
            for t in controller.get_trials()
            if not t.is_finished
            and t.trial_id in self._state
            and self._state[t.trial_id].last_score is not None
        ]
        if len(scored) <= 1:
            return [], []
        scored.sort(key=lambda t: self._state[t.trial_id].last_score or 0.0)
        count = math.ceil(len(scored) * self.quantile_fraction)
        count = min(count, len(scored) // 2)
        if count == 0:
            return [], []
        return scored[:count], scored[-count:]

    def on_trial_complete(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        self._state.pop(trial.trial_id, None)

    def on_trial_error(self, controller: SchedulerContext, trial: Trial) -> None:
        self._state.pop(trial.trial_id, None)

    def choose_trial_to_run(self, controller: SchedulerContext) -> Trial | None:
        """Paused trials that fell behind the furthest go first, so the population keeps pace."""
        candidates = [
            t
            for t in controller.get_trials()
            if t.status in ("PENDING", "PAUSED") and controller.can_start(t)
        ]
        if not candidates:
            return None
        pending = [t for t in candidates if t.status == "PENDING"]
        if pending:
            return pending[0]
        return min(candidates, key=lambda t: t.time_total_s)

    def debug_string(self) -> str:
        return f"PopulationBasedTraining: {self.num_perturbations} perturbations."


def explore(
    config: dict[str, Any],
    mutations: dict[str, Any],
    resample_probability: float,
    perturbation_factors: tuple[float, float],
    custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None,
    rng: random.Random,
) -> dict[str, Any]:
    """A copy of ``config`` with each mutated key perturbed or resampled."""
    new_config = copy.deepcopy(config)
    _explore_into(new_config, mutations, resample_probability, perturbation_factors, rng)
    if custom_explore_fn is not None:
        new_config = custom_explore_fn(new_config)
        if new_config is None:
            raise ValueError("custom_explore_fn must return the new config.")
    return new_config


def _explore_into(
    config: dict[str, Any],
    mutations: dict[str, Any],
    resample_probability: float,
    factors: tuple[float, float],
    rng: random.Random,
) -> None:
    for key, mutation in mutations.items():
        if isinstance(mutation, dict):
            _explore_into(config.setdefault(key, {}), mutation, resample_probability, factors, rng)
            continue
        current = config.get(key)
        resample = rng.random() < resample_probability
        if isinstance(mutation, list | tuple):
            values = list(mutation)
            if resample or current not in values:
                config[key] = rng.choice(values)
            else:
                index = values.index(current) + rng.choice([-1, 1])
                config[key] = values[min(max(index, 0), len(values) - 1)]
        elif isinstance(mutation, Domain) and (resample or current is None):
            config[key] = mutation.sample(random_state=rng.randrange(2**32))
        elif callable(mutation) and not isinstance(mutation, Domain) and resample:
            config[key] = mutation()
        elif isinstance(current, int | float) and not isinstance(current, bool):
            value = current * rng.choice(list(factors))
            if isinstance(current, int) or isinstance(mutation, Integer):
                value = round(value)
            if isinstance(mutation, Float | Integer):
                value = _clip(value, mutation)
            config[key] = value
        else:
            config[key] = _sample_mutation(mutation, rng)


def _clip(value: float, domain: Float | Integer) -> float:
    if domain.lower is not None:
        value = max(value, domain.lower)
    if domain.upper is not None:
        value = min(value, domain.upper)
    return value


def _sample_mutation(mutation: Any, rng: random.Random) -> Any:
    if isinstance(mutation, list | tuple):
        return rng.choice(list(mutation))
    if isinstance(mutation, Domain):
        return mutation.sample(random_state=rng.randrange(2**32))
    if callable(mutation):
        return mutation()
    raise TypeError(
        f"a hyperparam_mutations value must be a list, a domain or a function, got {mutation!r}."
    )


def _fill_missing(config: dict[str, Any], mutations: dict[str, Any], rng: random.Random) -> None:
    for key, mutation in mutations.items():
        if isinstance(mutation, dict):
            _fill_missing(config.setdefault(key, {}), mutation, rng)
        elif key not in config:
            config[key] = _sample_mutation(mutation, rng)


def _describe(config: dict[str, Any], mutations: dict[str, Any]) -> str:
    parts = []
    for key, mutation in mutations.items():
        value = config.get(key)
        if isinstance(mutation, dict) and isinstance(value, dict):
            parts.append(f"{key}=[{_describe(value, mutation)}]")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        else:
            parts.append(f"{key}={value}")
    return ",".join(parts)
