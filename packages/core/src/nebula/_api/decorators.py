"""``@nebula.remote``: turn a function into a task or a class into an actor."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, overload

from nebula._api.actor import ActorClass
from nebula._api.remote_function import RemoteFunction


@overload
def remote(target: type) -> ActorClass: ...  # type: ignore[overload-overlap]
@overload
def remote(target: Callable[..., Any]) -> RemoteFunction[Any, Any]: ...
@overload
def remote(**options: Any) -> Callable[[Any], Any]: ...


def remote(target: Any = None, **options: Any) -> Any:
    """``@nebula.remote`` or ``@nebula.remote(num_cpus=2, ...)`` on a function or class."""
    if target is not None and options:
        raise TypeError("Use either @nebula.remote or @nebula.remote(**options), not both.")
    if target is None:
        return lambda inner: _make_remote(inner, options)
    return _make_remote(target, {})


def _make_remote(target: Any, options: dict[str, Any]) -> Any:
    if inspect.isclass(target):
        return ActorClass(target, options)
    if callable(target):
        return RemoteFunction(target, options)
    raise TypeError(f"@nebula.remote decorates a function or a class, not {type(target).__name__}.")
