"""HTTP inside a replica: rebuild the request, run the deployment, send back ASGI messages.

The proxy forwards a request as its ASGI scope and body. The replica answers with the ASGI
messages its response sends: all at once for an ordinary response, in chunks as they come
for a streaming one, so a ``StreamingResponse`` or a generator streams end to end.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nebula.serve import _fastapi, _wire

if TYPE_CHECKING:
    from nebula.serve._replica import Replica, _Connection

Send = Callable[[dict[str, Any]], Awaitable[None]]

INGRESS_ATTR = "__serve_ingress_app__"


async def handle(replica: Replica, connection: _Connection, request: _wire.Request) -> Any:
    """Run one HTTP request; returns the ASGI messages not yet streamed back."""
    scope, body = request.args
    messages: list[dict[str, Any]] = []
    rid = request.rid
    body_given = False

    async def receive() -> dict[str, Any]:
        nonlocal body_given
        if not body_given:
            body_given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Future()  # the proxy cancels this request when its client leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and message.get("more_body"):
            connection.send(_wire.Chunk(rid, messages[:]))
            messages.clear()

    app = replica.http_app
    if app is not None:
        await app(scope, receive, send)
        return messages
    from starlette.requests import Request

    method = replica._method("__call__")
    result = method(Request(scope, receive))
    if inspect.isawaitable(result):
        result = await result
    quick = _quick_response(result)
    if quick is not None:
        return quick
    response = to_response(result)
    await response(scope, receive, send)
    return messages


def _quick_response(result: Any) -> list[dict[str, Any]] | None:
    """The messages of a plain value's response, without building a Response object."""
    if isinstance(result, str):
        body, kind = result.encode(), b"text/plain; charset=utf-8"
    elif isinstance(result, bytes):
        body, kind = result, b"application/octet-stream"
    elif isinstance(result, (dict, list)):
        try:
            body = json.dumps(result, separators=(",", ":")).encode()
        except TypeError:
            return None
        kind = b"application/json"
    else:
        return None
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", kind)]
    return [
        {"type": "http.response.start", "status": 200, "headers": headers},
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


def to_response(result: Any) -> Any:
    """A starlette response for what a deployment returned."""
    from starlette.responses import JSONResponse, Response, StreamingResponse

    if isinstance(result, Response):
        return result
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        return StreamingResponse(_encode_stream(result), media_type="text/plain")
    if isinstance(result, str):
        return Response(result, media_type="text/plain")
    if isinstance(result, bytes):
        return Response(result, media_type="application/octet-stream")
    dump = getattr(result, "model_dump", None)
    if dump is not None:
        result = dump(mode="json")
    return JSONResponse(result)


async def _encode_stream(items: Any) -> Any:
    if inspect.isasyncgen(items):
        async for item in items:
            yield _chunk_bytes(item)
    else:
        for item in items:
            yield _chunk_bytes(item)
            await asyncio.sleep(0)


def _chunk_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    return json.dumps(item).encode()


def bound_ingress_app(cls: type, instance: Any) -> Any:
    """The ASGI app ``@serve.ingress`` put on ``cls``, its method routes bound to ``instance``.

    Starlette routes whose endpoints are methods of the class (they take ``self``) get the
    replica's instance; FastAPI's get it through a dependency (:mod:`._fastapi`), here for
    routes added to the app after ``@serve.ingress`` ran. Other routes are used as they are.
    """
    app = getattr(cls, INGRESS_ATTR, None)
    if app is None:
        return None
    if _fastapi.is_fastapi(app):
        _fastapi.bind_method_routes(app, cls)
        return app
    from starlette.routing import Route, request_response

    for route in getattr(app, "routes", []):
        if not isinstance(route, Route) or not _fastapi.is_method_of(route.endpoint, cls):
            continue
        endpoint = route.endpoint
        bound = functools.partial(endpoint, instance)
        functools.update_wrapper(bound, endpoint)
        route.endpoint = bound
        route.app = request_response(bound)
    return app
