"""What passes between a trial's training thread and the driver, in the trial's process.

The training thread appends records (a result, a checkpoint, or both); the driver takes
them all in one call (``poll``), acknowledging how many it has judged. ``window`` bounds how
far the thread may run ahead of those judgements: 1 makes each result wait for its decision
(schedulers that stop trials early), None lets it run on (FIFO), so a fast trial's results
travel in batches instead of one round trip each. A result that carries a checkpoint always
waits until the driver has recorded it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nebula.tune._checkpoint import Checkpoint

__all__ = ["Batch", "Channel", "StopTrial", "TrialSpec"]

_MAX_UNACKED = 10_000  # bounds memory when the driver falls behind a trial that never waits
_MAX_BATCH = 5_000


class StopTrial(BaseException):
    """Raised in the training thread to unwind a trainable the driver stopped.

    A BaseException so that a trainable's own ``except Exception`` does not swallow it.
    """


Record = tuple["dict[str, Any] | None", "Checkpoint | None"]


@dataclass(frozen=True)
class TrialSpec:
    """Everything a trial process needs to run (or resume) one trial."""

    trial_id: str
    trial_name: str
    experiment_name: str
    config: dict[str, Any]
    trial_path: str
    filesystem: Any
    restore: Checkpoint | None = None
    iteration: int = 0
    time_total_s: float = 0.0
    checkpoint_index: int = 0
    window: int | None = 1
    stop_criteria: dict[str, float] = field(default_factory=dict)
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool = False
    resources: Any = None
    linger_s: float = 0.002


@dataclass
class Batch:
    """Records taken from a trial since the last poll, and how the trial stands."""

    records: list[Record]
    status: str  # "running", "done", "error" or "stopped"
    error: str | None = None
    cause: BaseException | None = None


class Channel:
    def __init__(self, window: int | None, linger_s: float) -> None:
        self.window = window
        self.linger_s = linger_s
        self._cond = threading.Condition()
        self._records: list[Record] = []
        self._produced = 0
        self._acked = 0
        self._stop = False
        self._save_on_stop = False
        self._save_requested = False
        self._status = "running"
        self._error: str | None = None
        self._cause: BaseException | None = None

    # --- the training thread ---------------------------------------------------------

    def put(self, record: Record) -> None:
        """Hand over a record; waits while the driver is ``window`` results behind."""
        with self._cond:
            if self._stop:
                raise StopTrial
            self._records.append(record)
            if record[0] is not None:
                self._produced += 1
            self._cond.notify_all()
            limit = self.window if self.window is not None else _MAX_UNACKED
            if record[1] is not None:
                # A checkpoint waits until the driver has it: a trial whose process dies
                # right after reporting one must resume from it, not from an older one.
                limit = 1
            if self._produced - self._acked >= limit:
                self._cond.wait_for(lambda: self._produced - self._acked < limit or self._stop)
            if self._stop:
                raise StopTrial

    @property
    def stop_requested(self) -> bool:
        return self._stop

    @property
    def save_on_stop(self) -> bool:
        return self._save_on_stop

    def take_save_request(self) -> bool:
        with self._cond:
            requested, self._save_requested = self._save_requested, False
            return requested

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """A checkpoint saved on request, after the results already handed over."""
        with self._cond:
            self._records.append((None, checkpoint))
            self._cond.notify_all()

    def finish(
        self, status: str, error: str | None = None, cause: BaseException | None = None
    ) -> None:
        with self._cond:
            if self._status == "running":
                self._status = "stopped" if self._stop and status != "error" else status
                self._error = error
                self._cause = cause
            self._cond.notify_all()

    # --- the driver's calls ------------------------------------------------------------

    def poll(self, acked: int, save: bool, timeout_s: float | None = None) -> Batch:
        """Wait for at least one record (or the end), then take them all."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            self._acked = max(self._acked, acked)
            if save:
                self._save_requested = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._records or self._status != "running", timeout_s)
            if self.window is None and self.linger_s > 0 and self._status == "running":
                # A fast trial reports many results in a few milliseconds: wait a moment so
                # they travel in this batch rather than one round trip each.
                end = time.monotonic() + self.linger_s
                if deadline is not None:
                    end = min(end, deadline)
                self._cond.wait_for(
                    lambda: self._status != "running" or len(self._records) >= _MAX_BATCH,
                    max(end - time.monotonic(), 0),
                )
            return self._take()

    def request_stop(self, save: bool) -> None:
        with self._cond:
            self._stop = True
            self._save_on_stop = save
            self._cond.notify_all()

    def take_remaining(self) -> Batch:
        with self._cond:
            return self._take()

    def _take(self) -> Batch:
        records = self._records[:_MAX_BATCH]
        del self._records[:_MAX_BATCH]
        status = self._status if not self._records else "running"
        return Batch(records, status, self._error, self._cause)
