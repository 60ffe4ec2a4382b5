"""The median stopping rule: stop a trial whose best result trails the others' median."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
from nebula.tune.schedulers._base import SchedulerContext, TrialScheduler

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["MedianStoppingRule"]


class MedianStoppingRule(TrialScheduler):
    """Stops a trial once its best score so far is below the median of the other trials'
    running means at the same ``time_attr``, after ``grace_period`` and once at least
    ``min_samples_required`` other trials got that far. ``hard_stop=False`` pauses it
    instead.
    """

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        grace_period: float = 60.0,
        min_samples_required: int = 3,
        min_time_slice: float = 0,
        hard_stop: bool = True,
    ) -> None:
        super().__init__(metric, mode)
        self.time_attr = time_attr
        self.grace_period = grace_period
        self.min_samples_required = min_samples_required
        self.min_time_slice = min_time_slice
        self.hard_stop = hard_stop
        self._times: dict[str, list[float]] = defaultdict(list)
        self._cumulative: dict[str, list[float]] = defaultdict(list)
        self._best: dict[str, float] = {}
        self._last_decision_time: dict[str, float] = {}
        self.stopped: set[str] = set()

    def on_trial_result(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> str:
        score = self._score(result)
        if score is None or self.time_attr not in result:
            return self.CONTINUE
        if trial.trial_id in self.stopped:
            return self.STOP if self.hard_stop else self.PAUSE
        self._record(trial.trial_id, float(result[self.time_attr]), score)
        time = float(result[self.time_attr])
        if time < self.grace_period:
            return self.CONTINUE
        last = self._last_decision_time.get(trial.trial_id)
        if last is not None and time - last < self.min_time_slice:
            return self.CONTINUE
        self._last_decision_time[trial.trial_id] = time
        others = [
            tid for tid, times in self._times.items() if tid != trial.trial_id and times[-1] >= time
        ]
        if len(others) < self.min_samples_required:
            return self.CONTINUE
        median = float(np.median([self._running_mean(tid, time) for tid in others]))
        if self._best[trial.trial_id] < median:
            self.stopped.add(trial.trial_id)
            return self.STOP if self.hard_stop else self.PAUSE
        return self.CONTINUE

    def _record(self, trial_id: str, time: float, score: float) -> None:
        times, sums = self._times[trial_id], self._cumulative[trial_id]
        times.append(time)
        sums.append((sums[-1] if sums else 0.0) + score)
        self._best[trial_id] = max(self._best.get(trial_id, score), score)

    def _running_mean(self, trial_id: str, time: float) -> float:
        times, sums = self._times[trial_id], self._cumulative[trial_id]
        count = bisect.bisect_right(times, time)
        return sums[count - 1] / count

    def on_trial_complete(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        score = self._score(result)
        if score is not None and self.time_attr in result:
            times = self._times[trial.trial_id]
            time = float(result[self.time_attr])
            if not times or times[-1] < time:
                self._record(trial.trial_id, time, score)

    def debug_string(self) -> str:
        return f"MedianStoppingRule: {len(self.stopped)} of {len(self._times)} trials stopped."
