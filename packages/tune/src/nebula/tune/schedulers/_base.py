"""The one interface every trial scheduler implements, and the FIFO default.

A scheduler is a pure object fed trial events; it answers each result with
``CONTINUE``, ``PAUSE`` or ``STOP`` and picks which waiting trial runs next. What it may ask
of the sweep goes through the :class:`SchedulerContext` it is handed, never through actors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nebula.tune._checkpoint import Checkpoint
    from nebula.tune._trial import Trial

__all__ = ["FIFOScheduler", "SchedulerContext", "TrialScheduler"]


class SchedulerContext(Protocol):
    """What a scheduler can see of the sweep and ask of it."""

    def get_trials(self) -> list[Trial]:
        """Every trial, in creation order."""
        ...

    def can_start(self, trial: Trial) -> bool:
        """Whether the cluster has room to start (or resume) ``trial`` now."""
        ...

    def search_finished(self) -> bool:
        """True once the search will add no more trials."""
        ...

    def request_checkpoint(self, trial: Trial) -> None:
        """Ask a running class trainable to save a checkpoint after its current step."""
        ...

    def stop_trial(self, trial: Trial) -> None:
        """End a paused or pending trial (it counts as finished, not failed)."""
        ...

    def set_trial_restore(
        self, trial: Trial, config: dict[str, Any], checkpoint: Checkpoint, tag: str
    ) -> None:
        """Resume ``trial`` next time with ``config``, from ``checkpoint`` (PBT's exploit)."""
        ...


def _check_mode(mode: str | None) -> None:
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")


class TrialScheduler:
    """Decides, result by result, whether each trial continues; subclass it for a new policy.

    ``result_window`` is how many results a trial may report before hearing the decision
    on the first of them: 1 (the default) makes every decision take effect on the very next
    result, None lets trials run ahead (only sound when the scheduler never stops one).
    """

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"

    result_window: int | None = 1

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        _check_mode(mode)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Receive the sweep's metric and mode; fill in those not given to the scheduler."""
        if self._metric is None:
            self._metric = metric
        if self._mode is None:
            self._mode = mode
        return True

    def on_trial_add(self, controller: SchedulerContext, trial: Trial) -> None:
        pass

    def on_trial_error(self, controller: SchedulerContext, trial: Trial) -> None:
        pass

    def on_trial_result(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> str:
        return self.CONTINUE

    def on_trial_complete(
        self, controller: SchedulerContext, trial: Trial, result: dict[str, Any]
    ) -> None:
        pass

    def on_trial_remove(self, controller: SchedulerContext, trial: Trial) -> None:
        pass

    def choose_trial_to_run(self, controller: SchedulerContext) -> Trial | None:
        """A pending trial first, then a paused one; None when nothing can start now."""
        paused = None
        for trial in controller.get_trials():
            if trial.status == "PENDING" and controller.can_start(trial):
                return trial
            if paused is None and trial.status == "PAUSED" and controller.can_start(trial):
                paused = trial
        return paused

    def debug_string(self) -> str:
        return f"Using {type(self).__name__}."

    def _score(self, result: dict[str, Any]) -> float | None:
        """The result's metric, sign-flipped for min mode so that larger is always better."""
        value = result.get(self._metric) if self._metric else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return float(value) if self._mode != "min" else -float(value)


class FIFOScheduler(TrialScheduler):
    """Runs every trial to the end, in the order the search created them."""

    result_window = None
