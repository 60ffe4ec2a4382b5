"""Replica logs over real HTTP: one access line per request with its method, route, status,
latency and request id, in the replica's own log or a file per replica."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nebula import serve
from nebula.testing import wait_for_condition
from nebula.util.state import get_log, list_actors

pytestmark = pytest.mark.timeout(120)


def get(url: str, request_id: str) -> int:
    request = urllib.request.Request(url, headers={"x-request-id": request_id})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@serve.deployment
class Inner:
    def double(self, value: int) -> int:
        return 2 * value


@serve.deployment
class Outer:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, request: Request) -> Any:
        if request.query_params.get("fail"):
            raise ValueError("failed on purpose")
        return {"doubled": await self.inner.double.remote(21)}


app = Starlette()


@serve.deployment
@serve.ingress(app)
class Items:
    async def item(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["name"], status_code=201)


app.router.routes.append(Route("/items/{name}", Items.func_or_class.item))


def _replica_log(deployment: str) -> list[str]:
    [actor] = [
        a
        for a in list_actors(filters=[("state", "=", "ALIVE")])
        if (a["name"] or "").startswith(f"SERVE_REPLICA:logs#{deployment}#")
    ]
    return list(get_log(actor_id=actor["actor_id"], suffix="err", tail=-1))


def test_each_request_leaves_one_access_line_in_the_replica_log(serve_cluster: str) -> None:
    serve.run(Outer.bind(Inner.bind()), name="logs", route_prefix="/logs")
    assert get(f"{serve_cluster}/logs", "req-ok-1") == 200
    assert get(f"{serve_cluster}/logs?fail=1", "req-fail-1") == 500

    def access(deployment: str, request_id: str) -> list[str]:
        return [
            line
            for line in _replica_log(deployment)
            if f" {request_id} -- " in line and line.startswith("INFO")  # not the error's
        ]

    wait_for_condition(lambda: len(access("Outer", "req-fail-1")) == 1, timeout=20)
    [ok] = access("Outer", "req-ok-1")
    assert re.search(r"^INFO .* logs#Outer logs#Outer#\w+ req-ok-1 -- GET /logs 200 [\d.]+ms$", ok)
    [failed] = access("Outer", "req-fail-1")
    assert " -- GET /logs 500 " in failed
    # The handle call the request made is logged by its replica with the same request id.
    wait_for_condition(lambda: len(access("Inner", "req-ok-1")) == 1, timeout=20)
    [call] = access("Inner", "req-ok-1")
    assert re.search(r" -- CALL double OK [\d.]+ms$", call)


def test_json_lines_in_a_file_per_replica_with_the_matched_route(
    serve_cluster: str, tmp_path: Path
) -> None:
    config = {"encoding": "JSON", "logs_dir": str(tmp_path)}
    serve.run(Items.bind(), name="items", route_prefix="/shop", logging_config=config)
    for i in range(3):
        assert get(f"{serve_cluster}/shop/items/n{i}", f"req-{i}") == 201

    def entries() -> list[dict[str, Any]]:
        lines = [
            line
            for path in tmp_path.glob("replica_items_Items_*.log")
            for line in path.read_text().splitlines()
        ]
        return [json.loads(line) for line in lines if '"route"' in line]

    wait_for_condition(lambda: len(entries()) == 3, timeout=20)
    for i, entry in enumerate(entries()):
        assert entry["request_id"] == f"req-{i}"
        assert (entry["method"], entry["route"], entry["status"]) == (
            "GET",
            "/shop/items/{name}",
            201,
        )
        assert entry["latency_ms"] >= 0 and entry["deployment"] == "items#Items"


def test_access_log_can_be_turned_off(serve_cluster: str, tmp_path: Path) -> None:
    quiet = Items.options(logging_config={"enable_access_log": False, "logs_dir": str(tmp_path)})
    serve.run(quiet.bind(), name="items", route_prefix="/shop")
    assert get(f"{serve_cluster}/shop/items/x", "req-quiet") == 201
    assert all("req-quiet" not in p.read_text() for p in tmp_path.glob("*.log"))
    with pytest.raises(ValueError, match="encoding"):
        Items.options(logging_config={"encoding": "XML"})
