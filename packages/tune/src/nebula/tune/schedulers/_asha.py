"""Asynchronous successive halving (ASHA): stop a trial that falls behind at a rung.

Rungs sit at ``grace_period * reduction_factor**k`` up to ``max_t``. When a trial reaches a
rung it is compared with every trial that reached that rung before it: below the top
``1/reduction_factor`` of them, it stops. No trial ever waits for another, which is what
makes the halving asynchronous.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from nebula.tune.schedulers._base import SchedulerContext, TrialScheduler

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["ASHAScheduler", "AsyncHyperBandScheduler"]


class _Bracket:
    def __init__(self, min_t: float, max_t: float, reduction_factor: float, s: int) -> None:
        self.reduction_factor = reduction_factor
        count = int(math.log(max_t / min_t) / math.log(reduction_factor) - s + 1)
        milestones = [min_t * reduction_factor ** (k + s) for k in range(max(count, 0))]
        # Highest rung first: a trial is judged at the highest rung it has reached.
        self.rungs: list[tuple[float, dict[str, float]]] = [(m, {}) for m in reversed(milestones)]

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        if not recorded:
            return None
        quantile = (1 - 1 / self.reduction_factor) * 100
        return float(np.nanpercentile(list(recorded.values()), quantile))

    def on_result(self, trial_id: str, time: float, score: float) -> str:
        for milestone, recorded in self.rungs:
            if time < milestone or trial_id in recorded:
                continue
            cutoff = self.cutoff(recorded)
            recorded[trial_id] = score
            if cutoff is not None and score < cutoff:
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE


class AsyncHyperBandScheduler(TrialScheduler):
    """ASHA. ``time_attr`` measures progress (``training_iteration`` by default); a trial
    runs at least ``grace_period`` and at most ``max_t`` of it. ``brackets`` > 1 spreads
    trials over brackets with later first rungs.
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
        stop_last_trials: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(metric, mode)
        if grace_period <= 0:
            raise ValueError(f"grace_period must be positive, got {grace_period}.")
        if max_t < grace_period:
            raise ValueError(f"max_t ({max_t}) must be at least grace_period ({grace_period}).")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be above 1, got {reduction_factor}.")
        if brackets < 1:
            raise ValueError(f"brackets must be at least 1, got {brackets}.")
        self.time_attr = time_attr
        self.max_t = max_t
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.stop_last_trials = stop_last_trials
        self._brackets = [
            _Bracket(grace_period, max_t, reduction_factor, s) for s in range(brackets)
        ]
        self._rng = np.random.default_rng(seed)
        self._bracket_of: dict[str, _Bracket] = {}
        self.num_stopped = 0

    def on_trial_add(self, controller: SchedulerContext, trial: Trial) -> None:
        sizes = np.array([len(b.rungs) for b in self._brackets], dtype=float)
        weights = np.exp(sizes - sizes.max())
        index = int(self._rng.choice(len(self._brackets), p=weights / weights.sum()))
        self._bracket_of[trial.trial_id] = self._brackets[index]

    def on_trial_result(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> str:
        if self.time_attr not in result:
            return self.CONTINUE
        time = float(result[self.time_attr])
        if time >= self.max_t and self.stop_last_trials:
            self.num_stopped += 1
            return self.STOP
        score = self._score(result)
        bracket = self._bracket_of.get(trial.trial_id)
        if score is None or bracket is None:
            return self.CONTINUE
        decision = bracket.on_result(trial.trial_id, time, score)
        if decision == self.STOP:
            self.num_stopped += 1
        return decision

    def on_trial_complete(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        score = self._score(result)
        bracket = self._bracket_of.pop(trial.trial_id, None)
        if score is not None and bracket is not None and self.time_attr in result:
            bracket.on_result(trial.trial_id, float(result[self.time_attr]), score)

    def on_trial_remove(self, controller: SchedulerContext, trial: Trial) -> None:
        self._bracket_of.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        rungs = "; ".join(
            ", ".join(f"{m:g}: {len(r)}" for m, r in reversed(b.rungs)) for b in self._brackets
        )
        return f"ASHA: {self.num_stopped} trials stopped early (rung: trials seen) {rungs}"


ASHAScheduler = AsyncHyperBandScheduler
