"""Actors that come back after their process dies (max_restarts, max_task_retries)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import nebula
from nebula.exceptions import ActorDiedError
from nebula.testing import SignalActor


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@nebula.remote
class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> int:
        self.value += 1
        return self.value

    def pid(self) -> int:
        return os.getpid()

    def blocking(self, started: Any, release: Any) -> str:
        """Tell the test it is running, then wait until it is released."""
        nebula.get(started.send.remote())
        nebula.get(release.wait.remote())
        return "finished"


def _kill(actor: nebula.ActorHandle) -> int:
    pid = nebula.get(actor.pid.remote())
    os.kill(pid, signal.SIGKILL)
    return pid


def _wait_for_new_process(actor: nebula.ActorHandle, old_pid: int, timeout: float = 30) -> int:
    """Calls sent to the dead process fail (at-most-once, as without max_task_retries);
    once the restart is known, calls reach the new process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = nebula.get(actor.pid.remote(), timeout=timeout)
        except ActorDiedError:
            time.sleep(0.05)
            continue
        if pid != old_pid:
            return int(pid)
    raise AssertionError("the actor did not come back")


def test_a_restarted_actor_reruns_init_in_a_new_process() -> None:
    actor = Counter.options(max_restarts=1).remote()
    assert nebula.get([actor.increment.remote() for _ in range(3)]) == [1, 2, 3]
    old_pid = _kill(actor)
    _wait_for_new_process(actor, old_pid)
    assert nebula.get(actor.increment.remote(), timeout=30) == 1  # fresh __init__


def test_in_flight_calls_are_resent_within_max_task_retries() -> None:
    actor = Counter.options(max_restarts=1, max_task_retries=1).remote()
    pid = nebula.get(actor.pid.remote())
    started, release = SignalActor.remote(), SignalActor.remote()
    call = actor.blocking.remote(started, release)
    nebula.get(started.wait.remote(), timeout=30)  # the call is running in the actor
    os.kill(pid, signal.SIGKILL)
    nebula.get(release.send.remote())  # the resent call finishes in the new process
    assert nebula.get(call, timeout=30) == "finished"


def test_in_flight_calls_fail_without_task_retries_but_later_calls_work() -> None:
    actor = Counter.options(max_restarts=1).remote()
    pid = nebula.get(actor.pid.remote())
    started, release = SignalActor.remote(), SignalActor.remote()
    call = actor.blocking.remote(started, release)
    nebula.get(started.wait.remote(), timeout=30)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ActorDiedError, match="max_task_retries"):
        nebula.get(call, timeout=30)
    assert nebula.get(actor.increment.remote(), timeout=30) == 1


def test_restarts_run_out_then_calls_fail_promptly() -> None:
    actor = Counter.options(max_restarts=1).remote()
    _wait_for_new_process(actor, _kill(actor))
    _kill(actor)
    start = time.monotonic()
    with pytest.raises(ActorDiedError):
        nebula.get(actor.increment.remote(), timeout=30)
    assert time.monotonic() - start < 10


def test_without_max_restarts_a_dead_actor_stays_dead() -> None:
    actor = Counter.remote()
    _kill(actor)
    with pytest.raises(ActorDiedError):
        nebula.get(actor.increment.remote(), timeout=30)


def test_a_named_detached_actor_is_found_again_after_its_restart() -> None:
    actor = Counter.options(name="survivor", lifetime="detached", max_restarts=-1).remote()
    nebula.get(actor.increment.remote())
    _wait_for_new_process(actor, _kill(actor))
    found = nebula.get_actor("survivor")
    assert nebula.get(found.increment.remote(), timeout=30) == 1
    nebula.kill(found)


def test_kill_with_restart_allowed_brings_the_actor_back() -> None:
    actor = Counter.options(max_restarts=1).remote()
    old_pid = nebula.get(actor.pid.remote())
    nebula.get(actor.increment.remote())
    nebula.kill(actor, no_restart=False)
    _wait_for_new_process(actor, old_pid)
    assert nebula.get(actor.increment.remote(), timeout=30) == 1
    nebula.kill(actor)
    with pytest.raises(ActorDiedError):
        nebula.get(actor.increment.remote(), timeout=30)
