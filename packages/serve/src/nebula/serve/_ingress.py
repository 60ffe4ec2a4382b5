"""``@serve.ingress(app)``: serve a starlette or FastAPI app from a deployment class."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from nebula.serve import _fastapi
from nebula.serve._http import INGRESS_ATTR

__all__ = ["ingress"]


def ingress(app: Any) -> Callable[[type], type]:
    """Mount an ASGI app (starlette, FastAPI) on a deployment class.

    HTTP requests to the application go to ``app``; routes whose endpoints are methods of
    the class receive the replica's instance as ``self``. Apply it below
    ``@serve.deployment``.
    """
    if not callable(app):
        raise TypeError("@serve.ingress takes an ASGI application (starlette, FastAPI).")
    _make_state_picklable()

    def decorate(cls: type) -> type:
        if not inspect.isclass(cls):
            raise TypeError("@serve.ingress goes on a class (below @serve.deployment).")
        if _fastapi.is_fastapi(app):
            _fastapi.bind_method_routes(app, cls)
        setattr(cls, INGRESS_ATTR, app)
        return cls

    return decorate


def _make_state_picklable() -> None:
    # The app travels to the replicas pickled with the class; starlette's ``State`` answers
    # every attribute lookup from its dict, which a bare unpickled instance does not have yet.
    import copyreg

    from starlette.datastructures import State

    copyreg.pickle(State, _reduce_state)


def _reduce_state(state: Any) -> tuple[Any, ...]:
    from starlette.datastructures import State

    return (State, (dict(state._state),))
