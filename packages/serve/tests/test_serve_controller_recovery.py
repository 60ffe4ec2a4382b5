"""The controller's process killed: HTTP keeps serving, and the restarted controller adopts
the running replicas and carries on managing them."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from _serve_http import get_status as get
from starlette.requests import Request

import nebula
from nebula import serve
from nebula.testing import wait_for_condition
from nebula.util.state import list_actors

pytestmark = pytest.mark.timeout(180)


@serve.deployment(num_replicas=2, user_config={"greeting": "hi"})
class Pid:
    def reconfigure(self, config: dict[str, str]) -> None:
        self.greeting = config["greeting"]

    def __call__(self, request: Request) -> str:
        return f"{self.greeting} {os.getpid()}"


def _controller_pid() -> int:
    [record] = list_actors(
        filters=[("class_name", "=", "ServeController"), ("state", "=", "ALIVE")]
    )
    return int(record["pid"])


def _pids(url: str, count: int = 20) -> set[str]:
    return {get(url)[1].decode().split()[1] for _ in range(count)}


def test_a_killed_controller_recovers_and_http_never_stops(serve_cluster: str) -> None:
    serve.run(Pid.bind(), name="pid", route_prefix="/pid")
    url = f"{serve_cluster}/pid"
    replicas = _pids(url)
    assert len(replicas) == 2

    failures: list[Any] = []
    answered = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                status, _ = get(url)
            except OSError as exc:
                failures.append(exc)
                continue
            if status != 200:
                failures.append(status)
            answered += 1

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(0.5)
        old_pid = _controller_pid()
        os.kill(old_pid, signal.SIGKILL)
        # While it restarts and after, the proxy goes on sending to the replicas it knows.
        wait_for_condition(lambda: _restarted(old_pid), timeout=60)
        wait_for_condition(lambda: serve.status().applications["pid"].status == "RUNNING")
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(30)
    assert failures == [] and answered > 20

    # The same replicas, adopted, not replaced.
    status = serve.status()
    assert status.applications["pid"].deployments["Pid"].replica_states == {"RUNNING": 2}
    assert _pids(url) == replicas

    # And the new controller manages them: a new user_config reaches them in place, scaling
    # adds a replica next to them, and a killed replica is replaced.
    hello = Pid.options(user_config={"greeting": "hello"})
    serve.run(hello.bind(), name="pid", route_prefix="/pid")
    assert get(url)[1].decode().startswith("hello ")
    assert _pids(url) == replicas
    serve.run(hello.options(num_replicas=3).bind(), name="pid", route_prefix="/pid")
    wait_for_condition(lambda: len(_pids(url)) == 3 and replicas < _pids(url, 40), timeout=30)
    os.kill(int(next(iter(replicas))), signal.SIGKILL)
    wait_for_condition(
        lambda: (
            serve.status().applications["pid"].deployments["Pid"].replica_states == {"RUNNING": 3}
        ),
        timeout=30,
    )
    serve.delete("pid")
    assert "pid" not in serve.status().applications


def _restarted(old_pid: int) -> bool:
    try:
        controller = nebula.get_actor("SERVE_CONTROLLER", namespace="serve")
        return _controller_pid() != old_pid and nebula.get(controller.ping.remote(), timeout=5)
    except Exception:
        return False
