"""Read-only descriptions passed to lifecycle hooks, so plugins never hold runtime internals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["JobInfo", "NodeInfo", "WorkerInfo"]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node that has joined the cluster; ``resources`` are its totals."""

    node_id: str
    address: str
    resources: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process that is ready to run tasks on node ``node_id``."""

    worker_id: str
    pid: int
    node_id: str


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job, that is one driver's session between ``nebula.init`` and its shutdown."""

    job_id: str
    driver_pid: int
    namespace: str
