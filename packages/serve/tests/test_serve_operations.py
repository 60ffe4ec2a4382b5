"""Running deployments: batching, autoscaling, health, replica loss, rolling updates, timeouts."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import pytest
from _serve_http import get_status as get
from starlette.requests import Request

from nebula import serve
from nebula.testing import wait_for_condition

pytestmark = pytest.mark.timeout(180)

SERVE_HTTP_OPTIONS = {"request_timeout_s": 2.0}


@serve.deployment
class Batcher:
    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.3)
    async def sizes(self, items: list[int]) -> list[tuple[int, int]]:
        return [(item, len(items)) for item in items]

    def set_max_batch_size(self, size: int) -> None:
        self.sizes.set_max_batch_size(size)


def test_batching_and_its_run_time_settings(serve_cluster: str) -> None:
    handle = serve.run(
        Batcher.options(max_ongoing_requests=16).bind(), name="batcher", route_prefix=None
    )

    async def burst() -> list[tuple[int, int]]:
        return list(await asyncio.gather(*(handle.sizes.remote(i) for i in range(8))))

    results = asyncio.run(burst())
    assert [item for item, _ in results] == list(range(8))
    assert max(size for _, size in results) == 4
    handle.set_max_batch_size.remote(1).result()
    assert {size for _, size in asyncio.run(burst())} == {1}


@serve.deployment(
    autoscaling_config={
        "min_replicas": 0,
        "max_replicas": 3,
        "target_ongoing_requests": 1,
        "upscale_delay_s": 0,
        "downscale_delay_s": 1,
        "metrics_interval_s": 0.2,
    },
    max_ongoing_requests=1,
)
class Scaled:
    async def __call__(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return serve.get_replica_context().replica_id


def _running(app: str, deployment: str) -> int:
    status = serve.status().applications[app].deployments[deployment]
    return status.replica_states.get("RUNNING", 0)


def test_autoscaling_from_zero_up_and_back_to_zero(serve_cluster: str) -> None:
    handle = serve.run(Scaled.bind(), name="scaled", route_prefix=None)
    assert _running("scaled", "Scaled") == 0
    assert handle.remote(0).result(timeout_s=60)  # waits for a replica, does not fail
    responses = [handle.remote(3) for _ in range(3)]
    wait_for_condition(lambda: _running("scaled", "Scaled") == 3, timeout=30)
    assert len({r.result(timeout_s=60) for r in responses}) >= 2
    wait_for_condition(lambda: _running("scaled", "Scaled") == 0, timeout=30)


@serve.deployment(health_check_period_s=0.3, health_check_timeout_s=1)
class Fragile:
    def __init__(self) -> None:
        self.healthy = True

    def check_health(self) -> None:
        if not self.healthy:
            raise RuntimeError("sick")

    def make_sick(self) -> None:
        self.healthy = False

    def pid(self) -> int:
        return os.getpid()

    def __call__(self) -> str:
        return serve.get_replica_context().replica_id


def test_failing_health_check_replaces_the_replica(serve_cluster: str) -> None:
    handle = serve.run(Fragile.bind(), name="fragile", route_prefix=None)
    first = handle.remote().result()
    handle.make_sick.remote().result()

    def replaced() -> bool:
        return handle.remote().result(timeout_s=10) != first

    wait_for_condition(replaced, timeout=30)
    wait_for_condition(lambda: serve.status().applications["fragile"].status == "RUNNING")


def test_killed_replica_is_replaced(serve_cluster: str) -> None:
    handle = serve.run(Fragile.options(num_replicas=2).bind(), name="killed", route_prefix=None)
    pids = {handle.pid.remote().result() for _ in range(30)}
    assert len(pids) == 2
    victim = pids.pop()
    os.kill(victim, signal.SIGKILL)
    failures = 0
    for _ in range(50):  # nothing was running on the victim: every call is served
        try:
            handle.remote().result(timeout_s=30)
        except Exception:
            failures += 1
    assert failures <= 1  # at most a call sent before the loss was noticed

    def healed() -> bool:
        now = {handle.pid.remote().result() for _ in range(30)}
        return len(now) == 2 and victim not in now

    wait_for_condition(healed, timeout=30)


@serve.deployment(num_replicas=2, graceful_shutdown_timeout_s=5)
class Versioned:
    def __init__(self, version: str) -> None:
        self.version = version

    async def __call__(self, request: Request) -> str:
        await asyncio.sleep(0.01)
        return self.version


def test_rolling_update_under_load_fails_no_request(serve_cluster: str) -> None:
    serve.run(Versioned.bind("v1"), name="rolling", route_prefix="/rolling")
    stop = threading.Event()
    outcomes: list[tuple[int, bytes]] = []

    def load() -> None:
        while not stop.is_set():
            outcomes.append(get(f"{serve_cluster}/rolling"))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        serve.run(Versioned.bind("v2"), name="rolling", route_prefix="/rolling")
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    statuses = {status for status, _ in outcomes}
    assert statuses == {200}, [o for o in outcomes if o[0] != 200][:3]
    bodies = [body for _, body in outcomes]
    assert bodies[0] == b"v1" and bodies[-1] == b"v2"
    assert serve.status().applications["rolling"].deployments["Versioned"].replica_states == {
        "RUNNING": 2
    }


@serve.deployment
class Sleeper:
    async def __call__(self, request: Request) -> str:
        await asyncio.sleep(float(request.query_params["s"]))
        return "done"


def test_request_timeout_is_408(serve_cluster: str) -> None:
    serve.run(Sleeper.bind(), name="sleeper", route_prefix="/sleeper")
    assert get(f"{serve_cluster}/sleeper?s=0") == (200, b"done")
    start = time.monotonic()
    assert get(f"{serve_cluster}/sleeper?s=10")[0] == 408
    assert time.monotonic() - start < 8


def test_delete_drains_requests_in_flight(serve_cluster: str) -> None:
    serve.run(Sleeper.bind(), name="draining", route_prefix="/draining")
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(get(f"{serve_cluster}/draining?s=1")))
    thread.start()
    time.sleep(0.3)
    serve.delete("draining")
    thread.join(30)
    assert result == [(200, b"done")]
