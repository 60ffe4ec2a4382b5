"""Node managers and drivers <-> control store: membership, jobs, actors, the key-value
table and placement groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nebula._protocol._base import CompactMessage, Message, ProtocolError, decode, decode_entry
from nebula._protocol.node import LeaseGranted
from nebula._protocol.objects import ObjectValue
from nebula._protocol.tasks import TaskSpec

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
