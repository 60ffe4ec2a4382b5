"""Callbacks: code the driver runs as the sweep progresses (loggers, the progress table...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nebula.tune._checkpoint import Checkpoint
    from nebula.tune._trial import Trial

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Override the hooks you need; each receives keyword arguments (new ones may be added)."""

    def setup(self, stop: Any = None, num_samples: int | None = None, **info: Any) -> None:
        pass

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        pass

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        pass

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        pass

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        pass

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Trial, checkpoint: Checkpoint, **info: Any
    ) -> None:
        pass

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        pass

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        pass

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        pass

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        pass


class CallbackList:
    """Calls every callback in order; the driver's one entry point to them."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)
        # Only callbacks that override a hook are called for it: results are the hot path.
        self._result_hooks = [
            c.on_trial_result for c in self.callbacks if _overrides(c, "on_trial_result")
        ]

    def setup(self, **info: Any) -> None:
        for callback in self.callbacks:
            callback.setup(**info)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any]
    ) -> None:
        for hook in self._result_hooks:
            hook(iteration=iteration, trials=trials, trial=trial, result=result)

    def call(self, name: str, **kwargs: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, name)(**kwargs)


def _overrides(callback: Callback, name: str) -> bool:
    return getattr(type(callback), name, None) is not getattr(Callback, name)
