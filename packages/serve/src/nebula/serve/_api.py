"""``serve.start/run/status/delete/shutdown`` and the handles to running applications."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from nebula.serve import _client
from nebula.serve._common import (
    CONTROLLER_NAME,
    HEAD_RESOURCE,
    SERVE_NAMESPACE,
    replica_actor_options,
)
from nebula.serve._deployment import Application, build_application
from nebula.serve.config import HTTPOptions, LoggingConfig, ProxyLocation
from nebula.serve.exceptions import DeployFailedError, ServeError
from nebula.serve.handle import DeploymentHandle

import nebula

logger = logging.getLogger("nebula.serve")

__all__ = [
    "ApplicationStatusOverview",
    "DeploymentStatusOverview",
    "ServeStatus",
    "delete",
    "get_app_handle",
    "get_deployment_handle",
    "run",
    "shutdown",
    "start",
    "status",
]


def _ensure_nebula() -> None:
    if not nebula.is_initialized():
        nebula.init()


def _controller_or_none() -> Any:
    _ensure_nebula()  # serve.run / serve.status start or join a cluster, as Ray's do
    try:
        return nebula.get_actor(CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return None


def start(
    *,
    http_options: HTTPOptions | dict[str, Any] | None = None,
    proxy_location: str = ProxyLocation.HeadOnly,
    detached: bool = True,
    **_: Any,
) -> None:
    """Start serve on the cluster (the controller and its HTTP proxies) if it is not running.

    ``http_options`` (``host``, default 127.0.0.1; ``port``, default 8000;
    ``request_timeout_s``) apply when serve starts; a running serve keeps its own.
    """
    _ensure_nebula()
    options = HTTPOptions.from_value(http_options)
    if isinstance(http_options, dict) and "location" in http_options:
        proxy_location = http_options["location"]
    ProxyLocation.check(proxy_location)
    controller = _controller_or_none()
    if controller is None:
        from nebula.serve._controller import ServeController

        controller = (
            nebula.remote(ServeController)
            .options(
                name=CONTROLLER_NAME,
                namespace=SERVE_NAMESPACE,
                lifetime="detached",
                num_cpus=0,
                # On the head node, where the proxy of proxy_location="HeadOnly" runs.
                resources={HEAD_RESOURCE: 0.001},
                max_concurrency=100_000,
                max_restarts=-1,  # a restarted controller recovers: see _checkpoint
                get_if_exists=True,
            )
            .remote()
        )
    _client.reset()
    _client.set_controller(controller)
    nebula.get(controller.start.remote(options, proxy_location))


def run(
    target: Application,
    *,
    name: str = "default",
    route_prefix: str | None = "/",
    blocking: bool = False,
    logging_config: LoggingConfig | dict[str, Any] | None = None,
    _timeout_s: float | None = None,
    **_: Any,
) -> DeploymentHandle:
    """Deploy an application (or update the one of that name) and return its ingress handle.

    Waits until every deployment runs its replicas; a constructor that raises makes this
    raise that error. ``route_prefix=None`` serves it to handles only. ``logging_config``
    (a :class:`LoggingConfig` or its fields as a dict) applies to the deployments that do
    not set their own.
    """
    if route_prefix is not None:
        if not isinstance(route_prefix, str) or not route_prefix.startswith("/"):
            raise ValueError(
                f"route_prefix must start with '/', got {route_prefix!r} (e.g. '/{route_prefix}')."
            )
        if route_prefix != "/" and route_prefix.endswith("/"):
            raise ValueError(f"route_prefix must not end with '/', got {route_prefix!r}.")
    if not name:
        raise ValueError("An application needs a non-empty name.")
    spec = build_application(target, name, route_prefix, logging_config)
    if _controller_or_none() is None:
        start()
    controller = _client.get_controller()
    nebula.get(controller.deploy_application.remote(spec))
    _wait_for_app(controller, spec, _timeout_s)
    handle = DeploymentHandle(spec.ingress, name)
    if blocking:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return handle


# How long serve.run waits before it says why the application is not running yet, and
# how often it says it again.
_SLOW_DEPLOY_WARNING_S = 10.0
_SLOW_DEPLOY_REPEAT_S = 30.0
_RESOURCE_OPTIONS = ("num_cpus", "num_gpus", "resources", "memory")


def _wait_for_app(controller: Any, spec: Any, timeout_s: float | None) -> None:
    name = spec.name
    started = time.monotonic()
    deadline = None if timeout_s is None else started + timeout_s
    warn_at = started + _SLOW_DEPLOY_WARNING_S
    while True:
        status, message, error = nebula.get(controller.get_app_status.remote(name))
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED":
            if error is not None:
                cause = cloudpickle.loads(error)
                as_cause = getattr(cause, "as_instanceof_cause", None)
                raise as_cause() if as_cause is not None else cause
            raise DeployFailedError(f"Application {name!r} failed to deploy: {message}")
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Application {name!r} is still {status} after {timeout_s} s.")
        if time.monotonic() >= warn_at:
            warn_at = time.monotonic() + _SLOW_DEPLOY_REPEAT_S
            logger.warning("%s", _why_not_running(spec, time.monotonic() - started))
        time.sleep(0.05)


def _why_not_running(spec: Any, waited_s: float) -> str:
    """What a user needs when serve.run waits long: which deployments lack replicas, what
    each replica asks for and what the cluster has free."""
    app = status().applications.get(spec.name)
    lines = [f"Application {spec.name!r} is not running after {waited_s:.0f} s."]
    for deployment in spec.deployments:
        overview = app.deployments.get(deployment.name) if app is not None else None
        if overview is None or overview.status == "HEALTHY":
            continue
        options = replica_actor_options(deployment.config.ray_actor_options)
        asks = {k: v for k, v in options.items() if k in _RESOURCE_OPTIONS}
        lines.append(
            f"Deployment {deployment.name!r}: {overview.status}, replicas "
            f"{overview.replica_states or 'none yet'} of {overview.target_replicas}; each "
            f"replica asks for {asks}. {overview.message}".rstrip()
        )
    free = {k: v for k, v in nebula.available_resources().items() if not k.startswith("node:")}
    lines.append(
        f"Free in the cluster: {free}. Replicas wait until a node has their resources; set "
        "ray_actor_options={'num_cpus': ...} lower or add nodes."
    )
    return " ".join(lines)


@dataclass
class DeploymentStatusOverview:
    """A deployment's status: HEALTHY, UPDATING, UNHEALTHY or DEPLOY_FAILED."""

    name: str
    status: str
    message: str = ""
    replica_states: dict[str, int] = field(default_factory=dict)
    target_replicas: int = 0


@dataclass
class ApplicationStatusOverview:
    """An application's status: RUNNING, DEPLOYING, DEPLOY_FAILED, UNHEALTHY or DELETING."""

    name: str
    status: str
    message: str
    route_prefix: str | None
    deployments: dict[str, DeploymentStatusOverview]
    last_deployed_time_s: float = 0.0


@dataclass
class ServeStatus:
    applications: dict[str, ApplicationStatusOverview] = field(default_factory=dict)
    proxies: dict[str, str] = field(default_factory=dict)


def status() -> ServeStatus:
    """The applications and deployments serve runs, with their health."""
    controller = _controller_or_none()
    if controller is None:
        return ServeStatus()
    raw = nebula.get(controller.status.remote())
    apps = {}
    for name, app in raw["applications"].items():
        deployments = {
            dname: DeploymentStatusOverview(
                dname, d["status"], d["message"], d["replica_states"], d["target_replicas"]
            )
            for dname, d in app["deployments"].items()
        }
        apps[name] = ApplicationStatusOverview(
            name,
            app["status"],
            app["message"],
            app["route_prefix"],
            deployments,
            app["deployed_at"],
        )
    return ServeStatus(apps, dict(raw["proxies"]))


def delete(name: str, _blocking: bool = True) -> None:
    """Delete an application: its replicas drain and stop, its route goes away."""
    controller = _client.get_controller()
    nebula.get(controller.delete_apps.remote([name]))
    if _blocking:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if name not in nebula.get(controller.app_names.remote()):
                return
            time.sleep(0.05)
        raise TimeoutError(f"Application {name!r} was not deleted within 60 s.")


def shutdown() -> None:
    """Delete every application and stop serve's controller and proxies."""
    if not nebula.is_initialized():
        return
    controller = _controller_or_none()
    if controller is None:
        _client.reset()
        return
    try:
        nebula.get(controller.shutdown.remote())
    finally:
        _client.reset()
        try:
            nebula.kill(controller)
        except Exception:
            pass
        deadline = time.monotonic() + 10
        while _controller_or_none() is not None and time.monotonic() < deadline:
            time.sleep(0.05)


def get_app_handle(name: str) -> DeploymentHandle:
    """A handle to the ingress deployment of a running application."""
    controller = _client.get_controller()
    ingress = nebula.get(controller.get_ingress.remote(name))
    if ingress is None:
        raise ServeError(f"There is no application named {name!r}.")
    return DeploymentHandle(ingress, name)


def get_deployment_handle(deployment_name: str, app_name: str = "default") -> DeploymentHandle:
    """A handle to any deployment of a running application."""
    _client.get_controller()
    return DeploymentHandle(deployment_name, app_name)
