"""``@serve.ingress(app)``: serve a starlette or FastAPI app from a deployment class."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

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

    def decorate(cls: type) -> type:
        if not inspect.isclass(cls):
            raise TypeError("@serve.ingress goes on a class (below @serve.deployment).")
        setattr(cls, INGRESS_ATTR, app)
        return cls

    return decorate
