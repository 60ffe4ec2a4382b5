"""Synchronous HyperBand: brackets of successive halving, each trial paused at its rung.

Trials fill brackets of ``ceil((s_max+1)/(s+1) * eta**s)`` trials that start with
``max_t * eta**-s`` of ``time_attr``. A trial that reaches its bracket's milestone pauses
(its resources go to other trials); once every trial of the bracket is there, the best
``1/eta`` resume towards a milestone ``eta`` times further and the rest stop.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nebula.tune.schedulers._base import SchedulerContext, TrialScheduler

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["HyperBandScheduler"]


class _Bracket:
    def __init__(self, size: int, milestone: float, max_t: float, eta: float) -> None:
        self.size = size
        self.milestone = min(milestone, max_t)
        self.max_t = max_t
        self.eta = eta
        self.live: list[Trial] = []
        self.scores: dict[str, float] = {}  # trials waiting at the milestone
        self.done: list[str] = []

    @property
    def full(self) -> bool:
        return len(self.live) + len(self.done) >= self.size

    def all_at_milestone(self) -> bool:
        return bool(self.live) and all(t.trial_id in self.scores for t in self.live)

    def halve(self) -> tuple[list[Trial], list[Trial]]:
        """Keep the best 1/eta of the live trials; the rest are returned to be stopped."""
        ranked = sorted(self.live, key=lambda t: self.scores[t.trial_id], reverse=True)
        keep = max(1, int(len(ranked) / self.eta))
        if self.milestone >= self.max_t:
            keep = 0
        kept, dropped = ranked[:keep], ranked[keep:]
        self.live = kept
        self.scores = {}
        self.milestone = min(self.milestone * self.eta, self.max_t)
        return kept, dropped


class HyperBandScheduler(TrialScheduler):
    """HyperBand with synchronous halving (trials pause and resume from checkpoints)."""

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
    ) -> None:
        super().__init__(metric, mode)
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be above 1, got {reduction_factor}.")
        if max_t < 1:
            raise ValueError(f"max_t must be at least 1, got {max_t}.")
        self.time_attr = time_attr
        self.max_t = max_t
        self.eta = reduction_factor
        self.stop_last_trials = stop_last_trials
        self._s_max = int(math.log(max_t) / math.log(reduction_factor) + 1e-9)
        self._next_s = self._s_max
        self._brackets: list[_Bracket] = []
        self._bracket_of: dict[str, _Bracket] = {}
        self._waiting: set[str] = set()
        self._dropped: set[str] = set()

    def _new_bracket(self) -> _Bracket:
        s = self._next_s
        self._next_s = self._next_s - 1 if self._next_s > 0 else self._s_max
        size = math.ceil((self._s_max + 1) / (s + 1) * self.eta**s)
        bracket = _Bracket(size, self.max_t * self.eta ** (-s), self.max_t, self.eta)
        self._brackets.append(bracket)
        return bracket

    def on_trial_add(self, controller: SchedulerContext, trial: Trial) -> None:
        bracket = self._brackets[-1] if self._brackets else None
        if bracket is None or bracket.full:
            bracket = self._new_bracket()
        bracket.live.append(trial)
        self._bracket_of[trial.trial_id] = bracket

    def on_trial_result(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> str:
        if trial.trial_id in self._dropped:
            return self.STOP
        bracket = self._bracket_of.get(trial.trial_id)
        if bracket is None or self.time_attr not in result:
            return self.CONTINUE
        time = float(result[self.time_attr])
        if time >= self.max_t and self.stop_last_trials:
            self._leave(controller, trial)
            return self.STOP
        if time < bracket.milestone:
            return self.CONTINUE
        score = self._score(result)
        bracket.scores[trial.trial_id] = score if score is not None else -math.inf
        self._waiting.add(trial.trial_id)
        if not self._maybe_halve(controller, bracket):
            return self.PAUSE
        if trial in bracket.live:
            self._waiting.discard(trial.trial_id)
            return self.CONTINUE
        return self.STOP

    def _maybe_halve(self, controller: SchedulerContext, bracket: _Bracket) -> bool:
        if not bracket.all_at_milestone():
            return False
        if not bracket.full and not controller.search_finished():
            return False
        kept, dropped = bracket.halve()
        for trial in kept:
            self._waiting.discard(trial.trial_id)
        for trial in dropped:
            self._waiting.discard(trial.trial_id)
            self._bracket_of.pop(trial.trial_id, None)
            self._dropped.add(trial.trial_id)
            bracket.done.append(trial.trial_id)
            if trial.status in ("PAUSED", "PENDING", "RUNNING"):
                controller.stop_trial(trial)
        return True

    def _leave(self, controller: SchedulerContext, trial: Trial) -> None:
        bracket = self._bracket_of.pop(trial.trial_id, None)
        self._waiting.discard(trial.trial_id)
        if bracket is None:
            return
        if trial in bracket.live:
            bracket.live.remove(trial)
            bracket.done.append(trial.trial_id)
        bracket.scores.pop(trial.trial_id, None)
        self._maybe_halve(controller, bracket)

    def on_trial_complete(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        self._leave(controller, trial)

    def on_trial_error(self, controller: SchedulerContext, trial: Trial) -> None:
        self._leave(controller, trial)

    def on_trial_remove(self, controller: SchedulerContext, trial: Trial) -> None:
        self._leave(controller, trial)

    def choose_trial_to_run(self, controller: SchedulerContext) -> Trial | None:
        paused = None
        for trial in controller.get_trials():
            if trial.status == "PENDING" and controller.can_start(trial):
                return trial
            if (
                paused is None
                and trial.status == "PAUSED"
                and trial.trial_id not in self._waiting
                and controller.can_start(trial)
            ):
                paused = trial
        return paused

    def debug_string(self) -> str:
        parts = [
            f"[{len(b.live)} live, milestone {b.milestone:g}, {len(b.scores)} waiting]"
            for b in self._brackets
        ]
        return "HyperBand brackets: " + " ".join(parts)
