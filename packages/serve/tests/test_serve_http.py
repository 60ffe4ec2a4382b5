"""The HTTP proxy over real HTTP: routing, bodies, streaming, ingress apps, errors, limits."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import nebula
from nebula import serve
from nebula.testing import wait_for_condition

pytestmark = pytest.mark.timeout(120)


def get(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@serve.deployment
class Echo:
    async def __call__(self, request: Request) -> Any:
        kind = request.query_params.get("kind", "dict")
        body = await request.body()
        if kind == "dict":
            return {"path": request.url.path, "body": body.decode(), "method": request.method}
        if kind == "list":
            return [1, 2, 3]
        if kind == "str":
            return "plain text"
        if kind == "bytes":
            return b"\x00\x01raw"
        if kind == "response":
            return PlainTextResponse("teapot", status_code=418, headers={"x-custom": "yes"})
        if kind == "stream":

            async def chunks() -> Any:
                for i in range(3):
                    yield f"chunk{i};"
                    await asyncio.sleep(0.05)

            return StreamingResponse(chunks(), media_type="text/plain")
        if kind == "generator":
            return (f"item{i}," for i in range(3))
        if kind == "error":
            raise RuntimeError("handler failed on purpose")
        return Response(status_code=400)


def test_return_types_and_bodies(serve_cluster: str) -> None:
    serve.run(Echo.bind(), name="echo", route_prefix="/echo")
    status, headers, body = get(f"{serve_cluster}/echo/x?kind=dict", data=b"payload")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"path": "/echo/x", "body": "payload", "method": "POST"}
    assert json.loads(get(f"{serve_cluster}/echo?kind=list")[2]) == [1, 2, 3]
    assert get(f"{serve_cluster}/echo?kind=str")[2] == b"plain text"
    assert get(f"{serve_cluster}/echo?kind=bytes")[2] == b"\x00\x01raw"
    status, headers, body = get(f"{serve_cluster}/echo?kind=response")
    assert (status, headers["x-custom"], body) == (418, "yes", b"teapot")
    assert get(f"{serve_cluster}/echo?kind=stream")[2] == b"chunk0;chunk1;chunk2;"
    assert get(f"{serve_cluster}/echo?kind=generator")[2] == b"item0,item1,item2,"


def test_streaming_response_arrives_in_pieces(serve_cluster: str) -> None:
    @serve.deployment
    class Ticker:
        def __call__(self, request: Request) -> StreamingResponse:
            async def ticks() -> Any:
                for i in range(3):
                    yield f"{i}\n"
                    await asyncio.sleep(0.3)

            return StreamingResponse(ticks())

    serve.run(Ticker.bind(), name="ticker", route_prefix="/ticker")
    connection = http.client.HTTPConnection(serve_cluster.removeprefix("http://"), timeout=30)
    connection.request("GET", "/ticker")
    response = connection.getresponse()
    start = time.monotonic()
    first = response.readline()
    first_at = time.monotonic() - start
    rest = response.read()
    total = time.monotonic() - start
    connection.close()
    assert first == b"0\n" and rest == b"1\n2\n"
    assert first_at < total - 0.3  # the first line came before the stream ended


def test_errors_are_500_and_the_replica_keeps_serving(serve_cluster: str) -> None:
    serve.run(Echo.bind(), name="echo", route_prefix="/echo")
    status, _headers, _body = get(f"{serve_cluster}/echo?kind=error")
    assert status == 500
    assert get(f"{serve_cluster}/echo?kind=str")[2] == b"plain text"


def test_longest_prefix_wins_and_unknown_paths_are_404(serve_cluster: str) -> None:
    @serve.deployment
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, request: Request) -> str:
            return self.name

    serve.run(Named.bind("api"), name="api", route_prefix="/api")
    serve.run(Named.bind("api-v2"), name="api-v2", route_prefix="/api/v2")
    assert get(f"{serve_cluster}/api/v2/models")[2] == b"api-v2"
    assert get(f"{serve_cluster}/api/v2")[2] == b"api-v2"
    assert get(f"{serve_cluster}/api/v1")[2] == b"api"
    assert get(f"{serve_cluster}/api")[2] == b"api"
    assert get(f"{serve_cluster}/apiary")[0] == 404
    routes = json.loads(get(f"{serve_cluster}/-/routes")[2])
    assert routes["/api"] == "api" and routes["/api/v2"] == "api-v2"
    assert get(f"{serve_cluster}/-/healthz")[2] == b"success"
    serve.delete("api-v2")
    assert get(f"{serve_cluster}/api/v2/models")[2] == b"api"


def test_request_id_header(serve_cluster: str) -> None:
    @serve.deployment
    class Ids:
        def __call__(self, request: Request) -> str:
            import logging

            record = logging.getLogger("test").makeRecord("test", 20, "", 0, "", (), None)
            return str(record.request_id)  # type: ignore[attr-defined]

    serve.run(Ids.bind(), name="ids", route_prefix="/ids")
    _, headers, body = get(f"{serve_cluster}/ids")
    assert headers["x-request-id"] == body.decode() and len(body) == 32
    _status, headers, body = get(f"{serve_cluster}/ids", headers={"X-Request-ID": "mine-1"})
    assert headers["x-request-id"] == "mine-1" and body == b"mine-1"


app = Starlette()


@serve.deployment
@serve.ingress(app)
class Service:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    async def hello(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{self.greeting} {request.path_params['name']}")

    async def predict(self, request: Request) -> JSONResponse:
        payload = await request.json()
        return JSONResponse({"sum": sum(payload["values"])})


app.router.routes.extend(
    [
        Route("/hello/{name}", Service.func_or_class.hello),
        Route("/predict", Service.func_or_class.predict, methods=["POST"]),
    ]
)


def test_ingress_app_with_method_routes(serve_cluster: str) -> None:
    serve.run(Service.bind("hi"), name="svc", route_prefix="/svc")
    assert get(f"{serve_cluster}/svc/hello/bob")[2] == b"hi bob"
    status, _, body = get(f"{serve_cluster}/svc/predict", data=b'{"values": [1, 2, 3]}')
    assert status == 200 and json.loads(body) == {"sum": 6}
    assert get(f"{serve_cluster}/svc/nowhere")[0] == 404


@nebula.remote
class Tracker:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.cancelled = 0

    async def start(self) -> None:
        self.started += 1

    async def cancel(self) -> None:
        self.cancelled += 1

    async def wait(self) -> None:
        await self.release.wait()

    async def open(self) -> None:
        self.release.set()

    async def counts(self) -> tuple[int, int]:
        return self.started, self.cancelled


@serve.deployment(max_ongoing_requests=1, max_queued_requests=1)
class Blocker:
    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker

    async def __call__(self, request: Request) -> str:
        await self.tracker.start.remote()
        try:
            await self.tracker.wait.remote()
        except asyncio.CancelledError:
            self.tracker.cancel.remote()
            raise
        return "released"


def test_full_queue_is_503(serve_cluster: str) -> None:
    tracker = Tracker.remote()
    serve.run(Blocker.bind(tracker), name="blocker", route_prefix="/blocker")
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(get(f"{serve_cluster}/blocker")[0]))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # the first runs, the second waits in the queue
    wait_for_condition(lambda: nebula.get(tracker.counts.remote())[0] == 1)
    assert get(f"{serve_cluster}/blocker")[0] == 503
    nebula.get(tracker.open.remote())
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [200, 200]


def test_client_disconnect_cancels_the_handler(serve_cluster: str) -> None:
    tracker = Tracker.remote()
    serve.run(Blocker.bind(tracker), name="blocker", route_prefix="/blocker")
    host, port = serve_cluster.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /blocker HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for_condition(lambda: nebula.get(tracker.counts.remote())[0] == 1)
    wait_for_condition(lambda: nebula.get(tracker.counts.remote())[1] == 1, timeout=15)


def test_metrics_endpoint(serve_cluster: str) -> None:
    serve.run(Echo.bind(), name="echo", route_prefix="/echo")
    get(f"{serve_cluster}/echo?kind=str")
    get(f"{serve_cluster}/echo?kind=error")
    text = get(f"{serve_cluster}/-/metrics")[2].decode()
    assert (
        'serve_num_http_requests_total{deployment="Echo",route="/echo",status_code="200"}' in text
    )
    assert "serve_num_http_error_requests_total" in text
    assert "serve_http_request_latency_seconds_bucket" in text
    assert "serve_num_ongoing_http_requests" in text
    assert 'serve_num_queued_http_requests{deployment="Echo"} 0.0' in text
