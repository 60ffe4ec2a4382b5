"""Names and records shared by the controller, the replicas, the proxies and the callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from nebula.serve._routing import ReplicaInfo

SERVE_NAMESPACE = "serve"
CONTROLLER_NAME = "SERVE_CONTROLLER"
PROXY_NAME_PREFIX = "SERVE_PROXY"
REPLICA_NAME_PREFIX = "SERVE_REPLICA"
# The method name under which the proxy sends an HTTP request to an ingress replica.
HTTP_METHOD = "__serve_http__"
REQUEST_ID_HEADER = "x-request-id"
# A resource only the head node has (a small amount of it pins an actor there).
HEAD_RESOURCE = "node:__internal_head__"


class DeploymentID(NamedTuple):
    """A deployment, named within its application."""

    name: str
    app: str

    def __str__(self) -> str:
        return f"{self.app}#{self.name}"


@dataclass(frozen=True)
class ReplicaSetUpdate:
    """What a caller needs to route to a deployment, sent on every change (long poll)."""

    version: int
    exists: bool
    replicas: tuple[ReplicaInfo, ...] = ()
    max_queued_requests: int = -1
    metrics_interval_s: float | None = None
    token: bytes = b""


@dataclass(frozen=True)
class Route:
    prefix: str
    app: str
    ingress: DeploymentID


@dataclass(frozen=True)
class RouteTableUpdate:
    version: int
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class DeploymentSpec:
    """A deployment as the controller receives it: code, arguments and settings."""

    name: str
    serialized_callable: bytes
    serialized_init_args: bytes
    config: Any  # DeploymentConfig
    is_function: bool
    code_version: str
    route_prefix: str | None = None


@dataclass(frozen=True)
class ApplicationSpec:
    name: str
    route_prefix: str | None
    ingress: str
    deployments: tuple[DeploymentSpec, ...] = field(default_factory=tuple)


def replica_actor_options(ray_actor_options: dict[str, Any]) -> dict[str, Any]:
    """The actor options a replica starts with: a CPU unless ``ray_actor_options`` say
    otherwise (as in Ray Serve)."""
    return {"num_cpus": 1, **ray_actor_options}
