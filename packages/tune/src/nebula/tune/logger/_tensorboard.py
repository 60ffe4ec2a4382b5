"""TensorBoard event files per trial (needs ``tensorboardX``: ``nebula-tune[tensorboard]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nebula.tune._util import flatten
from nebula.tune.logger._logger import LoggerCallback

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["TBXLoggerCallback", "tensorboardx_available"]

_SKIP = {"training_iteration", "timestamp", "pid", "done", "trial_id", "date", "hostname", "node_ip",
         "time_this_iter_s", "iterations_since_restore", "time_since_restore"}


def tensorboardx_available() -> bool:
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


class TBXLoggerCallback(LoggerCallback):
    """Scalars of every result under ``tune/<metric>``, stepped by ``training_iteration``."""

    def __init__(self) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError(
                "TBXLoggerCallback needs tensorboardX; install it with "
                "`pip install nebula-tune[tensorboard]`."
            ) from None
        self._writer_class = SummaryWriter
        self._writers: dict[str, Any] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            writer = self._writer_class(logdir=trial.local_path, flush_secs=30)
            self._writers[trial.trial_id] = writer
        step = int(result.get("training_iteration", iteration))
        for key, value in flatten({k: v for k, v in result.items() if k != "config"}).items():
            if key in _SKIP or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            writer.add_scalar(f"tune/{key}", value, global_step=step)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
