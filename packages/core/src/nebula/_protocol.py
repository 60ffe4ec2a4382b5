"""Every message that crosses a process boundary, typed.

Messages are frozen, slotted dataclasses. ``encode``/``decode`` are the only way bytes become
messages: a payload that does not decode to a known message is rejected, never acted on.
Serialized user values travel inside messages as opaque ``bytes``; the shared-memory store
carries the large ones.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any


class Message:
    __slots__ = ()


class ProtocolError(Exception):
    """A payload was malformed, truncated or of an unknown type."""


def encode(message: Message) -> bytes:
    return pickle.dumps(message, protocol=5)


def decode(payload: bytes | memoryview) -> Message:
    try:
        message = pickle.loads(payload)
    except Exception as exc:
        raise ProtocolError(f"undecodable message ({len(payload)} bytes): {exc!r}") from None
    if not isinstance(message, Message):
        raise ProtocolError(f"not a protocol message: {type(message).__name__}")
    return message


_msg = dataclass(frozen=True, slots=True)


# ----------------------------------------------------------------------------- values


@_msg
class ShmLocation(Message):
    """Where a large object's bytes live: a file in a node's shared-memory directory."""

    object_id: bytes
    node_id: bytes
    path: str
    size: int


@_msg
class ObjectValue(Message):
    """A resolved object: inline bytes, a shared-memory location, or a serialized error."""

    object_id: bytes
    inline: bytes | None = None
    shm: ShmLocation | None = None
    is_error: bool = False
    # (object_id, owner_address) of refs serialized inside this value.
    contained: tuple[tuple[bytes, str], ...] = ()


# ------------------------------------------------------------------------------ tasks


@_msg
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


@_msg
class PushTask(Message):
    spec: TaskSpec
    lease_id: bytes | None = None


@_msg
class TaskDone(Message):
    task_id: bytes
    returns: tuple[ObjectValue, ...]
    worker_address: str
    # Set when the task raised: a serialized TaskError, also stored under every return id.
    error: bytes | None = None
    retryable_error: bool = False


@_msg
class CancelTask(Message):
    task_id: bytes
    force: bool = False


@_msg
class CreateActorTask(Message):
    """Sent by the control store to the worker leased for a new actor."""

    actor_id: bytes
    spec: TaskSpec
    max_concurrency: int
    is_async: bool
    reply_to: str


@_msg
class ActorCreated(Message):
    actor_id: bytes
    worker_address: str
    pid: int
    error: bytes | None = None


# ---------------------------------------------------------------- references/objects


@_msg
class GetObject(Message):
    """Ask an object's owner for its value; the owner answers once it is ready."""

    object_id: bytes
    reply_to: str


@_msg
class AddBorrower(Message):
    object_id: bytes
    borrower: str


@_msg
class RemoveBorrower(Message):
    object_id: bytes
    borrower: str


@_msg
class ObjectSealed(Message):
    location: ShmLocation
    owner_address: str


@_msg
class FreeObjects(Message):
    object_ids: tuple[bytes, ...]


# ----------------------------------------------------------------- node manager


@_msg
class RegisterWorker(Message):
    worker_id: bytes
    address: str
    pid: int


@_msg
class RequestLease(Message):
    lease_id: bytes
    job_id: int
    resources: dict[str, float]
    reply_to: str
    for_actor: bool = False
    actor_id: bytes | None = None
    strategy: Any = None


@_msg
class LeaseGranted(Message):
    lease_id: bytes
    worker_id: bytes
    worker_address: str
    node_id: bytes
    pid: int


@_msg
class LeaseInfeasible(Message):
    """The request cannot fit any node now; it stays queued until one joins that fits."""

    lease_id: bytes
    message: str


@_msg
class CancelLeaseRequest(Message):
    lease_id: bytes


@_msg
class ReturnLease(Message):
    lease_id: bytes
    kill_worker: bool = False


@_msg
class LeasedWorkerDied(Message):
    lease_id: bytes
    worker_id: bytes
    pid: int
    exit_code: int | None
    reason: str


@_msg
class WorkerBlocked(Message):
    worker_id: bytes


@_msg
class WorkerUnblocked(Message):
    worker_id: bytes


@_msg
class KillWorker(Message):
    worker_id: bytes
    reason: str = ""


@_msg
class RegisterDriver(Message):
    job_id: int
    address: str
    log_to_driver: bool


@_msg
class LogLines(Message):
    pid: int
    is_stderr: bool
    lines: tuple[str, ...]


@_msg
class NodeResourcesRequest(Message):
    request_id: int
    reply_to: str


@_msg
class NodeResourcesReply(Message):
    request_id: int
    total: dict[str, float]
    available: dict[str, float]


# --------------------------------------------------------------------- control store


@_msg
class NodeInfoMsg(Message):
    node_id: bytes
    address: str
    ip: str
    resources: dict[str, float]
    alive: bool = True
    labels: dict[str, str] = field(default_factory=dict)


@_msg
class RegisterNode(Message):
    node: NodeInfoMsg


@_msg
class NodeHeartbeat(Message):
    node_id: bytes
    available: dict[str, float]


@_msg
class UnregisterNode(Message):
    node_id: bytes


@_msg
class RegisterJob(Message):
    request_id: int
    reply_to: str
    driver_pid: int
    namespace: str
    ip: str


@_msg
class JobRegistered(Message):
    request_id: int
    job_id: int
    nodes: tuple[NodeInfoMsg, ...]
    session_dir: str


@_msg
class JobHeartbeat(Message):
    job_id: int


@_msg
class FinishJob(Message):
    job_id: int


@_msg
class JobFinishedNotice(Message):
    """Control store -> node managers: stop the job's workers except detached actors."""

    job_id: int
    keep_worker_ids: tuple[bytes, ...]


@_msg
class ActorSpec(Message):
    actor_id: bytes
    job_id: int
    class_name: str
    owner_address: str
    creation: TaskSpec
    resources: dict[str, float]
    name: str | None
    namespace: str
    detached: bool
    max_concurrency: int
    is_async: bool
    max_restarts: int = 0
    strategy: Any = None
    # Method name -> num_returns, so handles found by name know each method's shape.
    method_meta: dict[str, int] = field(default_factory=dict)


@_msg
class CreateActor(Message):
    request_id: int
    reply_to: str
    spec: ActorSpec


@_msg
class CreateActorReply(Message):
    request_id: int
    error: str | None = None


@_msg
class ActorUpdate(Message):
    actor_id: bytes
    state: str  # PENDING, ALIVE, DEAD
    address: str | None = None
    pid: int = 0
    node_id: bytes | None = None
    death_cause: str | None = None


@_msg
class SubscribeActor(Message):
    actor_id: bytes
    reply_to: str


@_msg
class GetNamedActor(Message):
    request_id: int
    reply_to: str
    name: str
    namespace: str


@_msg
class NamedActorReply(Message):
    request_id: int
    spec: ActorSpec | None
    state: ActorUpdate | None


@_msg
class KillActor(Message):
    actor_id: bytes
    no_restart: bool = True
    reason: str = "killed by nebula.kill()"


@_msg
class ActorOutOfScope(Message):
    actor_id: bytes


@_msg
class WorkerDied(Message):
    node_id: bytes
    worker_id: bytes
    pid: int
    actor_id: bytes | None
    exit_code: int | None
    reason: str


@_msg
class ActorWorkerLeased(Message):
    """Node manager -> control store: the worker for an actor's creation is ready."""

    actor_id: bytes
    grant: LeaseGranted


@_msg
class GetClusterInfo(Message):
    request_id: int
    reply_to: str


@_msg
class ClusterInfoReply(Message):
    request_id: int
    nodes: tuple[NodeInfoMsg, ...]
    available: dict[bytes, dict[str, float]]
    session_dir: str = ""


@_msg
class KvPut(Message):
    request_id: int
    reply_to: str
    key: str
    value: bytes
    overwrite: bool = True


@_msg
class KvGet(Message):
    request_id: int
    reply_to: str
    key: str


@_msg
class KvReply(Message):
    request_id: int
    value: bytes | None
    ok: bool = True


@_msg
class Shutdown(Message):
    reason: str = ""


@_msg
class Ping(Message):
    request_id: int
    reply_to: str


@_msg
class Pong(Message):
    request_id: int
