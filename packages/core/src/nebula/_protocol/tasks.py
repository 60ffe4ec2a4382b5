"""Tasks: their specs, their pushes to workers and their replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nebula._protocol._base import Message
from nebula._protocol.objects import ObjectValue

# ------------------------------------------------------------------------------ tasks


@dataclass(frozen=True, slots=True)
class PlacementGroupContext(Message):
    """The placement group a task or actor was scheduled in. With ``capture_child_tasks``,
    the tasks and actors it starts without a scheduling strategy of their own go there too."""

    pg_id: bytes
    bundles: tuple[dict[str, float], ...]
    strategy: str
    capture_child_tasks: bool


@dataclass(frozen=True, slots=True)
class TaskSpec(Message):
    task_id: bytes
    job_id: int
    name: str
    owner_address: str
    function_id: bytes
    # The pickled function, sent only the first time a worker sees ``function_id``.
    function_bytes: bytes | None
    # Serialized (args, kwargs) with each top-level ObjectRef replaced by a placeholder.
    args_blob: bytes
    # Values of the top-level ObjectRef arguments, in placeholder order.
    ref_args: tuple[ObjectValue, ...]
    num_returns: int
    max_retries: int = 0
    retry_exceptions: bool | tuple[type, ...] = False
    attempt: int = 0
    # Actor calls only.
    actor_id: bytes | None = None
    method_name: str | None = None
    sequence_no: int = 0
    # Paths the worker adds to sys.path so the job's own modules import.
    job_sys_path: tuple[str, ...] = ()
    namespace: str = ""
    runtime_env: dict[str, Any] | None = None
    # A generator whose items go to the owner one by one (StreamedItem) as they are
    # yielded; the task's one return is then their count.
    streaming: bool = False
    # Normal tasks: a worker that has run this function max_calls times is replaced (0: never).
    max_calls: int = 0
    # Actor calls: the concurrency group to run in ("": the method's own, else the default).
    concurrency_group: str = ""
    # Normal tasks and actor creation: the placement group it runs in, if any.
    placement_group: PlacementGroupContext | None = None


@dataclass(frozen=True, slots=True)
class StreamedItem(Message):
    """Item ``index`` (0-based) of a streaming generator task, sent to the task's owner."""

    task_id: bytes
    index: int
    value: ObjectValue


@dataclass(frozen=True, slots=True)
class PushTask(Message):
    spec: TaskSpec
    lease_id: bytes | None = None
    # GPUs of the lease: the worker exposes them as CUDA_VISIBLE_DEVICES while it runs.
    gpu_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskDone(Message):
    task_id: bytes
    returns: tuple[ObjectValue, ...]
    worker_address: str
    # Set when the task raised: a serialized TaskError, also stored under every return id.
    error: bytes | None = None
    retryable_error: bool = False
    # The worker reached the function's max_calls: its lease must not be used again.
    worker_retiring: bool = False


@dataclass(frozen=True, slots=True)
class TaskReturnsPart(Message):
    """Some of a task's return values, sent to its owner ahead of its ``TaskDone`` when
    they are too many to travel in one message."""

    task_id: bytes
    returns: tuple[ObjectValue, ...]


@dataclass(frozen=True, slots=True)
class CancelTask(Message):
    task_id: bytes
    force: bool = False


@dataclass(frozen=True, slots=True)
class CreateActorTask(Message):
    """Sent by the control store to the worker leased for a new actor."""

    actor_id: bytes
    spec: TaskSpec
    max_concurrency: int
    is_async: bool
    reply_to: str
    gpu_ids: tuple[int, ...] = ()
    # Group name -> its number of threads (or concurrent coroutines), beside the default.
    concurrency_groups: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActorCreated(Message):
    actor_id: bytes
    worker_address: str
    pid: int
    error: bytes | None = None
