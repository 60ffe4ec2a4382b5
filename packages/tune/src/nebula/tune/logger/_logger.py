"""``LoggerCallback``: a callback that writes something per trial."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nebula.tune._callback import Callback

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["LoggerCallback"]


class LoggerCallback(Callback):
    """Implement ``log_trial_start``, ``log_trial_result`` and ``log_trial_end``."""

    def log_trial_start(self, trial: Trial) -> None:
        pass

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        pass

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        pass

    def flush(self) -> None:
        """Push buffered writes to the files (called once per driver step)."""

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_start(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self.log_trial_result(iteration, trial, result)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_end(trial, failed=True)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.flush()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.flush()
