"""Task events, state queries, job submissions, logs and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from nebula._protocol._base import Message

# ------------------------------------------------------------------ observability
# Task events travel as plain tuples, built on the hot path and pickled in C at flush time:
#   (task_id, attempt, state, unix_time, detail)
# where detail is, for the first (PENDING_*) event of an attempt, a plain tuple of
# TaskDefinition's fields; for FAILED, an (error_type, message) pair; for a task pushed to a
# leased worker (SUBMITTED_TO_WORKER), (node_id, worker_id, pid); otherwise None. See
# ``_worker/task_events.py``.
TaskEventRow = tuple[bytes, int, str, float, Any]


class TaskDefinition(NamedTuple):
    """What a task is, sent once per attempt with its first event (as a plain tuple of
    these fields: it is built on the submit path)."""

    job_id: int
    name: str
    # NORMAL_TASK, ACTOR_TASK or ACTOR_CREATION_TASK.
    type: str
    actor_id: bytes | None
    parent_task_id: bytes | None
    resources: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class TaskEvents(Message):
    """A process -> control store: task state changes buffered since its last flush."""

    rows: tuple[TaskEventRow, ...]
    # Who sent them: rows saying RUNNING ran in this process.
    node_id: bytes
    worker_id: bytes
    pid: int
    job_id: int
    # Events this process could not buffer (its buffer was full), by job.
    dropped: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StateQuery(Message):
    """Ask the control store for one table's records (``kind``: tasks, jobs, submissions)."""

    request_id: int
    reply_to: str
    kind: str
    # (key, "=" or "!=", value), compared as strings; applied before ``limit``.
    filters: tuple[tuple[str, str, str], ...] = ()
    limit: int = 100
    detail: bool = False


@dataclass(frozen=True, slots=True)
class StateReply(Message):
    request_id: int
    records: tuple[dict[str, Any], ...]
    # Records that matched the filters, before ``limit`` cut them.
    total: int = 0
    # Records the table no longer holds (its bound per job), by job id.
    dropped: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobSubmissionInfo(Message):
    """A job submitted through the job API, as the control store records it."""

    submission_id: str
    entrypoint: str
    # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED (Ray's JobStatus names).
    status: str
    message: str = ""
    start_time: float = 0.0
    end_time: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    runtime_env: dict[str, Any] | None = None
    driver_pid: int = 0
    log_path: str = ""
    error_type: str | None = None
    driver_exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class PutJobSubmission(Message):
    info: JobSubmissionInfo


@dataclass(frozen=True, slots=True)
class NodeStateQuery(Message):
    """Ask a node manager for its ``kind`` records: workers, objects, logs."""

    request_id: int
    reply_to: str
    kind: str


@dataclass(frozen=True, slots=True)
class ReadLog(Message):
    """Ask a node manager for a slice of one of its log files (``offset`` < 0: from the end)."""

    request_id: int
    reply_to: str
    filename: str
    offset: int = 0
    length: int = 1 << 20


@dataclass(frozen=True, slots=True)
class LogChunk(Message):
    request_id: int
    data: bytes
    # Where the slice ends in the file, and the file's size when it was read.
    end: int = 0
    size: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessStateQuery(Message):
    """Ask a core worker about itself (``kind``: objects, stacks)."""

    request_id: int
    reply_to: str
    kind: str


@dataclass(frozen=True, slots=True)
class MetricsReport(Message):
    """A process -> control store: its user metrics' current values.

    ``series`` rows: (name, kind, description, tags, value); kind is counter, gauge or
    histogram; a histogram's value is (boundaries, bucket counts, sum, count).
    """

    source: str
    series: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], Any], ...]
