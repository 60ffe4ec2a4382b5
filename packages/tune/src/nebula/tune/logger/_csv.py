"""``progress.csv`` per trial: one row per result, columns from the first result."""

from __future__ import annotations

import csv
import os
from typing import IO, TYPE_CHECKING, Any

from nebula.tune._util import flatten_metrics
from nebula.tune.logger._logger import LoggerCallback

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["CSVLoggerCallback"]

PROGRESS_FILE = "progress.csv"


class CSVLoggerCallback(LoggerCallback):
    def __init__(self) -> None:
        self._files: dict[str, IO[str]] = {}
        self._writers: dict[str, tuple[Any, list[str]]] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        row = flatten_metrics(result)
        opened = self._writers.get(trial.trial_id)
        if opened is None:
            opened = self._open(trial, list(row))
        writer, fields = opened
        get = row.get
        writer.writerow([get(name, "") for name in fields])

    def _open(self, trial: Trial, fields: list[str]) -> tuple[Any, list[str]]:
        os.makedirs(trial.local_path, exist_ok=True)
        path = os.path.join(trial.local_path, PROGRESS_FILE)
        existing = _header(path)
        file = open(path, "a", newline="")  # noqa: SIM115
        writer = csv.writer(file)
        if existing is None:
            writer.writerow(fields)
        opened = (writer, existing or fields)
        self._files[trial.trial_id] = file
        self._writers[trial.trial_id] = opened
        return opened

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        file = self._files.pop(trial.trial_id, None)
        self._writers.pop(trial.trial_id, None)
        if file is not None:
            file.close()

    def flush(self) -> None:
        for file in self._files.values():
            file.flush()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
        self._writers.clear()


def _header(path: str) -> list[str] | None:
    """The columns of an existing file (a restored trial appends under them)."""
    try:
        with open(path, newline="") as file:
            return next(csv.reader(file), None) or None
    except FileNotFoundError:
        return None
