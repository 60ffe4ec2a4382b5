"""An actor ending itself with ``nebula.actor.exit_actor()``, and listing named actors."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psutil
import pytest

import nebula
from nebula.actor import exit_actor
from nebula.exceptions import ActorDiedError
from nebula.testing import wait_for_condition
from nebula.util import list_named_actors


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=1, namespace="exit-tests")
    yield
    nebula.shutdown()


@nebula.remote(max_restarts=3)
class Quitter:
    def pid(self) -> int:
        return os.getpid()

    def quit(self) -> None:
        exit_actor()


@nebula.remote
class AsyncQuitter:
    async def quit(self) -> None:
        exit_actor()


def test_exit_actor_ends_the_actor_for_good_even_with_restarts_left() -> None:
    actor = Quitter.remote()
    pid = nebula.get(actor.pid.remote())
    with pytest.raises(ActorDiedError, match="exit_actor"):
        nebula.get(actor.quit.remote(), timeout=30)
    with pytest.raises(ActorDiedError, match="exit_actor"):
        nebula.get(actor.pid.remote(), timeout=30)
    psutil.wait_procs([psutil.Process(pid)] if psutil.pid_exists(pid) else [], timeout=10)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_exit_actor_from_an_async_actor() -> None:
    actor = AsyncQuitter.remote()
    with pytest.raises(ActorDiedError, match="exit_actor"):
        nebula.get(actor.quit.remote(), timeout=30)


def test_exit_actor_outside_an_actor_is_an_error() -> None:
    with pytest.raises(TypeError, match="inside an actor"):
        exit_actor()


def test_list_named_actors_in_this_namespace_or_all() -> None:
    first = Quitter.options(name="first").remote()
    second = Quitter.options(name="second", namespace="elsewhere").remote()
    nebula.get([first.pid.remote(), second.pid.remote()])
    assert list_named_actors() == ["first"]
    everywhere = list_named_actors(all_namespaces=True)
    assert {"name": "first", "namespace": "exit-tests"} in everywhere
    assert {"name": "second", "namespace": "elsewhere"} in everywhere
    nebula.kill(first)
    nebula.kill(second)
    # The kill reaches the control store on its own.
    wait_for_condition(lambda: list_named_actors(all_namespaces=True) == [], timeout=10)


@nebula.remote
def call_back(handle: nebula.ActorHandle) -> int:
    return nebula.get(handle.pid.remote())


class SelfAware:
    def pid(self) -> int:
        return os.getpid()

    def via_task(self) -> nebula.ObjectRef:
        me = nebula.get_runtime_context().current_actor
        return call_back.remote(me)


SelfAwareThreaded = nebula.remote(max_concurrency=2)(SelfAware)  # a thread serves the callback


def test_current_actor_is_a_handle_to_the_running_actor() -> None:
    actor = SelfAwareThreaded.remote()
    ref = nebula.get(actor.via_task.remote())
    assert nebula.get(ref) == nebula.get(actor.pid.remote())
    with pytest.raises(RuntimeError, match="inside an actor"):
        _ = nebula.get_runtime_context().current_actor
    nebula.kill(actor)
