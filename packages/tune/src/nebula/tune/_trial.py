"""A trial as the controller, schedulers and searchers see it: plain data, no actor inside."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nebula.tune._util import lookup

if TYPE_CHECKING:
    from nebula.tune._checkpoint import Checkpoint
    from nebula.tune._resources import PlacementGroupFactory

__all__ = ["Trial", "TrialStatus"]


class TrialStatus:
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"


@dataclass(eq=False)
class Trial:
    """One configuration being trained; the controller owns it and changes its status.

    Compared by identity, so schedulers may keep trials in sets and dicts.
    """

    trial_id: str
    config: dict[str, Any]
    experiment_tag: str
    trainable_name: str
    resources: PlacementGroupFactory
    dirname: str = ""
    path: str = ""
    """The trial's directory on the storage filesystem."""
    local_path: str = ""
    """Where the driver writes the trial's logs (the same directory for local storage)."""
    status: str = TrialStatus.PENDING
    last_result: dict[str, Any] = field(default_factory=dict)
    num_results: int = 0
    num_failures: int = 0
    error: str | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_iteration: int = 0
    checkpoint_time_s: float = 0.0
    restore_from: Checkpoint | None = None
    """A checkpoint to start from next time instead of the trial's own (PBT's exploit)."""
    best_value: float | None = None
    """Best value of the sweep's metric so far (None: not reported yet)."""
    stopped_by_scheduler: bool = False
    iteration: int = 0
    time_total_s: float = 0.0
    custom_name: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in (TrialStatus.TERMINATED, TrialStatus.ERROR)

    def observe(self, result: dict[str, Any], metric: str | None, mode: str | None) -> None:
        """Take a new result as the trial's latest."""
        self.last_result = result
        self.num_results += 1
        self.iteration = int(result.get("training_iteration", self.iteration))
        self.time_total_s = float(result.get("time_total_s", self.time_total_s))
        if metric is None or mode is None:
            return
        value = lookup(result, metric)
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return
        better = self.best_value is None or (
            value > self.best_value if mode == "max" else value < self.best_value
        )
        if better:
            self.best_value = float(value)

    def __repr__(self) -> str:
        return f"Trial({self.trial_id}, {self.status})"

    def __str__(self) -> str:
        return self.custom_name or f"{self.trainable_name}_{self.trial_id}"
