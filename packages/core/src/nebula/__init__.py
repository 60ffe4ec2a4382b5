"""Nebula: distributed Python. Functions become tasks, classes become actors."""

from __future__ import annotations

# The "nebula" package is shared by several distributions (nebula-data, nebula-tune, ...):
# extend the search path so their subpackages resolve when, and only when, they are installed.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from nebula import exceptions
from nebula._api.actor import ActorClass, ActorHandle, method
from nebula._api.cluster_info import (
    available_resources,
    cluster_resources,
    get_gpu_ids,
    get_runtime_context,
    nodes,
)
from nebula._api.decorators import remote
from nebula._api.generator import ObjectRefGenerator
from nebula._api.object_ref import ObjectRef
from nebula._api.remote_function import RemoteFunction
from nebula._api.runtime import (
    cancel,
    get,
    get_actor,
    init,
    is_initialized,
    kill,
    put,
    shutdown,
    wait,
)
from nebula._state.timeline import timeline

__version__ = "0.1.0"

_DOMAIN_PACKAGES = {
    "data": "nebula-data",
    "tune": "nebula-tune",
    "rl": "nebula-rl",
    "serve": "nebula-serve",
}
# Core's own submodules reachable as attributes after a bare `import nebula`, as
# `ray.util.placement_group(...)` is after `import ray`; imported on first use.
_SUBMODULES = frozenset({"actor", "job_submission", "plugins", "runtime_env", "testing", "util"})


def __getattr__(name: str) -> object:
    # `import nebula; nebula.data.range(...)` works as with Ray, without importing the
    # domain package up front (and only when it is installed).
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"nebula.{name}")
    if name in _DOMAIN_PACKAGES:
        import importlib

        try:
            return importlib.import_module(f"nebula.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"nebula.{name}":
                raise
            raise ImportError(
                f"nebula.{name} is not installed; install it with "
                f"`pip install {_DOMAIN_PACKAGES[name]}`."
            ) from None
    raise AttributeError(f"module 'nebula' has no attribute {name!r}")


__all__ = [
    "ActorClass",
    "ActorHandle",
    "ObjectRef",
    "ObjectRefGenerator",
    "RemoteFunction",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "timeline",
    "wait",
]
