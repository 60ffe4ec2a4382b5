"""What a restarted controller needs to carry on where the dead one stopped.

The controller is a restartable actor. Its goals (the applications, the replica targets,
the proxies' options and the secret that callers and replicas share) are kept in the
cluster's key-value table (:mod:`nebula.util.kv`) whenever they change. Its observations
are not: the replicas are named actors, and a new controller finds the live ones and asks
each what it runs (:meth:`Replica.describe`), adopting those that belong to a deployment it
knows and stopping the others. Callers and proxies meanwhile keep sending requests to the
replicas they know, so HTTP keeps being served while the controller is away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from nebula.serve._common import (
    REPLICA_NAME_PREFIX,
    SERVE_NAMESPACE,
    ApplicationSpec,
    DeploymentID,
)
from nebula.serve._routing import ReplicaInfo
from nebula.serve.config import HTTPOptions

import nebula
from nebula.util import kv, list_named_actors

logger = logging.getLogger("nebula.serve")

KEY = "serve:controller-checkpoint"
_DESCRIBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AppRecord:
    spec: ApplicationSpec
    deleting: bool
    deployed_at: float


@dataclass(frozen=True)
class Checkpoint:
    token: bytes
    http_options: HTTPOptions
    proxy_location: str
    apps: tuple[AppRecord, ...] = ()
    targets: dict[DeploymentID, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicaDescription:
    """What a replica says it runs, for a controller that does not know it yet."""

    app: str
    deployment: str
    replica_id: str
    version: str
    info: ReplicaInfo | None  # None until it is initialized
    draining: bool
    user_config: Any


def save(checkpoint: Checkpoint | None) -> None:
    kv.put(KEY, b"" if checkpoint is None else cloudpickle.dumps(checkpoint))


def load() -> Checkpoint | None:
    data = kv.get(KEY)
    if not data:
        return None
    try:
        checkpoint = cloudpickle.loads(data)
    except Exception:
        logger.exception("serve controller: the checkpoint does not load; starting afresh")
        return None
    return checkpoint if isinstance(checkpoint, Checkpoint) else None


async def find_replicas() -> list[tuple[Any, ReplicaDescription | None]]:
    """The live replica actors, each with its description (None: it did not answer)."""
    names = [
        entry["name"]
        for entry in list_named_actors(all_namespaces=True)
        if isinstance(entry, dict)
        and entry.get("namespace") == SERVE_NAMESPACE
        and entry.get("name", "").startswith(REPLICA_NAME_PREFIX + ":")
    ]
    actors = []
    for name in names:
        try:
            actors.append(nebula.get_actor(name, namespace=SERVE_NAMESPACE))
        except ValueError:
            continue  # gone since it was listed

    async def describe(actor: Any) -> tuple[Any, ReplicaDescription | None]:
        try:
            answer = await asyncio.wait_for(actor.describe.remote(), _DESCRIBE_TIMEOUT_S)
        except Exception:
            return actor, None
        return actor, answer if isinstance(answer, ReplicaDescription) else None

    return list(await asyncio.gather(*(describe(actor) for actor in actors)))
