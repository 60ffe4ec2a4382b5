"""The control store's table of task attempts, merged from the events every process flushes.

Events of one attempt come from two processes (its owner and the worker that ran it), in
batches that arrive in no particular order, so a record's state is the most advanced one
seen (a late PENDING never undoes RUNNING), and of two endings the later one counts. The
table holds at most ``max_per_job`` attempts per job: past that it forgets the oldest
finished attempt (or, if none has finished, the oldest one) and counts it as dropped, so a
job of millions of tasks costs the control store a bounded amount of memory.

Pure bookkeeping: no sockets, tested on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from nebula import _protocol as p

_RANK = {
    "PENDING_ARGS_AVAIL": 0,
    "PENDING_NODE_ASSIGNMENT": 1,
    "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY": 1,
    "SUBMITTED_TO_WORKER": 2,
    "RUNNING": 3,
    "FINISHED": 4,
    "FAILED": 4,
}
TERMINAL = ("FINISHED", "FAILED")
JOB_FINISHED_ERROR = "JOB_FINISHED"

# The columns ``list_tasks()`` shows without ``detail`` (Ray's default columns).
BASIC_COLUMNS = (
    "task_id",
    "attempt_number",
    "name",
    "state",
    "job_id",
    "actor_id",
    "type",
    "func_or_class_name",
    "parent_task_id",
    "node_id",
    "worker_id",
    "worker_pid",
    "error_type",
)

Key = tuple[bytes, int]
Filter = tuple[str, str, str]


@dataclass(slots=True)
class TaskAttempt:
    task_id: bytes
    attempt: int
    job_id: int
    name: str = ""
    type: str = "NORMAL_TASK"
    actor_id: bytes | None = None
    parent_task_id: bytes | None = None
    resources: dict[str, float] | None = None
    state: str = "NIL"
    # (state, unix time) in arrival order.
    events: list[tuple[str, float]] = field(default_factory=list)
    node_id: bytes | None = None
    worker_id: bytes | None = None
    pid: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    creation_time: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    # Marked FAILED because its job ended, not by an event: any real ending replaces it.
    ended_with_job: bool = False

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def record(self, *, detail: bool) -> dict[str, Any]:
        full = {
            "task_id": self.task_id.hex(),
            "attempt_number": self.attempt,
            "name": self.name,
            "state": self.state,
            "job_id": f"{self.job_id:08x}",
            "actor_id": _hex(self.actor_id),
            "type": self.type,
            "func_or_class_name": self.name,
            "parent_task_id": _hex(self.parent_task_id),
            "node_id": _hex(self.node_id),
            "worker_id": _hex(self.worker_id),
            "worker_pid": self.pid,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "required_resources": dict(self.resources or {}),
            "events": [{"state": s, "created_ms": _ms(t)} for s, t in self.events],
            "creation_time_ms": _ms(self.creation_time),
            "start_time_ms": _ms(self.start_time),
            "end_time_ms": _ms(self.end_time),
            "duration_ms": _duration_ms(self.start_time, self.end_time),
        }
        if detail:
            return full
        return {column: full[column] for column in BASIC_COLUMNS}


class TaskEventTable:
    def __init__(self, max_per_job: int) -> None:
        if max_per_job < 1:
            raise ValueError(f"max_per_job must be at least 1, got {max_per_job}")
        self.max_per_job = max_per_job
        self.attempts: dict[Key, TaskAttempt] = {}
        # Per job, in the order to forget them: finished attempts (oldest ending first),
        # then the others (oldest first).
        self._finished: dict[int, OrderedDict[Key, None]] = {}
        self._unfinished: dict[int, OrderedDict[Key, None]] = {}
        self.dropped: dict[int, int] = {}
        # Jobs that gained attempts since their bound was last enforced.
        self._grown: set[int] = set()

    def __len__(self) -> int:
        return len(self.attempts)

    # ----------------------------------------------------------------- updates

    def apply(self, batch: p.TaskEvents) -> None:
        for job_id, count in batch.dropped.items():
            self.dropped[job_id] = self.dropped.get(job_id, 0) + count
        for task_id, attempt, state, at, detail in batch.rows:
            if detail is not None and state.startswith("PENDING"):
                detail = p.TaskDefinition(*detail)
            record = self._attempt(task_id, attempt, batch.job_id, detail)
            record.events.append((state, at))
            first = record.creation_time is None or at < record.creation_time
            if isinstance(detail, p.TaskDefinition) and first:
                record.creation_time = at
            if state == "SUBMITTED_TO_WORKER" and detail is not None and record.pid is None:
                record.node_id, record.worker_id, record.pid = detail
            if state == "RUNNING":
                record.node_id = batch.node_id or record.node_id
                record.worker_id = batch.worker_id or record.worker_id
                record.pid = batch.pid
                if record.start_time is None or at < record.start_time:
                    record.start_time = at
            self._advance(record, state, at, detail)
        grown, self._grown = self._grown, set()
        for job_id in grown:
            self._enforce_bound(job_id)

    def _attempt(self, task_id: bytes, attempt: int, job_id: int, detail: Any) -> TaskAttempt:
        key = (task_id, attempt)
        record = self.attempts.get(key)
        if record is None:
            if isinstance(detail, p.TaskDefinition):
                job_id = detail.job_id
            record = TaskAttempt(task_id, attempt, job_id)
            self.attempts[key] = record
            self._unfinished.setdefault(job_id, OrderedDict())[key] = None
            self._grown.add(job_id)
        if isinstance(detail, p.TaskDefinition):
            record.name = detail.name
            record.type = detail.type
            record.actor_id = detail.actor_id
            record.parent_task_id = detail.parent_task_id
            record.resources = detail.resources
        return record

    def _advance(self, record: TaskAttempt, state: str, at: float, detail: Any) -> None:
        rank = _RANK.get(state, -1)
        if state in TERMINAL:
            if record.finished and not record.ended_with_job:
                if record.state == state:
                    # The same ending from both processes: the earlier time is the run's.
                    record.end_time = min(record.end_time or at, at)
                    return
                if record.end_time is not None and at < record.end_time:
                    return  # an earlier, different ending was overtaken by this one
            was_finished = record.finished
            record.state = state
            record.end_time = at
            record.ended_with_job = False
            if state == "FAILED" and isinstance(detail, tuple):
                record.error_type, record.error_message = detail
            elif state == "FINISHED":
                record.error_type = record.error_message = None
            if not was_finished:
                self._mark_finished(record)
            return
        if not record.finished and rank > _RANK.get(record.state, -1):
            record.state = state

    def _mark_finished(self, record: TaskAttempt) -> None:
        key = (record.task_id, record.attempt)
        self._unfinished.get(record.job_id, OrderedDict()).pop(key, None)
        self._finished.setdefault(record.job_id, OrderedDict())[key] = None

    def job_finished(self, job_id: int, at: float) -> None:
        """Attempts of an ended job that never finished: their workers were stopped."""
        for key in list(self._unfinished.get(job_id, ())):
            record = self.attempts[key]
            record.state = "FAILED"
            record.end_time = at
            record.error_type = JOB_FINISHED_ERROR
            record.error_message = "the job ended before the task finished"
            record.ended_with_job = True
            self._mark_finished(record)

    # ------------------------------------------------------------------ bounds

    def _enforce_bound(self, job_id: int) -> None:
        finished = self._finished.get(job_id, OrderedDict())
        unfinished = self._unfinished.get(job_id, OrderedDict())
        while len(finished) + len(unfinished) > self.max_per_job:
            queue = finished if finished else unfinished
            key, _ = queue.popitem(last=False)
            del self.attempts[key]
            self.dropped[job_id] = self.dropped.get(job_id, 0) + 1

    # ----------------------------------------------------------------- queries

    def get(self, task_id: bytes) -> list[TaskAttempt]:
        """Every attempt of a task that the table holds, first attempt first."""
        found = [r for (tid, _), r in self.attempts.items() if tid == task_id]
        return sorted(found, key=lambda r: r.attempt)

    def query(
        self, filters: Sequence[Filter], limit: int, *, detail: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """Matching records, newest first, at most ``limit``; and how many matched."""
        matched = select((r.record(detail=True) for r in reversed(self.attempts.values())), filters)
        records: list[dict[str, Any]] = []
        total = 0
        for record in matched:
            total += 1
            if len(records) < limit:
                records.append(record if detail else {c: record[c] for c in BASIC_COLUMNS})
        return records, total

    def summary(self, filters: Sequence[Filter]) -> list[dict[str, Any]]:
        """Counts of attempts by function (or method) and state."""
        groups: dict[tuple[str, str], dict[str, int]] = {}
        for record in select((r.record(detail=True) for r in self.attempts.values()), filters):
            counts = groups.setdefault((record["func_or_class_name"], record["type"]), {})
            counts[record["state"]] = counts.get(record["state"], 0) + 1
        return [
            {"func_or_class_name": name, "type": kind, "state_counts": counts}
            for (name, kind), counts in sorted(groups.items())
        ]

    def dropped_by_job(self) -> dict[str, int]:
        return {f"{job:08x}": count for job, count in self.dropped.items() if count}


def select(
    records: Iterable[dict[str, Any]], filters: Sequence[Filter]
) -> Iterator[dict[str, Any]]:
    """The records every filter keeps: ``(key, "=" | "!=", value)``, compared as strings
    (states and types without regard to case). An unknown key is a ValueError."""
    for record in records:
        for key, predicate, value in filters:
            if key not in record:
                raise ValueError(f"cannot filter on {key!r}; records have {sorted(record)}.")
            have = record[key]
            if key in ("state", "type"):
                equal = str(have).upper() == str(value).upper()
            else:
                equal = str(have) == str(value)
            if equal != (predicate == "="):
                break
        else:
            yield record


def _hex(value: bytes | None) -> str | None:
    return value.hex() if value else None


def _ms(at: float | None) -> int | None:
    return None if at is None else int(at * 1000)


def _duration_ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start) * 1000, 3)
