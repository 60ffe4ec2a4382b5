"""Settings of a deployment, its autoscaling and the HTTP proxy.

Plain frozen dataclasses: they travel from the driver to the controller and on to replicas,
and each checks its values when built so a mistake fails where the user made it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "AutoscalingConfig",
    "DeploymentConfig",
    "HTTPOptions",
    "LoggingConfig",
    "ProxyLocation",
]


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ValueError(f"{name} must be {bound}, got {value!r}.")


@dataclass(frozen=True)
class AutoscalingConfig:
    """How many replicas a deployment runs, chosen from its ongoing requests.

    The controller aims at ``target_ongoing_requests`` per replica, within
    ``[min_replicas, max_replicas]``; a decision to scale up (down) is applied once it has
    held for ``upscale_delay_s`` (``downscale_delay_s``). ``min_replicas=0`` scales to zero;
    the first request then waits for a replica to start.
    """

    min_replicas: int = 1
    max_replicas: int = 1
    initial_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    upscale_delay_s: float = 30.0
    downscale_delay_s: float = 600.0
    downscale_to_zero_delay_s: float | None = None
    upscaling_factor: float | None = None
    downscaling_factor: float | None = None
    metrics_interval_s: float = 0.5
    look_back_period_s: float = 5.0

    def __post_init__(self) -> None:
        _positive("min_replicas", self.min_replicas, allow_zero=True)
        _positive("max_replicas", self.max_replicas)
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas "
                f"({self.max_replicas})."
            )
        if self.initial_replicas is not None and not (
            self.min_replicas <= self.initial_replicas <= self.max_replicas
        ):
            raise ValueError("initial_replicas must lie between min_replicas and max_replicas.")
        _positive("target_ongoing_requests", self.target_ongoing_requests)
        _positive("upscale_delay_s", self.upscale_delay_s, allow_zero=True)
        _positive("downscale_delay_s", self.downscale_delay_s, allow_zero=True)

    @classmethod
    def from_value(cls, value: AutoscalingConfig | dict[str, Any]) -> AutoscalingConfig:
        return _from_value(cls, value, "autoscaling_config")

    @property
    def start_replicas(self) -> int:
        if self.initial_replicas is not None:
            return self.initial_replicas
        return self.min_replicas


@dataclass(frozen=True)
class LoggingConfig:
    """How a replica logs: ``encoding`` ``"TEXT"`` or ``"JSON"``, ``log_level`` of serve's
    and the access loggers, ``logs_dir`` (None: the replica's own log, else a file per
    replica there), and ``enable_access_log``: one line per request with its method, route,
    status, latency and request id."""

    encoding: str = "TEXT"
    log_level: str | int = "INFO"
    logs_dir: str | None = None
    enable_access_log: bool = True

    def __post_init__(self) -> None:
        if self.logs_dir is not None and not self.logs_dir:
            raise ValueError("logs_dir must be a directory path, or None for the replica's log.")
        if self.encoding not in ("TEXT", "JSON"):
            raise ValueError(f"encoding must be 'TEXT' or 'JSON', got {self.encoding!r}.")
        import logging

        if isinstance(self.log_level, str) and not isinstance(
            logging.getLevelName(self.log_level.upper()), int
        ):
            raise ValueError(f"log_level {self.log_level!r} is not a logging level name.")

    @classmethod
    def from_value(cls, value: LoggingConfig | dict[str, Any]) -> LoggingConfig:
        return _from_value(cls, value, "logging_config")


@dataclass(frozen=True)
class DeploymentConfig:
    """Everything about a deployment except its code and constructor arguments."""

    num_replicas: int = 1
    max_ongoing_requests: int = 5
    max_queued_requests: int = -1
    autoscaling_config: AutoscalingConfig | None = None
    user_config: Any = None
    ray_actor_options: dict[str, Any] = field(default_factory=dict)
    health_check_period_s: float = 10.0
    health_check_timeout_s: float = 30.0
    graceful_shutdown_wait_loop_s: float = 2.0
    graceful_shutdown_timeout_s: float = 20.0
    logging_config: LoggingConfig | None = None  # None: the application's, else defaults

    def __post_init__(self) -> None:
        _positive("num_replicas", self.num_replicas, allow_zero=True)
        _positive("max_ongoing_requests", self.max_ongoing_requests)
        if self.max_queued_requests != -1:
            _positive("max_queued_requests", self.max_queued_requests, allow_zero=True)
        _positive("health_check_period_s", self.health_check_period_s)
        _positive("health_check_timeout_s", self.health_check_timeout_s)
        _positive("graceful_shutdown_timeout_s", self.graceful_shutdown_timeout_s, allow_zero=True)
        unknown = set(self.ray_actor_options) - _ACTOR_OPTIONS
        if unknown:
            raise ValueError(
                f"ray_actor_options does not take {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(sorted(_ACTOR_OPTIONS))}."
            )

    def initial_target(self) -> int:
        if self.autoscaling_config is not None:
            return self.autoscaling_config.start_replicas
        return self.num_replicas

    def max_queued(self) -> float:
        return math.inf if self.max_queued_requests == -1 else self.max_queued_requests


_ACTOR_OPTIONS = {
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "runtime_env",
    "scheduling_strategy",
    "accelerator_type",
}


class ProxyLocation:
    """Where the HTTP proxies run: ``HeadOnly`` (the default), ``EveryNode`` or ``Disabled``."""

    HeadOnly = "HeadOnly"
    EveryNode = "EveryNode"
    Disabled = "Disabled"

    @staticmethod
    def check(value: str) -> str:
        if value not in ("HeadOnly", "EveryNode", "Disabled"):
            raise ValueError(
                f"proxy_location must be HeadOnly, EveryNode or Disabled, got {value!r}."
            )
        return value


@dataclass(frozen=True)
class HTTPOptions:
    """Where the proxy listens and how long it lets a request run."""

    host: str = "127.0.0.1"
    port: int = 8000
    request_timeout_s: float | None = None
    keep_alive_timeout_s: float = 5.0
    root_path: str = ""

    @classmethod
    def from_value(cls, value: HTTPOptions | dict[str, Any] | None) -> HTTPOptions:
        if value is None:
            return cls()
        if isinstance(value, HTTPOptions):
            return value
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(value) - known - {"location"}
        if unknown:
            raise TypeError(
                f"http_options does not take {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(sorted(known))}."
            )
        return cls(**{k: v for k, v in value.items() if k in known})


_Config = TypeVar("_Config")


def _from_value(cls: type[_Config], value: Any, option: str) -> _Config:
    """``value`` as a ``cls``: itself, or built from a dict of its fields (an unknown key is
    an error that lists the ones it takes)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"{option} must be a dict or a {cls.__name__}.")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(value) - known
    if unknown:
        raise TypeError(
            f"{option} does not take {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(known))}."
        )
    return cls(**value)
