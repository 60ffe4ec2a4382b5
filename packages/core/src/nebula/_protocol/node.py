"""Worker <-> node manager: leases, worker state and logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nebula._protocol._base import Message

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
