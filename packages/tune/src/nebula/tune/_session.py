"""``tune.report``, ``tune.get_checkpoint`` and ``tune.get_context`` inside a trial.

A trial process runs one trial at a time, so the session is one module-level object set
while a trainable runs.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nebula.tune._channel import Channel, StopTrial, TrialSpec
from nebula.tune._util import lookup

if TYPE_CHECKING:
    from nebula.tune._checkpoint import Checkpoint

__all__ = [
    "TrialSession",
    "TuneContext",
    "get_checkpoint",
    "get_context",
    "report",
]

_PID = os.getpid()
_HOSTNAME = socket.gethostname()


@functools.cache
def _node_ip() -> str:
    try:
        import nebula

        if nebula.is_initialized():
            for node in nebula.nodes():
                if node.get("NodeID") == nebula.get_runtime_context().get_node_id():
                    return str(node.get("NodeManagerAddress", "127.0.0.1"))
    except Exception:
        pass
    return "127.0.0.1"


class TrialSession:
    """The running trial's counters, its restore point and its channel to the driver."""

    def __init__(self, spec: TrialSpec, channel: Channel) -> None:
        self.spec = spec
        self.channel = channel
        self.iteration = spec.iteration
        self.time_total_s = spec.time_total_s
        self.checkpoint = spec.restore
        self.checkpoint_index = spec.checkpoint_index
        self.start_time = time.time()
        self.last_time = self.start_time
        self.iterations_since_restore = 0
        self.node_ip = _node_ip()

    def fill(self, metrics: dict[str, Any], *, count_iteration: bool = True) -> dict[str, Any]:
        """``metrics`` plus the fields every result has (iteration, times, host...)."""
        now = time.time()
        this_iter = now - self.last_time
        self.last_time = now
        result = dict(metrics)
        if count_iteration:
            self.iteration = int(result.get("training_iteration", self.iteration + 1))
        self.time_total_s += this_iter
        self.iterations_since_restore += 1
        result.setdefault("training_iteration", self.iteration)
        result.setdefault("time_this_iter_s", this_iter)
        result.setdefault("time_total_s", self.time_total_s)
        result.setdefault("time_since_restore", now - self.start_time)
        result.setdefault("iterations_since_restore", self.iterations_since_restore)
        result.setdefault("timestamp", int(now))
        result.setdefault("date", time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(now)))
        result.setdefault("done", False)
        result["trial_id"] = self.spec.trial_id
        result.setdefault("pid", _PID)
        result.setdefault("hostname", _HOSTNAME)
        result.setdefault("node_ip", self.node_ip)
        return result

    def should_stop(self, result: dict[str, Any]) -> bool:
        for key, bound in self.spec.stop_criteria.items():
            value = lookup(result, key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= bound:
                return True
        return False

    def persist(self, checkpoint: Checkpoint) -> Checkpoint:
        """Copy a reported checkpoint into the trial's storage and return the stored copy."""
        from nebula.tune._checkpoint import Checkpoint
        from nebula.tune._storage import copy_directory

        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(
                f"checkpoint must be a tune.Checkpoint, got {type(checkpoint).__name__}; "
                "use Checkpoint.from_directory(path)."
            )
        target = f"{self.spec.trial_path}/checkpoint_{self.checkpoint_index:06d}"
        self.checkpoint_index += 1
        with checkpoint.as_directory() as local:
            copy_directory(local, self.spec.filesystem, target)
        stored = Checkpoint(target, self.spec.filesystem)
        self.checkpoint = stored
        return stored

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> None:
        if self.channel.stop_requested:
            raise StopTrial
        if not isinstance(metrics, dict):
            raise TypeError(f"tune.report() needs a dict of metrics, got {type(metrics).__name__}.")
        result = self.fill(metrics)
        stored = self.persist(checkpoint) if checkpoint is not None else None
        done = self.should_stop(result)
        if done:
            result["done"] = True
        self.channel.put((result, stored))
        if done:
            raise StopTrial


_session: TrialSession | None = None


def set_session(session: TrialSession | None) -> None:
    global _session
    _session = session


def current_session() -> TrialSession | None:
    return _session


def _require(name: str) -> TrialSession:
    if _session is None:
        raise RuntimeError(
            f"tune.{name}() works only inside a trainable run by a Tuner; call it from the "
            "function or class you pass to tune.Tuner."
        )
    return _session


def report(metrics: dict[str, Any], *, checkpoint: Checkpoint | None = None) -> None:
    """Report this iteration's metrics (and optionally a checkpoint) to the sweep."""
    _require("report").report(metrics, checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint to resume from (the latest one reported), or None on a fresh start."""
    return _require("get_checkpoint").checkpoint


@dataclass(frozen=True)
class TuneContext:
    """Facts about the trial the calling code runs in."""

    trial_id: str | None
    trial_name: str | None
    experiment_name: str | None
    trial_dir: str | None
    trial_resources: Any

    def get_trial_id(self) -> str | None:
        return self.trial_id

    def get_trial_name(self) -> str | None:
        return self.trial_name

    def get_experiment_name(self) -> str | None:
        return self.experiment_name

    def get_trial_dir(self) -> str | None:
        return self.trial_dir

    def get_trial_resources(self) -> Any:
        return self.trial_resources

    def get_world_rank(self) -> int:
        return 0

    def get_world_size(self) -> int:
        return 1


def get_context() -> TuneContext:
    """The current trial's id, name, directory and resources (all None outside a trial)."""
    if _session is None:
        return TuneContext(None, None, None, None, None)
    spec = _session.spec
    return TuneContext(
        spec.trial_id, spec.trial_name, spec.experiment_name, spec.trial_path, spec.resources
    )
