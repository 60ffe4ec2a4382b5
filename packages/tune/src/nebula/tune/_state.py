"""Saving the sweep so ``Tuner.restore`` can pick it up after the driver dies.

``experiment_state.pkl`` holds the trials (config, status, latest checkpoint, last result),
the search algorithm and the scheduler; ``tuner.pkl`` holds the Tuner's settings. The state
is written atomically (a temporary file renamed over the old one) so a SIGKILL mid-write
leaves the previous state intact. Saves are spaced so that they take a small share of the
driver's time, however fast trials finish.
"""

from __future__ import annotations

import os
import time
from typing import Any

import cloudpickle
from nebula.tune._callback import CallbackList
from nebula.tune._storage import StorageContext

__all__ = ["STATE_FILE", "TUNER_FILE", "ExperimentState", "load_state", "load_tuner"]

STATE_FILE = "experiment_state.pkl"
TUNER_FILE = "tuner.pkl"

_MIN_PERIOD_S = 0.5
_SHARE = 0.05  # at most this share of the driver's time goes to saving state


class ExperimentState:
    def __init__(
        self, storage: StorageContext, callbacks: CallbackList, sync_period_s: float
    ) -> None:
        self.storage = storage
        self.callbacks = callbacks
        self.sync_period_s = sync_period_s
        self._dirty = False
        self._last_save = 0.0
        self._last_duration = 0.0
        self._last_sync = time.monotonic()

    def mark_dirty(self, urgent: bool = False) -> None:
        self._dirty = True

    def maybe_save(self, controller: Any) -> None:
        now = time.monotonic()
        period = max(_MIN_PERIOD_S, self._last_duration / _SHARE)
        if self._dirty and now - self._last_save >= period:
            self.save(controller)
        if not self.storage.is_local and now - self._last_sync >= self.sync_period_s:
            self._last_sync = now
            self.storage.sync_up()

    def save(self, controller: Any, force: bool = False) -> None:
        start = time.monotonic()
        # Logs first: the state must never claim results the logs do not have.
        self.callbacks.call("on_step_end", iteration=controller.iteration, trials=controller.trials)
        data = cloudpickle.dumps(controller.snapshot())
        path = os.path.join(self.storage.local_dir, STATE_FILE)
        _atomic_write(path, data)
        self._dirty = False
        self._last_save = time.monotonic()
        self._last_duration = self._last_save - start
        if force:
            self.storage.sync_up()
            self._last_sync = time.monotonic()


def save_tuner(storage: StorageContext, settings: dict[str, Any]) -> None:
    try:
        data = cloudpickle.dumps(settings)
    except Exception:
        settings = dict(settings)
        run_config = settings.get("run_config")
        if run_config is not None:
            import dataclasses

            settings["run_config"] = dataclasses.replace(run_config, callbacks=None)
        data = cloudpickle.dumps(settings)
    os.makedirs(storage.local_dir, exist_ok=True)
    _atomic_write(os.path.join(storage.local_dir, TUNER_FILE), data)


def load_state(storage: StorageContext) -> dict[str, Any]:
    return _load(storage, STATE_FILE)


def load_tuner(storage: StorageContext) -> dict[str, Any]:
    return _load(storage, TUNER_FILE)


def _load(storage: StorageContext, name: str) -> dict[str, Any]:
    path = os.path.join(storage.local_dir, name)
    try:
        with open(path, "rb") as file:
            loaded = cloudpickle.load(file)
    except FileNotFoundError:
        raise ValueError(
            f"{storage.uri!r} holds no tune experiment (no {name}); pass the directory of "
            "an experiment, <storage_path>/<name>."
        ) from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a tune experiment file.")
    return loaded


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as file:
        file.write(data)
    os.replace(tmp, path)
