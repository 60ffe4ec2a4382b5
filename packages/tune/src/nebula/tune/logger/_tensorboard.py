"""TensorBoard event files per trial (needs ``tensorboardX``: ``nebula-tune[tensorboard]``).

Each result becomes one event holding all its scalars, written with tensorboardX's record
framing straight from the driver's loop: no writer thread and no fsync per flush, which
would otherwise cost more than the rest of a fast sweep.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from nebula.tune._util import flatten
from nebula.tune.logger._logger import LoggerCallback

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["TBXLoggerCallback", "tensorboardx_available"]

_SKIP = {
    "training_iteration",
    "timestamp",
    "pid",
    "done",
    "trial_id",
    "date",
    "hostname",
    "node_ip",
    "iterations_since_restore",
}


def tensorboardx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboardX") is not None


class TBXLoggerCallback(LoggerCallback):
    """Scalars of every result under ``tune/<metric>``, stepped by ``training_iteration``."""

    def __init__(self) -> None:
        self._writers: dict[str, Any] = {}
        self._modules: Any = None

    def _load(self) -> Any:
        if self._modules is None:
            # tensorboardX tries boto3 for its own S3 writer, unused here, and importing boto3
            # costs half a second: hide it for the duration of the import.
            hide_boto3 = "boto3" not in sys.modules
            if hide_boto3:
                sys.modules["boto3"] = None  # type: ignore[assignment]
            try:
                from tensorboardX.proto.event_pb2 import Event
                from tensorboardX.proto.summary_pb2 import Summary
                from tensorboardX.record_writer import RecordWriter
            except ImportError:
                raise ImportError(
                    "TBXLoggerCallback needs tensorboardX; install it with "
                    "`pip install nebula-tune[tensorboard]`."
                ) from None
            finally:
                if hide_boto3:
                    del sys.modules["boto3"]
            self._modules = (Event, Summary, RecordWriter)
        return self._modules

    def _writer(self, trial: Trial) -> Any:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            event_class, _, record_writer = self._load()
            os.makedirs(trial.local_path, exist_ok=True)
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
            writer = record_writer(os.path.join(trial.local_path, name))
            writer.write(
                event_class(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
            )
            self._writers[trial.trial_id] = writer
        return writer

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        writer = self._writer(trial)
        event_class, summary_class, _ = self._modules
        values = [
            summary_class.Value(tag=f"tune/{key}", simple_value=float(value))
            for key, value in flatten({k: v for k, v in result.items() if k != "config"}).items()
            if key not in _SKIP and isinstance(value, int | float) and not isinstance(value, bool)
        ]
        step = int(result.get("training_iteration", iteration))
        event = event_class(wall_time=time.time(), step=step, summary=summary_class(value=values))
        writer.write(event.SerializeToString())

    def flush(self) -> None:
        for writer in self._writers.values():
            writer._writer.flush()

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
