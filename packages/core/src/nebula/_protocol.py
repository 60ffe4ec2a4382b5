"""Every message that crosses a process boundary, typed.

Messages are frozen, slotted dataclasses. ``encode``/``decode`` are the only way bytes become
messages: a payload that does not decode to a known message is rejected, never acted on.
Serialized user values travel inside messages as opaque ``bytes``; the shared-memory store
carries the large ones.
"""

from __future__ import annotations

import operator
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple


class Message:
    __slots__ = ()


class CompactMessage(Message):
    """A message sent in bulk (one entry per node in a cluster view, a heartbeat from
    every node each second): pickled as its class and its field values, which encodes and
    decodes in about half the time of a slotted dataclass's default state dictionary."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        cls = type(self)
        get = _FIELD_GETTERS.get(cls)
        if get is None:
            get = _FIELD_GETTERS[cls] = _field_getter(cls)
        return cls, get(self)


def _field_getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    names = [f.name for f in fields(cls)]
    if len(names) == 1:
        return lambda message: (getattr(message, names[0]),)
    return operator.attrgetter(*names)


_FIELD_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


class ProtocolError(Exception):
    """A payload was malformed, truncated or of an unknown type."""


def encode(message: Message) -> bytes:
    return pickle.dumps(message, protocol=5)


def encode_entry(value: Any) -> bytes:
    """Encode a plain value (a dict of floats, say) carried pre-encoded inside a message,
    so that one encoding serves every message that carries it."""
    return pickle.dumps(value, protocol=5)


def decode_entry(payload: bytes) -> Any:
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise ProtocolError(f"undecodable entry ({len(payload)} bytes): {exc!r}") from None


def decode(payload: bytes | memoryview) -> Message:
    try:
        message = pickle.loads(payload)
    except Exception as exc:
        raise ProtocolError(f"undecodable message ({len(payload)} bytes): {exc!r}") from None
    if not isinstance(message, Message):
        raise ProtocolError(f"not a protocol message: {type(message).__name__}")
    return message


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ShmLocation(Message):
    """Where a large object's bytes live: a file in a node's shared-memory directory."""

    object_id: bytes
    node_id: bytes
    path: str
    size: int
    owner_address: str = ""


@dataclass(frozen=True, slots=True)
class ObjectValue(Message):
    """A resolved object: inline bytes, a shared-memory location, or a serialized error."""

    object_id: bytes
    inline: bytes | None = None
    shm: ShmLocation | None = None
    is_error: bool = False
    # (object_id, owner_address) of refs serialized inside this value.
    contained: tuple[tuple[bytes, str], ...] = ()


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


# ---------------------------------------------------------------- references/objects


@dataclass(frozen=True, slots=True)
class GetObject(Message):
    """Ask an object's owner for its value; the owner answers once it is ready."""

    object_id: bytes
    reply_to: str


@dataclass(frozen=True, slots=True)
class AddBorrower(Message):
    object_id: bytes
    borrower: str


@dataclass(frozen=True, slots=True)
class RemoveBorrower(Message):
    object_id: bytes
    borrower: str


@dataclass(frozen=True, slots=True)
class ObjectSealed(Message):
    location: ShmLocation
    owner_address: str
    # A copy of an object whose primary lives on another node: evictable.
    is_copy: bool = False


@dataclass(frozen=True, slots=True)
class CreateObject(Message):
    """Reserve room in the node's store before writing an object of ``size`` bytes."""

    request_id: int
    reply_to: str
    object_id: bytes
    size: int
    # A file the writer kept from a freed object (KeepFreed) and now writes this one into.
    retained_path: str | None = None


@dataclass(frozen=True, slots=True)
class KeepFreed(Message):
    """Owner -> node manager: a freed object's file is kept (renamed to ``path``) by the
    owner for its next write; count it as used, delete it when room is needed."""

    object_id: bytes
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class CreateObjectReply(Message):
    request_id: int
    error: str | None = None
    # The store put a freed object's file (its pages already allocated) at the new object's
    # path: the writer overwrites it instead of creating the file.
    reused: bool = False
    # The object is larger than the whole store: the writer puts it in this file on disk
    # instead, and readers map it from there (through the page cache).
    disk_path: str | None = None


@dataclass(frozen=True, slots=True)
class RestoreObject(Message):
    """Bring a spilled object back into shared memory."""

    request_id: int
    reply_to: str
    object_id: bytes


@dataclass(frozen=True, slots=True)
class RestoreObjectReply(Message):
    request_id: int
    location: ShmLocation | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FreeObjects(Message):
    object_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PullObject(Message):
    """Ask the node manager holding an object for one chunk of its bytes."""

    request_id: int
    reply_to: str
    object_id: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class BulkPortRequest(Message):
    """Ask a node manager for the port it serves objects' bytes on (``_object_store.bulk``)."""

    request_id: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class BulkPortReply(Message):
    request_id: int
    port: int


@dataclass(frozen=True, slots=True)
class ObjectChunk(Message):
    request_id: int
    data: bytes
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AddObjectCopy(Message):
    """Reader -> owner: a copy now lives on ``node_id`` too; free it with the object."""

    object_id: bytes
    node_id: bytes
    node_manager: str


# ----------------------------------------------------------------- node manager


@dataclass(frozen=True, slots=True)
class RegisterWorker(Message):
    worker_id: bytes
    address: str
    pid: int


@dataclass(frozen=True, slots=True)
class RequestLease(Message):
    lease_id: bytes
    job_id: int
    resources: dict[str, float]
    reply_to: str
    for_actor: bool = False
    actor_id: bytes | None = None
    strategy: Any = None
    # How many node managers already passed this request on: a spilled request is queued
    # where it lands unless it can never fit there.
    spill_count: int = 0


@dataclass(frozen=True, slots=True)
class LeaseGranted(Message):
    lease_id: bytes
    worker_id: bytes
    worker_address: str
    node_id: bytes
    pid: int
    node_manager: str = ""
    gpu_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LeaseSpillback(Message):
    """Ask ``node_manager`` instead: this node is busy or lacks what the request needs."""

    lease_id: bytes
    node_id: bytes
    node_manager: str
    spill_count: int


@dataclass(frozen=True, slots=True)
class LeaseInfeasible(Message):
    """The request cannot fit any node now; it stays queued until one joins that fits."""

    lease_id: bytes
    message: str


@dataclass(frozen=True, slots=True)
class CancelLeaseRequest(Message):
    lease_id: bytes


@dataclass(frozen=True, slots=True)
class ReturnLease(Message):
    lease_id: bytes
    kill_worker: bool = False


@dataclass(frozen=True, slots=True)
class LeasedWorkerDied(Message):
    lease_id: bytes
    worker_id: bytes
    pid: int
    exit_code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class WorkerBlocked(Message):
    worker_id: bytes


@dataclass(frozen=True, slots=True)
class WorkerUnblocked(Message):
    worker_id: bytes


@dataclass(frozen=True, slots=True)
class KillWorker(Message):
    worker_id: bytes
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RegisterDriver(Message):
    job_id: int
    address: str
    log_to_driver: bool


@dataclass(frozen=True, slots=True)
class LogLines(Message):
    pid: int
    is_stderr: bool
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeResourcesRequest(Message):
    request_id: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class NodeResourcesReply(Message):
    request_id: int
    total: dict[str, float]
    available: dict[str, float]
    object_store_available: int = 0


# --------------------------------------------------------------------- control store


@dataclass(frozen=True, slots=True)
class NodeInfoMsg(CompactMessage):
    node_id: bytes
    address: str
    ip: str
    resources: dict[str, float]
    alive: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    # The capacity of the node's object store (reported, not scheduled on).
    object_store_memory: int = 0


@dataclass(frozen=True, slots=True)
class RegisterNode(Message):
    node: NodeInfoMsg


@dataclass(frozen=True, slots=True)
class NodeHeartbeat(CompactMessage):
    node_id: bytes
    available: dict[str, float]
    # Totals change while the node holds placement-group bundles.
    total: dict[str, float] = field(default_factory=dict)
    # The cluster view the node holds (0: none): it is sent what changed since.
    view_epoch: int = 0
    view_version: int = 0


@dataclass(frozen=True, slots=True)
class UnregisterNode(Message):
    node_id: bytes


@dataclass(frozen=True, slots=True)
class ClusterViewDelta(CompactMessage):
    """Control store -> node manager: how the cluster view changed from ``base_version`` to
    ``version`` (``full``: the whole view, replacing the node's copy).

    ``nodes`` are the nodes that joined, died or changed their totals, as they are now;
    ``available`` the free resources of some nodes (every change when few, else the
    latest ones and a rotating share of the rest); a node never given free resources has
    all of them free (a node joins idle). Entries are encoded once by the control
    store and carried as they are (``node_infos``/``free_resources`` decode them): a join
    goes to every node. A delta applies to a copy holding ``base_version`` or newer of the
    same ``epoch`` (one control store's lifetime); a copy older than ``base_version``
    missed a change and asks for the full view.
    """

    epoch: int
    base_version: int
    version: int
    # Each an encoded NodeInfoMsg.
    nodes: tuple[bytes, ...]
    # Node id -> its encoded free resources, as they differ from its totals.
    available: dict[bytes, bytes]
    full: bool = False

    def node_infos(self) -> list[NodeInfoMsg]:
        infos = [decode(entry) for entry in self.nodes]
        if not all(isinstance(info, NodeInfoMsg) for info in infos):
            raise ProtocolError("a cluster view entry is not a NodeInfoMsg")
        return infos  # type: ignore[return-value]

    def free_resources(self) -> dict[bytes, dict[str, float]]:
        """Node id -> how its free resources differ from its totals (see
        ``resources_diff``): apply to the totals of the node as this delta leaves it."""
        return {node_id: decode_entry(entry) for node_id, entry in self.available.items()}


def resources_diff(available: dict[str, float], total: dict[str, float]) -> dict[str, float]:
    """``available`` as it differs from ``total``: ``total`` updated with the result is
    ``available`` again (a resource it lacks counts as zero, as in every fit check)."""
    diff = {name: amount for name, amount in available.items() if total.get(name) != amount}
    for name in total:
        if name not in available:
            diff[name] = 0.0
    return diff


@dataclass(frozen=True, slots=True)
class NodeDied(CompactMessage):
    """Published to drivers and node managers (who tell their workers) when a node dies."""

    node_id: bytes
    reason: str
    node_manager: str = ""


@dataclass(frozen=True, slots=True)
class RegisterJob(Message):
    request_id: int
    reply_to: str
    driver_pid: int
    namespace: str
    ip: str
    # The driver's command line, and the job submission that started it (if one did).
    entrypoint: str = ""
    submission_id: str = ""


@dataclass(frozen=True, slots=True)
class JobRegistered(Message):
    request_id: int
    job_id: int
    nodes: tuple[NodeInfoMsg, ...]
    session_dir: str


@dataclass(frozen=True, slots=True)
class JobHeartbeat(Message):
    job_id: int


@dataclass(frozen=True, slots=True)
class FinishJob(Message):
    job_id: int


@dataclass(frozen=True, slots=True)
class JobFinishedNotice(Message):
    """Control store -> node managers: stop the job's workers except detached actors."""

    job_id: int
    keep_worker_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class MethodMeta(Message):
    """What a caller needs to know of one actor method (``@nebula.method(...)``)."""

    # -1: a generator (the call returns an ObjectRefGenerator).
    num_returns: int = 1
    concurrency_group: str = ""
    # None: the actor's max_task_retries.
    max_task_retries: int | None = None
    retry_exceptions: bool | tuple[type, ...] = False


@dataclass(frozen=True, slots=True)
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
    max_task_retries: int = 0
    strategy: Any = None
    # Method name -> its options, so handles found by name know each method's shape.
    method_meta: dict[str, MethodMeta] = field(default_factory=dict)
    concurrency_groups: dict[str, int] = field(default_factory=dict)
    # How many calls one caller may have unfinished before .remote() raises (-1: no limit).
    max_pending_calls: int = -1


@dataclass(frozen=True, slots=True)
class CreateActor(Message):
    request_id: int
    reply_to: str
    spec: ActorSpec


@dataclass(frozen=True, slots=True)
class CreateActorReply(Message):
    request_id: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ActorUpdate(Message):
    actor_id: bytes
    state: str  # PENDING, ALIVE, DEAD
    address: str | None = None
    pid: int = 0
    node_id: bytes | None = None
    death_cause: str | None = None
    # How many times the actor has been restarted (RESTARTING/ALIVE after a restart).
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class SubscribeActor(Message):
    actor_id: bytes
    reply_to: str


@dataclass(frozen=True, slots=True)
class GetNamedActor(Message):
    request_id: int
    reply_to: str
    name: str
    namespace: str


@dataclass(frozen=True, slots=True)
class NamedActorReply(Message):
    request_id: int
    spec: ActorSpec | None
    state: ActorUpdate | None


@dataclass(frozen=True, slots=True)
class ListActors(Message):
    request_id: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class ActorListReply(Message):
    request_id: int
    # One record per actor the control store knows, dead ones included: actor_id,
    # class_name, state, name, namespace, job_id, pid, node_id, death_cause, restarts.
    actors: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class KillActor(Message):
    actor_id: bytes
    no_restart: bool = True
    reason: str = "killed by nebula.kill()"


@dataclass(frozen=True, slots=True)
class ActorOutOfScope(Message):
    actor_id: bytes


@dataclass(frozen=True, slots=True)
class WorkerDied(Message):
    node_id: bytes
    worker_id: bytes
    pid: int
    actor_id: bytes | None
    exit_code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ActorWorkerLeased(Message):
    """Node manager -> control store: the worker for an actor's creation is ready."""

    actor_id: bytes
    grant: LeaseGranted


@dataclass(frozen=True, slots=True)
class GetClusterInfo(Message):
    request_id: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class ClusterInfoReply(Message):
    request_id: int
    nodes: tuple[NodeInfoMsg, ...]
    available: dict[bytes, dict[str, float]]
    session_dir: str = ""


@dataclass(frozen=True, slots=True)
class KvPut(Message):
    request_id: int
    reply_to: str
    key: str
    value: bytes
    overwrite: bool = True


@dataclass(frozen=True, slots=True)
class KvGet(Message):
    request_id: int
    reply_to: str
    key: str


@dataclass(frozen=True, slots=True)
class KvReply(Message):
    request_id: int
    value: bytes | None
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Shutdown(Message):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Ping(Message):
    request_id: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class Pong(Message):
    request_id: int


# ---------------------------------------------------------------- placement groups


@dataclass(frozen=True, slots=True)
class CreatePlacementGroup(Message):
    pg_id: bytes
    bundles: tuple[dict[str, float], ...]
    strategy: str
    name: str
    job_id: int
    owner_address: str
    ready_object_id: bytes
    detached: bool = False


@dataclass(frozen=True, slots=True)
class RemovePlacementGroup(Message):
    """Remove a group; with ``reply_to``, answered (a PlacementGroupReply) once its actors are
    marked dead, so the remover's next call to one of them fails."""

    pg_id: bytes
    request_id: int = 0
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class ReserveBundle(Message):
    """Control store -> node manager: set aside a bundle's resources for a group."""

    pg_id: bytes
    index: int
    resources: dict[str, float]
    reply_to: str


@dataclass(frozen=True, slots=True)
class BundleReserved(Message):
    pg_id: bytes
    index: int
    node_id: bytes
    ok: bool


@dataclass(frozen=True, slots=True)
class ReleaseBundles(Message):
    """Give a group's bundles on this node back; stop the work that ran in them."""

    pg_id: bytes


@dataclass(frozen=True, slots=True)
class GetPlacementGroup(Message):
    request_id: int
    reply_to: str
    pg_id: bytes | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class PlacementGroupReply(Message):
    request_id: int
    # (pg_id, name, strategy, state, bundles, bundle node ids) of each group asked for.
    groups: tuple[tuple[bytes, str, str, str, tuple[dict[str, float], ...], tuple[bytes, ...]], ...]


@dataclass(frozen=True, slots=True)
class PlacementGroupReady(Message):
    """Control store -> the group's creator: the value of the group's ready() ref."""

    value: ObjectValue


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
