"""Task state changes, buffered in the process where they happen and flushed in batches.

Recording sits on the task hot path (every submit, dispatch, run and reply), so a record is
one tuple appended to a list: the tuple is already what travels, and the flush (once a
second, from the I/O loop's tick) hands the list to the pickler, which walks it in C. The
control store merges the rows of every process into one record per task attempt (see
``_control_store/task_events.py``). A process that records faster than it flushes stops at
``max_buffered`` rows and counts what it dropped, per job.

Which process records what: the owner records an attempt's definition and its pending
states, its dispatch, its end (FINISHED when the reply arrives; the owner outlives the
workers of its job, which are stopped at its end without a last flush), and failures it
decides itself (a dead worker, a cancelled or unrunnable task); the worker records RUNNING,
and FAILED with the error's traceback when the task raised. One row fewer per task on the
worker keeps the cost of recording within the noise of the microbenchmarks.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from nebula import _protocol as p

# Ray's task states, in lifecycle order.
PENDING_ARGS_AVAIL = "PENDING_ARGS_AVAIL"
PENDING_NODE_ASSIGNMENT = "PENDING_NODE_ASSIGNMENT"
PENDING_ACTOR_TASK = "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY"
SUBMITTED_TO_WORKER = "SUBMITTED_TO_WORKER"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"

NORMAL_TASK = "NORMAL_TASK"
ACTOR_TASK = "ACTOR_TASK"
ACTOR_CREATION_TASK = "ACTOR_CREATION_TASK"

_now = time.time


class TaskEventBuffer:
    """The rows recorded since the last flush. Any thread records (``deque.append`` is
    atomic); the I/O thread takes them."""

    __slots__ = ("_last_flush", "dropped", "enabled", "max_buffered", "rows")

    def __init__(self, *, enabled: bool, max_buffered: int) -> None:
        self.enabled = enabled
        self.max_buffered = max_buffered
        self.rows: deque[p.TaskEventRow] = deque()
        self.dropped: dict[int, int] = {}
        self._last_flush = time.monotonic()

    def _full(self, job_id: int) -> bool:
        if len(self.rows) < self.max_buffered:
            return False
        self.dropped[job_id] = self.dropped.get(job_id, 0) + 1
        return True

    def submitted(
        self,
        spec: p.TaskSpec,
        state: str,
        task_type: str,
        resources: dict[str, float] | None,
        parent_task_id: bytes | None,
        *,
        actor_id: bytes | None = None,
    ) -> None:
        """The first event of an attempt: what the task is, and where it waits."""
        if self.enabled and not self._full(spec.job_id):
            # A plain tuple in TaskDefinition's field order: built and pickled several
            # times faster than the named tuple, which the control store makes of it.
            definition = (
                spec.job_id,
                spec.name,
                task_type,
                actor_id or spec.actor_id,
                parent_task_id,
                resources,
            )
            self.rows.append((spec.task_id, spec.attempt, state, _now(), definition))

    def state(self, spec: p.TaskSpec, state: str) -> None:
        if self.enabled and not self._full(spec.job_id):
            self.rows.append((spec.task_id, spec.attempt, state, _now(), None))

    def dispatched(self, spec: p.TaskSpec, node_id: bytes, worker_id: bytes, pid: int) -> None:
        """Pushed to a leased worker (known here, so a run whose worker dies before it
        flushes still says where it ran)."""
        if self.enabled and not self._full(spec.job_id):
            row = (
                spec.task_id,
                spec.attempt,
                SUBMITTED_TO_WORKER,
                _now(),
                (node_id, worker_id, pid),
            )
            self.rows.append(row)

    def failed(self, spec: p.TaskSpec, error_type: str, message: str) -> None:
        if self.enabled and not self._full(spec.job_id):
            self.rows.append((spec.task_id, spec.attempt, FAILED, _now(), (error_type, message)))

    def take(self, *, force: bool = False, period_s: float = 1.0) -> list[p.TaskEventRow] | None:
        """The rows to flush now (None while the period has not passed or nothing waits)."""
        now = time.monotonic()
        if not self.rows and not self.dropped:
            return None
        if not force and now - self._last_flush < period_s:
            return None
        self._last_flush = now
        pop = self.rows.popleft
        return [pop() for _ in range(len(self.rows))]

    def take_dropped(self) -> dict[int, int]:
        dropped, self.dropped = self.dropped, {}
        return dropped


def error_fields(error: BaseException) -> tuple[str, str]:
    """(error_type, error_message) of a failure, as the task table shows them."""
    from nebula.exceptions import (
        ActorDiedError,
        NodeDiedError,
        ObjectLostError,
        TaskCancelledError,
        TaskError,
        WorkerCrashedError,
    )

    kinds: list[tuple[type[BaseException], str]] = [
        (TaskCancelledError, "TASK_CANCELLED"),
        (ActorDiedError, "ACTOR_DIED"),
        (NodeDiedError, "NODE_DIED"),
        (WorkerCrashedError, "WORKER_DIED"),
        (ObjectLostError, "OBJECT_LOST"),
        (TaskError, "TASK_EXECUTION_EXCEPTION"),
    ]
    for cls, name in kinds:
        if isinstance(error, cls):
            return name, str(error)
    return "TASK_EXECUTION_EXCEPTION", f"{type(error).__name__}: {error}"


def describe_error_bytes(error: bytes) -> tuple[str, str]:
    """``error_fields`` of a serialized error (an argument that failed, say)."""
    from nebula._serialization import deserialize

    try:
        value: Any = deserialize(error)
    except Exception as exc:  # an unreadable error still fails the task
        return "TASK_EXECUTION_EXCEPTION", f"(the error could not be read: {exc!r})"
    if isinstance(value, BaseException):
        return error_fields(value)
    return "TASK_EXECUTION_EXCEPTION", repr(value)
