"""A deployment's replicas and what to do about them: pure state, driven by the controller.

:meth:`DeploymentState.plan` compares the replicas there are with the target and the
current version and says how many to start and which to stop. A new version rolls out one
replica at a time: an old replica is stopped (drained first) only once every replica of the
new version is running, so callers always have somewhere to go or wait.
"""

from __future__ import annotations

import enum
import hashlib
import pickle
from dataclasses import dataclass, field
from typing import Any

from nebula.serve._autoscaling import AutoscalingPolicy
from nebula.serve._common import DeploymentID, DeploymentSpec
from nebula.serve._routing import ReplicaInfo

MAX_START_FAILURES = 3


class ReplicaState(enum.Enum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"


@dataclass(eq=False)
class ReplicaRecord:
    replica_id: str
    actor: Any
    version: str
    state: ReplicaState = ReplicaState.STARTING
    info: ReplicaInfo | None = None
    last_check: float = 0.0
    checking: bool = False


@dataclass
class Plan:
    start: int = 0
    stop: list[ReplicaRecord] = field(default_factory=list)


def replica_version(spec: DeploymentSpec) -> str:
    """What a running replica must match: code, arguments and the settings baked into it."""
    config = spec.config
    baked = pickle.dumps(
        (config.max_ongoing_requests, sorted(config.ray_actor_options.items(), key=str)),
    )
    return spec.code_version + "-" + hashlib.sha1(baked).hexdigest()[:8]


class DeploymentState:
    def __init__(self, key: DeploymentID, spec: DeploymentSpec) -> None:
        self.key = key
        self.spec = spec
        self.version = replica_version(spec)
        self.target = spec.config.initial_target()
        self.autoscaler = _autoscaler(spec)
        self.replicas: dict[str, ReplicaRecord] = {}
        self.failed = False
        self.deleted = False
        self.start_failures = 0
        self.ever_started = False
        self.message = ""
        self.last_error: BaseException | None = None

    def update(self, spec: DeploymentSpec) -> bool:
        """Take a redeployed spec; True when running replicas need ``reconfigure``."""
        old = self.spec
        self.spec = spec
        self.version = replica_version(spec)
        self.failed = False
        self.start_failures = 0
        self.message = ""
        self.last_error = None
        autoscaling = spec.config.autoscaling_config
        if autoscaling != old.config.autoscaling_config:
            self.autoscaler = _autoscaler(spec)
            if autoscaling is not None:
                self.target = max(
                    autoscaling.min_replicas, min(autoscaling.max_replicas, self.target)
                )
        if autoscaling is None:
            self.target = spec.config.num_replicas
        changed_user_config = old.config.user_config != spec.config.user_config
        return changed_user_config and spec.config.user_config is not None

    def delete(self) -> None:
        self.deleted = True
        self.target = 0

    def running(self) -> list[ReplicaRecord]:
        return [r for r in self.replicas.values() if r.state is ReplicaState.RUNNING]

    def plan(self) -> Plan:
        plan = Plan()
        live = [r for r in self.replicas.values() if r.state is not ReplicaState.STOPPING]
        old = [r for r in live if r.version != self.version]
        new = [r for r in live if r.version == self.version]
        if self.deleted:
            plan.stop = live
            return plan
        stopping_old = any(
            r.state is ReplicaState.STOPPING and r.version != self.version
            for r in self.replicas.values()
        )
        if old and not stopping_old and all(r.state is ReplicaState.RUNNING for r in new):
            # Starting replicas go first; among running ones, any will do.
            old.sort(key=lambda r: r.state is ReplicaState.RUNNING)
            plan.stop.append(old.pop(0))
        allowed_new = max(0, self.target - len(old))
        if len(new) < allowed_new and not self.failed:
            plan.start = allowed_new - len(new)
        elif len(new) > allowed_new:
            new.sort(key=lambda r: r.state is ReplicaState.RUNNING)
            plan.stop.extend(new[: len(new) - allowed_new])
        return plan

    def started(self, record: ReplicaRecord) -> None:
        self.ever_started = True
        self.start_failures = 0

    def start_failed(self, record: ReplicaRecord, error: BaseException) -> None:
        self.start_failures += 1
        self.last_error = error
        self.message = f"A replica failed to start: {error}"
        if self.start_failures >= MAX_START_FAILURES and not any(
            r.version == self.version and r.state is ReplicaState.RUNNING
            for r in self.replicas.values()
        ):
            self.failed = True

    def status(self) -> str:
        if self.failed:
            return "DEPLOY_FAILED"
        running = [r for r in self.running() if r.version == self.version]
        others = [r for r in self.replicas.values() if r.version != self.version]
        if len(running) == self.target and not others:
            return "HEALTHY"
        if self.ever_started and self.message and len(running) < self.target:
            return "UNHEALTHY"
        return "UPDATING"

    def replica_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.replicas.values():
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        return counts


def _autoscaler(spec: DeploymentSpec) -> AutoscalingPolicy | None:
    config = spec.config.autoscaling_config
    return AutoscalingPolicy(config) if config is not None else None


__all__ = ["DeploymentState", "Plan", "ReplicaRecord", "ReplicaState"]
