"""The serve controller: a detached, named actor that keeps every deployment at its target.

It holds the applications, starts and stops replica actors (rolling updates, scaling,
replacing the unhealthy and the dead), runs the proxies, and tells callers about replica
sets and routes through long polls: a caller asks with the version it knows and the answer
comes when there is a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from typing import Any

import cloudpickle
from nebula.serve import _checkpoint
from nebula.serve._autoscaling import AutoscalingPolicy
from nebula.serve._common import (
    PROXY_NAME_PREFIX,
    REPLICA_NAME_PREFIX,
    SERVE_NAMESPACE,
    ApplicationSpec,
    DeploymentID,
    ReplicaSetUpdate,
    Route,
    RouteTableUpdate,
    replica_actor_options,
)
from nebula.serve._deployment_state import DeploymentState, ReplicaRecord, ReplicaState
from nebula.serve._replica import Replica
from nebula.serve._routing import ReplicaInfo
from nebula.serve.config import HTTPOptions, ProxyLocation

import nebula

logger = logging.getLogger("nebula.serve")

_TICK_S = 0.1
_NODES_CHECK_S = 1.0
_POLL_TIMEOUT_S = 30.0
_ROUTES = ("routes",)


class _LongPoll:
    def __init__(self) -> None:
        # Versions start at a random number: a caller still holding a version from a
        # controller that died must not find it current in the one that replaced it.
        self.epoch = secrets.randbelow(1 << 40) + 1
        self.versions: dict[Any, int] = {}
        self._events: dict[Any, asyncio.Event] = {}

    def version(self, key: Any) -> int:
        return self.versions.get(key, self.epoch)

    def bump(self, key: Any) -> None:
        self.versions[key] = self.version(key) + 1
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    async def wait(self, key: Any, version: int) -> None:
        if self.version(key) != version:
            return
        event = self._events.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), _POLL_TIMEOUT_S)
        except asyncio.TimeoutError:
            pass


class _App:
    def __init__(self, spec: ApplicationSpec, deployed_at: float | None = None) -> None:
        self.spec = spec
        self.deleting = False
        self.deployed_at = time.time() if deployed_at is None else deployed_at


class ServeController:
    def __init__(self) -> None:
        self.token = secrets.token_bytes(32)
        self.http_options = HTTPOptions()
        self.proxy_location = ProxyLocation.HeadOnly
        self.apps: dict[str, _App] = {}
        self.deployments: dict[DeploymentID, DeploymentState] = {}
        self.proxies: dict[str, Any] = {}
        self.proxy_addresses: dict[str, str] = {}
        self._poll = _LongPoll()
        self._loop_task: asyncio.Task[None] | None = None
        self._nodes_task: asyncio.Task[None] | None = None
        self._replica_class: Any = None
        self._recovery: asyncio.Future[None] | None = None
        self._saved_targets: dict[DeploymentID, int] = {}
        self._needs_adoption = False
        self._restore(_checkpoint.load())

    # --------------------------------------------------------------- recovery

    def _restore(self, checkpoint: _checkpoint.Checkpoint | None) -> None:
        """Take the goals a previous controller saved (it died; this one replaces it)."""
        if checkpoint is None:
            return
        self.token = checkpoint.token
        self.http_options = checkpoint.http_options
        self.proxy_location = checkpoint.proxy_location
        for record in checkpoint.apps:
            app = _App(record.spec, record.deployed_at)
            app.deleting = record.deleting
            self.apps[record.spec.name] = app
            for dep in record.spec.deployments:
                key = DeploymentID(dep.name, record.spec.name)
                state = DeploymentState(key, dep)
                state.target = checkpoint.targets.get(key, state.target)
                if record.deleting:
                    state.delete()
                self.deployments[key] = state
        self._saved_targets = dict(checkpoint.targets)
        self._needs_adoption = True  # the replicas are adopted on the first call

    async def _ensure_running(self) -> None:
        """After a restart, adopt the live replicas and restart the loops before serving
        any call (the first call of anyone: proxies and routers call within a second)."""
        if not self._needs_adoption:
            return
        if self._recovery is None:
            self._recovery = asyncio.get_running_loop().create_future()
            try:
                await self._adopt_replicas()
                self._start_loops()
                if self.proxy_location != ProxyLocation.Disabled:
                    try:
                        await self._ensure_proxies()
                    except Exception as exc:
                        logger.warning("serve controller: a proxy did not start: %s", exc)
            finally:
                self._needs_adoption = False
                self._recovery.set_result(None)
        else:
            await asyncio.shield(self._recovery)

    async def _adopt_replicas(self) -> None:
        now = time.monotonic()
        for actor, description in await _checkpoint.find_replicas():
            state = None
            if description is not None:
                key = DeploymentID(description.deployment, description.app)
                state = self.deployments.get(key)
            if (
                state is None
                or description is None
                or description.info is None
                or description.draining
                or description.version != state.version
            ):
                _kill(actor)  # not one a deployment wants as it is: it was on its way out
                continue
            record = ReplicaRecord(description.replica_id, actor, state.version)
            record.info = description.info
            record.state = ReplicaState.RUNNING
            record.last_check = now
            state.replicas[record.replica_id] = record
            state.started(record)
            wanted = state.spec.config.user_config
            if wanted is not None and wanted != description.user_config:
                asyncio.get_running_loop().create_task(self._reconfigure(state, record, wanted))
            self._poll.bump(("replicas", state.key))
        self._poll.bump(_ROUTES)
        logger.info(
            "serve controller: recovered %d applications and %d replicas",
            len(self.apps),
            sum(len(s.replicas) for s in self.deployments.values()),
        )

    def _save(self) -> None:
        """Keep the goals in the cluster's key-value table, for a controller that replaces
        this one."""
        targets = {key: state.target for key, state in self.deployments.items()}
        self._saved_targets = targets
        _checkpoint.save(
            _checkpoint.Checkpoint(
                self.token,
                self.http_options,
                self.proxy_location,
                tuple(
                    _checkpoint.AppRecord(app.spec, app.deleting, app.deployed_at)
                    for app in self.apps.values()
                ),
                targets,
            )
        )

    def _start_loops(self) -> None:
        if self._loop_task is None:
            loop = asyncio.get_running_loop()
            self._loop_task = loop.create_task(self._run())
            self._nodes_task = loop.create_task(self._follow_nodes())

    # ------------------------------------------------------------------ start

    async def start(self, http_options: HTTPOptions | None, proxy_location: str) -> str:
        await self._ensure_running()
        self._start_loops()
        if http_options is not None and not self.proxies:
            self.http_options = http_options
        self.proxy_location = proxy_location
        self._save()
        if proxy_location != ProxyLocation.Disabled:
            await self._ensure_proxies()
        return next(iter(self.proxy_addresses.values()), "")

    def _proxy_nodes(self) -> list[str]:
        if self.proxy_location == ProxyLocation.Disabled:
            return []
        if self.proxy_location == ProxyLocation.EveryNode:
            return [n["NodeID"] for n in nebula.nodes() if n["Alive"]]
        return [nebula.get_runtime_context().get_node_id()]  # the head's: see serve.start

    async def _ensure_proxies(self) -> None:
        """Start a proxy on each node that should have one and has none; forget those
        of nodes that left. Raises when a proxy cannot listen."""
        from nebula.serve._proxy import ProxyActor

        from nebula.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = self._proxy_nodes()
        for node_id in [n for n in self.proxies if n not in nodes]:
            _kill(self.proxies.pop(node_id))
            self.proxy_addresses.pop(node_id, None)
        started = []
        for node_id in nodes:
            if node_id in self.proxies:
                continue
            proxy = (
                nebula.remote(ProxyActor)
                .options(
                    name=f"{PROXY_NAME_PREFIX}:{node_id}",
                    namespace=SERVE_NAMESPACE,
                    lifetime="detached",
                    num_cpus=0,
                    max_concurrency=10_000,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                    get_if_exists=True,
                )
                .remote(self.http_options)
            )
            self.proxies[node_id] = proxy
            started.append((node_id, proxy))
        failed: BaseException | None = None
        for node_id, proxy in started:
            try:
                self.proxy_addresses[node_id] = await proxy.ready.remote()
            except Exception as exc:
                self.proxies.pop(node_id, None)
                _kill(proxy)
                failed = failed or exc
        if failed is not None:
            raise failed

    async def _follow_nodes(self) -> None:
        """With a proxy on every node, nodes that join get one and nodes that die lose it."""
        while True:
            await asyncio.sleep(_NODES_CHECK_S)
            if self.proxy_location != ProxyLocation.EveryNode:
                continue
            try:
                await self._ensure_proxies()
            except Exception as exc:
                logger.warning("serve controller: a proxy did not start: %s", exc)

    # ------------------------------------------------------------- deploying

    async def deploy_application(self, spec: ApplicationSpec) -> None:
        await self._ensure_running()
        prefix = spec.route_prefix
        if prefix is not None:
            for other in self.apps.values():
                if other.spec.name != spec.name and other.spec.route_prefix == prefix:
                    raise ValueError(
                        f"Route prefix {prefix!r} is already used by application "
                        f"{other.spec.name!r}; give application {spec.name!r} another one."
                    )
        previous = self.apps.get(spec.name)
        if previous is not None and previous.deleting:
            raise ValueError(f"Application {spec.name!r} is being deleted; retry shortly.")
        self.apps[spec.name] = _App(spec)
        wanted = set()
        for dep in spec.deployments:
            key = DeploymentID(dep.name, spec.name)
            wanted.add(key)
            state = self.deployments.get(key)
            if state is None:
                self.deployments[key] = DeploymentState(key, dep)
            else:
                reconfigure = state.update(dep)
                if reconfigure:
                    for record in state.running():
                        asyncio.get_running_loop().create_task(
                            self._reconfigure(state, record, dep.config.user_config)
                        )
            self._poll.bump(("replicas", key))
        if previous is not None:
            for key, state in self.deployments.items():
                if key.app == spec.name and key not in wanted:
                    state.delete()
        self._poll.bump(_ROUTES)
        self._save()

    async def _reconfigure(
        self, state: DeploymentState, record: ReplicaRecord, config: Any
    ) -> None:
        try:
            await record.actor.reconfigure.remote(config)
        except Exception as exc:
            logger.error("reconfigure of %s failed: %s", record.replica_id, exc)
            self._replace(state, record, f"reconfigure failed: {exc}")

    async def delete_apps(self, names: list[str]) -> None:
        await self._ensure_running()
        for name in names:
            app = self.apps.get(name)
            if app is None:
                continue
            app.deleting = True
            for key, state in self.deployments.items():
                if key.app == name:
                    state.delete()
        self._poll.bump(_ROUTES)
        self._save()

    async def app_names(self) -> list[str]:
        await self._ensure_running()
        return list(self.apps)

    async def get_app_status(self, name: str) -> tuple[str, str, bytes | None]:
        await self._ensure_running()
        app = self.apps.get(name)
        if app is None:
            return "NOT_STARTED", "", None
        status, message, error = self._app_status(app)
        return status, message, cloudpickle.dumps(error) if error is not None else None

    async def get_ingress(self, name: str) -> str | None:
        await self._ensure_running()
        app = self.apps.get(name)
        return app.spec.ingress if app is not None else None

    def _app_status(self, app: _App) -> tuple[str, str, BaseException | None]:
        if app.deleting:
            return "DELETING", "", None
        states = [
            self.deployments[DeploymentID(d.name, app.spec.name)] for d in app.spec.deployments
        ]
        for state in states:
            if state.failed:
                return "DEPLOY_FAILED", state.message, state.last_error
        statuses = {state.status() for state in states}
        if statuses <= {"HEALTHY"}:
            return "RUNNING", "", None
        if "UNHEALTHY" in statuses:
            return "UNHEALTHY", "; ".join(s.message for s in states if s.message), None
        return "DEPLOYING", "", None

    async def status(self) -> dict[str, Any]:
        await self._ensure_running()
        apps: dict[str, Any] = {}
        for name, app in self.apps.items():
            status, message, _ = self._app_status(app)
            deployments = {}
            for dep in app.spec.deployments:
                state = self.deployments[DeploymentID(dep.name, name)]
                deployments[dep.name] = {
                    "status": state.status(),
                    "message": state.message,
                    "replica_states": state.replica_counts(),
                    "target_replicas": state.target,
                }
            apps[name] = {
                "status": status,
                "message": message,
                "route_prefix": app.spec.route_prefix,
                "ingress": app.spec.ingress,
                "deployed_at": app.deployed_at,
                "deployments": deployments,
            }
        return {
            "applications": apps,
            "proxies": {node: "HEALTHY" for node in self.proxy_addresses},
            "http_options": self.http_options,
        }

    # ------------------------------------------------------------ long polls

    async def listen_for_replicas(self, key: DeploymentID, version: int) -> ReplicaSetUpdate:
        await self._ensure_running()
        poll_key = ("replicas", key)
        await self._poll.wait(poll_key, version)
        version = self._poll.version(poll_key)
        state = self.deployments.get(key)
        if state is None or state.deleted:
            return ReplicaSetUpdate(version, exists=False)
        config = state.spec.config
        autoscaling = config.autoscaling_config
        return ReplicaSetUpdate(
            version,
            exists=True,
            replicas=tuple(r.info for r in state.running() if r.info is not None),
            max_queued_requests=config.max_queued_requests,
            metrics_interval_s=autoscaling.metrics_interval_s if autoscaling else None,
            token=self.token,
        )

    async def listen_for_routes(self, version: int) -> RouteTableUpdate:
        await self._ensure_running()
        await self._poll.wait(_ROUTES, version)
        routes = tuple(
            Route(app.spec.route_prefix, name, DeploymentID(app.spec.ingress, name))
            for name, app in self.apps.items()
            if app.spec.route_prefix is not None and not app.deleting
        )
        return RouteTableUpdate(self._poll.version(_ROUTES), routes)

    async def record_handle_load(
        self, key: DeploymentID, caller_id: str, load: float, at: float
    ) -> None:
        await self._ensure_running()
        state = self.deployments.get(key)
        if state is not None and state.autoscaler is not None:
            state.autoscaler.record(caller_id, load, at)
            if state.target == 0 and load > 0:
                self._reconcile_one(state)

    async def report_replica_lost(self, key: DeploymentID, replica_id: str) -> None:
        await self._ensure_running()
        state = self.deployments.get(key)
        if state is None:
            return
        record = state.replicas.get(replica_id)
        if record is not None and record.state is ReplicaState.RUNNING:
            asyncio.get_running_loop().create_task(self._check_health(state, record))

    # ------------------------------------------------------------ reconciling

    async def _run(self) -> None:
        while True:
            try:
                for state in list(self.deployments.values()):
                    self._reconcile_one(state)
                self._forget_deleted()
                targets = {key: state.target for key, state in self.deployments.items()}
                if targets != self._saved_targets:  # autoscaling moved, or a deletion ended
                    self._save()
            except Exception:
                logger.exception("serve controller: reconcile failed")
            await asyncio.sleep(_TICK_S)

    def _reconcile_one(self, state: DeploymentState) -> None:
        now = time.monotonic()
        if state.autoscaler is not None and not state.deleted:
            state.target = state.autoscaler.desired(state.target)
        plan = state.plan()
        for _ in range(plan.start):
            self._start_replica(state)
        for record in plan.stop:
            self._stop_replica(state, record)
        period = state.spec.config.health_check_period_s
        for record in state.running():
            if not record.checking and now - record.last_check >= period:
                record.checking = True
                asyncio.get_running_loop().create_task(self._check_health(state, record))

    def _forget_deleted(self) -> None:
        for key, state in list(self.deployments.items()):
            if state.deleted and not state.replicas:
                del self.deployments[key]
                self._poll.bump(("replicas", key))
        for name, app in list(self.apps.items()):
            if app.deleting and not any(k.app == name for k in self.deployments):
                del self.apps[name]

    def _start_replica(self, state: DeploymentState) -> None:
        if self._replica_class is None:
            self._replica_class = nebula.remote(Replica)
        replica_id = f"{state.key.app}#{state.key.name}#{uuid.uuid4().hex[:6]}"
        options = replica_actor_options(state.spec.config.ray_actor_options)
        actor = self._replica_class.options(
            name=f"{REPLICA_NAME_PREFIX}:{replica_id}",
            namespace=SERVE_NAMESPACE,
            lifetime="detached",
            max_concurrency=1000,
            **options,
        ).remote(replica_id, state.key.app)
        record = ReplicaRecord(replica_id, actor, state.version)
        state.replicas[replica_id] = record
        asyncio.get_running_loop().create_task(self._initialize(state, record))

    async def _initialize(self, state: DeploymentState, record: ReplicaRecord) -> None:
        spec = state.spec
        try:
            host, port, node_id = await record.actor.initialize.remote(spec, self.token)
        except Exception as exc:
            state.start_failed(record, exc)
            state.replicas.pop(record.replica_id, None)
            _kill(record.actor)
            logger.error("replica %s failed to start: %s", record.replica_id, exc)
            return
        if record.state is not ReplicaState.STARTING:
            return  # stopped while it started
        record.info = ReplicaInfo(
            record.replica_id, host, port, spec.config.max_ongoing_requests, node_id
        )
        record.state = ReplicaState.RUNNING
        record.last_check = time.monotonic()
        state.started(record)
        self._poll.bump(("replicas", state.key))

    def _stop_replica(self, state: DeploymentState, record: ReplicaRecord) -> None:
        was_running = record.state is ReplicaState.RUNNING
        record.state = ReplicaState.STOPPING
        if was_running:
            self._poll.bump(("replicas", state.key))
        asyncio.get_running_loop().create_task(self._drain_and_kill(state, record, was_running))

    async def _drain_and_kill(
        self, state: DeploymentState, record: ReplicaRecord, was_running: bool
    ) -> None:
        config = state.spec.config
        if was_running:
            try:
                await asyncio.wait_for(
                    record.actor.drain.remote(
                        config.graceful_shutdown_wait_loop_s, config.graceful_shutdown_timeout_s
                    ),
                    config.graceful_shutdown_timeout_s + 5,
                )
            except Exception:
                pass
        _kill(record.actor)
        state.replicas.pop(record.replica_id, None)

    async def _check_health(self, state: DeploymentState, record: ReplicaRecord) -> None:
        record.checking = True
        try:
            await asyncio.wait_for(
                record.actor.check_health.remote(), state.spec.config.health_check_timeout_s
            )
        except Exception as exc:
            if record.state is ReplicaState.RUNNING:
                logger.warning("replica %s failed its health check: %s", record.replica_id, exc)
                self._replace(state, record, f"replica {record.replica_id} unhealthy: {exc}")
        finally:
            record.checking = False
            record.last_check = time.monotonic()

    def _replace(self, state: DeploymentState, record: ReplicaRecord, reason: str) -> None:
        state.message = reason
        state.replicas.pop(record.replica_id, None)
        record.state = ReplicaState.STOPPING
        self._poll.bump(("replicas", state.key))
        _kill(record.actor)
        self._reconcile_one(state)

    # -------------------------------------------------------------- shutdown

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        await self._ensure_running()
        await self.delete_apps(list(self.apps))
        deadline = time.monotonic() + timeout_s
        while self.deployments and time.monotonic() < deadline:
            await asyncio.sleep(_TICK_S)
        for state in self.deployments.values():
            for record in state.replicas.values():
                _kill(record.actor)
        for proxy in self.proxies.values():
            try:
                await asyncio.wait_for(proxy.stop.remote(), 10)
            except Exception:
                pass
            _kill(proxy)
        self.proxies.clear()
        self.proxy_addresses.clear()
        _checkpoint.save(None)
        for task in (self._loop_task, self._nodes_task):
            if task is not None:
                task.cancel()

    async def ping(self) -> bool:
        await self._ensure_running()
        return True


def _kill(actor: Any) -> None:
    try:
        nebula.kill(actor)
    except Exception:
        pass


__all__ = ["AutoscalingPolicy", "ServeController"]
