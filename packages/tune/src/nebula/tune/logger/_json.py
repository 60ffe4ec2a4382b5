"""``result.json`` (one JSON object per result) and ``params.json`` / ``params.pkl`` per trial."""

from __future__ import annotations

import json
import os
from typing import IO, TYPE_CHECKING, Any

import cloudpickle
from nebula.tune._util import json_safe
from nebula.tune.logger._logger import LoggerCallback

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["JsonLoggerCallback"]

RESULT_FILE = "result.json"
PARAMS_FILE = "params.json"


class JsonLoggerCallback(LoggerCallback):
    def __init__(self) -> None:
        self._files: dict[str, IO[str]] = {}
        self._encoder = json.JSONEncoder(default=json_safe)

    def log_trial_start(self, trial: Trial) -> None:
        os.makedirs(trial.local_path, exist_ok=True)
        with open(os.path.join(trial.local_path, PARAMS_FILE), "w") as file:
            json.dump(trial.config, file, default=json_safe, indent=2, sort_keys=True)
        try:
            data = cloudpickle.dumps(trial.config)
        except Exception:
            data = None
        if data is not None:
            with open(os.path.join(trial.local_path, "params.pkl"), "wb") as out:
                out.write(data)
        self._open(trial)

    def _open(self, trial: Trial) -> IO[str]:
        file = self._files.get(trial.trial_id)
        if file is None:
            os.makedirs(trial.local_path, exist_ok=True)
            file = open(os.path.join(trial.local_path, RESULT_FILE), "a")  # noqa: SIM115
            self._files[trial.trial_id] = file
        return file

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        file = self._files.get(trial.trial_id) or self._open(trial)
        file.write(self._encoder.encode(result))
        file.write("\n")

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        file = self._files.pop(trial.trial_id, None)
        if file is not None:
            file.close()

    def flush(self) -> None:
        for file in self._files.values():
            file.flush()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
