"""FastAPI routes that are methods of an ingress class get the replica's instance as ``self``.

FastAPI reads an endpoint's signature when the route is declared, inside the class body,
where ``self`` looks like a required query parameter. Each such route is declared again with
an endpoint whose first parameter is a dependency on the replica's user object, so FastAPI
fills it in and leaves it out of the docs. It happens in the process that applies
``@serve.ingress``, where the module's names resolve the annotations, before the app travels
to the replicas.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from nebula.serve import _context

_MARK = "__serve_method_endpoint__"


async def _servable_object() -> Any:
    return _context.get_replica_context().servable_object


def is_fastapi(app: Any) -> bool:
    try:
        from fastapi import FastAPI
    except ImportError:
        return False
    return isinstance(app, FastAPI)


def is_method_of(endpoint: Any, cls: type) -> bool:
    qualname = getattr(endpoint, "__qualname__", "")
    return isinstance(qualname, str) and qualname.startswith(cls.__qualname__ + ".")


def bind_method_routes(app: Any, cls: type) -> None:
    """Re-declare the app's routes whose endpoints are methods of ``cls`` (idempotent)."""
    from fastapi.routing import APIRoute

    routes = app.router.routes
    for index, route in enumerate(routes):
        if not isinstance(route, APIRoute):
            continue
        endpoint = route.endpoint
        if getattr(endpoint, _MARK, False) or not is_method_of(endpoint, cls):
            continue
        routes[index] = _redeclare(route, _method_endpoint(endpoint))
    app.openapi_schema = None  # the schema cached so far still lists ``self``


def _method_endpoint(method: Any) -> Any:
    from fastapi import Depends

    try:
        signature = inspect.signature(method, eval_str=True)
    except Exception:  # a name only known to type checkers: FastAPI resolves it, or says so
        signature = inspect.signature(method)
    first, *rest = signature.parameters.values()
    instance = first.replace(default=Depends(_servable_object), annotation=inspect.Parameter.empty)
    name = first.name

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def endpoint(**kwargs: Any) -> Any:
            return await method(kwargs.pop(name), **kwargs)

    else:

        @functools.wraps(method)
        def endpoint(**kwargs: Any) -> Any:  # FastAPI runs it in its thread pool
            return method(kwargs.pop(name), **kwargs)

    keyword = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = [instance] + [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind in keyword else p for p in rest
    ]
    endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    del endpoint.__wrapped__  # FastAPI must read the new signature, not the method's
    setattr(endpoint, _MARK, True)
    return endpoint


def _redeclare(route: Any, endpoint: Any) -> Any:
    """A route like ``route`` with another endpoint, built by FastAPI's own constructor."""
    accepted = inspect.signature(type(route).__init__).parameters
    kwargs = {
        name: getattr(route, name)
        for name in accepted
        if name not in ("self", "path", "endpoint") and hasattr(route, name)
    }
    return type(route)(route.path, endpoint, **kwargs)
