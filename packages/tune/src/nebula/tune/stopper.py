"""Stoppers: conditions, checked on every result, that end a trial or the whole sweep."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CombinedStopper",
    "FunctionStopper",
    "MaximumIterationStopper",
    "Stopper",
    "TimeoutStopper",
    "TrialPlateauStopper",
]


class Stopper:
    """``__call__(trial_id, result)`` ends that trial when True; ``stop_all()`` ends all."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        raise NotImplementedError

    def stop_all(self) -> bool:
        return False


class FunctionStopper(Stopper):
    def __init__(self, function: Callable[[str, dict[str, Any]], bool]) -> None:
        self._function = function

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(self._function(trial_id, result))


class MaximumIterationStopper(Stopper):
    def __init__(self, max_iter: int) -> None:
        self._max_iter = max_iter

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return int(result.get("training_iteration", 0)) >= self._max_iter


class TimeoutStopper(Stopper):
    """Ends the sweep ``timeout`` seconds after the first result."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._start: float | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if self._start is None:
            self._start = time.monotonic()
        return False

    def stop_all(self) -> bool:
        return self._start is not None and time.monotonic() - self._start >= self._timeout


class TrialPlateauStopper(Stopper):
    """Ends a trial whose ``metric`` varies by less than ``std`` over ``num_results``."""

    def __init__(
        self,
        metric: str,
        std: float = 0.01,
        num_results: int = 4,
        grace_period: int = 4,
        metric_threshold: float | None = None,
        mode: str | None = None,
    ) -> None:
        self._metric = metric
        self._std = std
        self._num_results = num_results
        self._grace_period = grace_period
        self._threshold = metric_threshold
        self._mode = mode
        self._history: dict[str, list[float]] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        import numpy as np

        value = result.get(self._metric)
        if not isinstance(value, int | float):
            return False
        history = self._history.setdefault(trial_id, [])
        history.append(float(value))
        del history[: -self._num_results]
        if (
            len(history) < max(self._num_results, 1)
            or result.get("training_iteration", 0) < self._grace_period
        ):
            return False
        if self._threshold is not None:
            if self._mode == "min" and value > self._threshold:
                return False
            if self._mode == "max" and value < self._threshold:
                return False
        return float(np.std(history)) <= self._std


class CombinedStopper(Stopper):
    def __init__(self, *stoppers: Stopper) -> None:
        self._stoppers = stoppers

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return any(s(trial_id, result) for s in self._stoppers)

    def stop_all(self) -> bool:
        return any(s.stop_all() for s in self._stoppers)


def as_stopper(stop: Any) -> tuple[dict[str, float], Stopper | None]:
    """Split RunConfig.stop into criteria the trial checks itself, and a driver-side stopper."""
    if stop is None:
        return {}, None
    if isinstance(stop, Stopper):
        return {}, stop
    if isinstance(stop, Mapping):
        criteria = {}
        for key, value in stop.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(
                    f"RunConfig.stop[{key!r}] must be a number (stop once the result reaches "
                    f"it), got {value!r}."
                )
            criteria[str(key)] = float(value)
        return criteria, None
    if callable(stop):
        return {}, FunctionStopper(stop)
    raise TypeError(
        "RunConfig.stop must be a dict of metric bounds, a function (trial_id, result) -> "
        f"bool, or a Stopper, got {type(stop).__name__}."
    )
