"""``@serve.deployment``, ``Deployment.bind()`` and the application graph it builds."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import cloudpickle
from nebula.serve._common import ApplicationSpec, DeploymentSpec
from nebula.serve.config import AutoscalingConfig, DeploymentConfig
from nebula.serve.handle import DeploymentHandle

__all__ = ["Application", "Deployment", "deployment"]

_UNSET: Any = object()
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(DeploymentConfig)}
_OPTIONS = _CONFIG_FIELDS | {"name", "version", "route_prefix", "logging_config"}


class Deployment:
    """A class or function with the settings its replicas run with; ``bind()`` it to run."""

    def __init__(
        self,
        func_or_class: Callable[..., Any],
        name: str,
        config: DeploymentConfig,
        *,
        version: str | None = None,
        route_prefix: str | None = None,
    ) -> None:
        if not (inspect.isclass(func_or_class) or callable(func_or_class)):
            raise TypeError("@serve.deployment goes on a class or a function.")
        self.func_or_class = func_or_class
        self.name = name
        self.config = config
        self.version = version
        self.route_prefix = route_prefix

    @property
    def num_replicas(self) -> int:
        return self.config.num_replicas

    @property
    def max_ongoing_requests(self) -> int:
        return self.config.max_ongoing_requests

    @property
    def user_config(self) -> Any:
        return self.config.user_config

    def options(self, **options: Any) -> Deployment:
        """A copy of this deployment with some settings changed."""
        unknown = set(options) - _OPTIONS - {"func_or_class"}
        if unknown:
            raise TypeError(
                f"Deployment.options() does not take {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(sorted(_OPTIONS))}."
            )
        config_changes = {k: v for k, v in options.items() if k in _CONFIG_FIELDS}
        if config_changes.get("autoscaling_config"):
            config_changes["autoscaling_config"] = AutoscalingConfig.from_value(
                config_changes["autoscaling_config"]
            )
        if config_changes.get("num_replicas") == "auto":
            config_changes["num_replicas"] = 1
            config_changes.setdefault("autoscaling_config", _auto_autoscaling())
        config = dataclasses.replace(self.config, **config_changes)
        return Deployment(
            options.get("func_or_class", self.func_or_class),
            options.get("name", self.name),
            config,
            version=options.get("version", self.version),
            route_prefix=options.get("route_prefix", self.route_prefix),
        )

    def bind(self, *args: Any, **kwargs: Any) -> Application:
        """An application whose ingress is this deployment, built with these arguments.

        A bound deployment among the arguments becomes a :class:`DeploymentHandle` to it
        when the replicas are constructed.
        """
        return Application(self, args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"Deployment {self.name!r} cannot be called directly: use "
            f"serve.run({self.name}.bind(...)) and call the handle it returns."
        )

    def __repr__(self) -> str:
        return f"Deployment(name={self.name!r})"


def _auto_autoscaling() -> AutoscalingConfig:
    return AutoscalingConfig(min_replicas=1, max_replicas=100, upscale_delay_s=30.0)


class Application:
    """A deployment bound to its constructor arguments, with the deployments it uses."""

    def __init__(
        self, deployment: Deployment, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.deployment = deployment
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Application(ingress={self.deployment.name!r})"


def build_application(app: Application, name: str, route_prefix: str | None) -> ApplicationSpec:
    """Walk the graph below ``app`` and give every deployment a spec the controller runs."""
    if not isinstance(app, Application):
        raise TypeError(
            f"serve.run() takes an application (Deployment.bind(...)), got {type(app).__name__}."
        )
    names: dict[int, str] = {}
    specs: list[DeploymentSpec] = []
    taken: set[str] = set()

    def visit(node: Application) -> DeploymentHandle:
        if id(node) in names:
            return DeploymentHandle(names[id(node)], name)
        unique = node.deployment.name
        counter = 1
        while unique in taken:
            unique = f"{node.deployment.name}_{counter}"
            counter += 1
        taken.add(unique)
        names[id(node)] = unique
        args = tuple(_replace(a, visit) for a in node.args)
        kwargs = {k: _replace(v, visit) for k, v in node.kwargs.items()}
        specs.append(_spec(node.deployment, unique, args, kwargs))
        return DeploymentHandle(unique, name)

    visit(app)
    ingress = names[id(app)]
    return ApplicationSpec(name, route_prefix, ingress, tuple(specs))


def _replace(value: Any, visit: Callable[[Application], DeploymentHandle]) -> Any:
    if isinstance(value, Application):
        return visit(value)
    if isinstance(value, list):
        return [_replace(v, visit) for v in value]
    if isinstance(value, tuple):
        return tuple(_replace(v, visit) for v in value)
    if isinstance(value, dict):
        return {k: _replace(v, visit) for k, v in value.items()}
    return value


def _spec(
    deployment: Deployment, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> DeploymentSpec:
    code = cloudpickle.dumps(deployment.func_or_class)
    init = cloudpickle.dumps((args, kwargs))
    version = deployment.version or hashlib.sha1(code + init).hexdigest()[:16]
    return DeploymentSpec(
        name=name,
        serialized_callable=code,
        serialized_init_args=init,
        config=deployment.config,
        is_function=not inspect.isclass(deployment.func_or_class),
        code_version=version,
        route_prefix=deployment.route_prefix,
    )


def deployment(
    _func_or_class: Callable[..., Any] | None = None,
    *,
    name: str = _UNSET,
    num_replicas: int | str | None = _UNSET,
    max_ongoing_requests: int = _UNSET,
    max_queued_requests: int = _UNSET,
    autoscaling_config: dict[str, Any] | AutoscalingConfig | None = _UNSET,
    ray_actor_options: dict[str, Any] | None = _UNSET,
    user_config: Any = _UNSET,
    health_check_period_s: float = _UNSET,
    health_check_timeout_s: float = _UNSET,
    graceful_shutdown_wait_loop_s: float = _UNSET,
    graceful_shutdown_timeout_s: float = _UNSET,
    version: str | None = _UNSET,
    route_prefix: str | None = _UNSET,
    logging_config: Any = _UNSET,
) -> Any:
    """Make a class or function a deployment: ``@serve.deployment`` or ``@serve.deployment(...)``.

    Takes Ray Serve's settings: ``num_replicas`` (or ``"auto"``), ``max_ongoing_requests``
    (default 5), ``max_queued_requests`` (-1: no limit), ``autoscaling_config``,
    ``ray_actor_options`` (``num_cpus``, ``num_gpus``, ``resources``, ``runtime_env``...),
    ``user_config`` (given to ``reconfigure``), the health-check period and timeout and the
    graceful-shutdown timeout.
    """
    given = {
        k: v
        for k, v in {
            "name": name,
            "num_replicas": num_replicas,
            "max_ongoing_requests": max_ongoing_requests,
            "max_queued_requests": max_queued_requests,
            "autoscaling_config": autoscaling_config,
            "ray_actor_options": ray_actor_options,
            "user_config": user_config,
            "health_check_period_s": health_check_period_s,
            "health_check_timeout_s": health_check_timeout_s,
            "graceful_shutdown_wait_loop_s": graceful_shutdown_wait_loop_s,
            "graceful_shutdown_timeout_s": graceful_shutdown_timeout_s,
            "version": version,
            "route_prefix": route_prefix,
            "logging_config": logging_config,
        }.items()
        if v is not _UNSET
    }
    if given.get("ray_actor_options") is None:
        given.pop("ray_actor_options", None)
    if given.get("num_replicas") is None:
        given.pop("num_replicas", None)
    if given.get("autoscaling_config") is None:
        given.pop("autoscaling_config", None)
    if "num_replicas" in given and "autoscaling_config" in given:
        raise ValueError("Give num_replicas or autoscaling_config, not both.")

    def wrap(func_or_class: Callable[..., Any]) -> Deployment:
        base = Deployment(
            func_or_class, getattr(func_or_class, "__name__", "deployment"), DeploymentConfig()
        )
        return base.options(**given) if given else base

    if _func_or_class is not None:
        return wrap(_func_or_class)
    return wrap
