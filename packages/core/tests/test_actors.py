"""Actors: state, ordering, handles, concurrency, names and namespaces, lifetime, death."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest

import nebula
from nebula.exceptions import ActorDiedError
from nebula.testing import SignalActor, wait_for_condition

pytestmark = pytest.mark.usefixtures("nebula_cluster")


@nebula.remote
class Counter:
    def __init__(self) -> None:
        self.x = 0

    def inc(self) -> None:
        self.x += 1

    def get_value(self) -> int:
        return self.x


@nebula.remote
class Recorder:
    def __init__(self, start: list[int] | None = None) -> None:
        self.items: list[object] = list(start or [])

    def append(self, item: object) -> None:
        self.items.append(item)

    def get(self) -> list[object]:
        return self.items

    @nebula.method(num_returns=2)
    def split(self) -> tuple[int, list[object]]:
        return len(self.items), self.items


@nebula.remote
def inc_n_times(counter: nebula.ActorHandle, n: int) -> int:
    nebula.get([counter.inc.remote() for _ in range(n)])
    return nebula.get(counter.get_value.remote())


# ----------------------------------------------------------------- basic state


def test_counter_from_the_seed() -> None:
    c = Counter.remote()
    assert nebula.get(c.get_value.remote()) == 0
    c.inc.remote()
    c.inc.remote()
    assert nebula.get(c.get_value.remote()) == 2


def test_each_actor_has_its_own_state() -> None:
    a, b = Counter.remote(), Counter.remote()
    nebula.get([a.inc.remote() for _ in range(3)])
    nebula.get(b.inc.remote())
    assert nebula.get([a.get_value.remote(), b.get_value.remote()]) == [3, 1]


def test_constructor_arguments_including_refs() -> None:
    r = Recorder.remote(nebula.put([1, 2]))
    assert nebula.get(r.get.remote()) == [1, 2]


def test_calls_from_one_caller_run_in_submission_order() -> None:
    r = Recorder.remote()
    for i in range(1000):
        r.append.remote(i)
    assert nebula.get(r.get.remote(), timeout=60) == list(range(1000))


def test_method_results_may_be_object_refs_args() -> None:
    c = Counter.remote()
    r = Recorder.remote()
    c.inc.remote()
    nebula.get(r.append.remote(c.get_value.remote()))
    assert nebula.get(r.get.remote()) == [1]


def test_method_with_a_ready_ref_arg_runs_once() -> None:
    r = Recorder.remote()
    nebula.get(r.append.remote(nebula.put("once")))
    assert nebula.get(r.get.remote()) == ["once"]


# --------------------------------------------------------------------- handles


def test_handles_passed_to_tasks_reach_the_same_actor() -> None:
    c = Counter.remote()
    results = nebula.get([inc_n_times.remote(c, 5) for _ in range(3)], timeout=30)
    assert max(results) == 15
    assert nebula.get(c.get_value.remote()) == 15


def test_handles_passed_to_other_actors() -> None:
    @nebula.remote
    class Forwarder:
        def __init__(self, target: nebula.ActorHandle) -> None:
            self.target = target

        def push(self, item: object) -> None:
            nebula.get(self.target.append.remote(item))

    sink = Recorder.remote()
    forwarder = Forwarder.remote(sink)
    nebula.get([forwarder.push.remote(i) for i in range(5)])
    assert nebula.get(sink.get.remote()) == [0, 1, 2, 3, 4]


def test_handles_inside_containers_stay_usable() -> None:
    @nebula.remote
    def bump_all(handles: list[nebula.ActorHandle]) -> list[int]:
        nebula.get([h.inc.remote() for h in handles])
        return nebula.get([h.get_value.remote() for h in handles])

    counters = [Counter.remote() for _ in range(2)]
    assert nebula.get(bump_all.remote(counters)) == [1, 1]


def test_method_num_returns() -> None:
    r = Recorder.remote([7, 8])
    count_ref, items_ref = r.split.remote()
    assert nebula.get(count_ref) == 2
    assert nebula.get(items_ref) == [7, 8]
    whole = r.split.options(num_returns=1).remote()
    assert nebula.get(whole) == (2, [7, 8])


def test_unknown_method_is_an_attribute_error() -> None:
    c = Counter.remote()
    with pytest.raises(AttributeError, match="no_such_method"):
        c.no_such_method.remote()


# ----------------------------------------------------------------- concurrency


@nebula.remote
class Sleeper:
    def nap(self, seconds: float) -> tuple[float, float]:
        start = time.monotonic()
        time.sleep(seconds)
        return start, time.monotonic()

    def thread_name(self) -> str:
        return threading.current_thread().name

    def wait_on(self, gate: Any) -> str:
        nebula.get(gate.wait.remote())
        return threading.current_thread().name


def _overlapping(spans: list[tuple[float, float]]) -> bool:
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    return latest_start < earliest_end


def test_default_actor_runs_one_call_at_a_time() -> None:
    s = Sleeper.remote()
    spans = nebula.get([s.nap.remote(0.2) for _ in range(3)], timeout=30)
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start >= end


def test_max_concurrency_runs_calls_in_parallel_threads() -> None:
    s = Sleeper.options(max_concurrency=4).remote()
    gate = SignalActor.remote()
    calls = [s.wait_on.remote(gate) for _ in range(4)]
    # All four are blocked in the actor at once: four threads run them.
    wait_for_condition(lambda: nebula.get(gate.cur_num_waiters.remote()) == 4, timeout=30)
    nebula.get(gate.send.remote())
    names = nebula.get(calls, timeout=30)
    assert len(set(names)) == 4 and all(name.startswith("nebula-actor") for name in names)


@nebula.remote
class AsyncActor:
    def __init__(self) -> None:
        self.loops: set[int] = set()
        self.active = 0
        self.peak = 0

    async def nap(self, seconds: float) -> int:
        self.loops.add(id(asyncio.get_running_loop()))
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(seconds)
        self.active -= 1
        return self.peak

    async def stats(self) -> tuple[int, int]:
        return len(self.loops), self.peak

    async def wait_on(self, gate: Any) -> int:
        self.loops.add(id(asyncio.get_running_loop()))
        self.active += 1
        self.peak = max(self.peak, self.active)
        await gate.wait.remote()
        self.active -= 1
        return self.peak


def test_async_actor_methods_run_concurrently_on_one_event_loop() -> None:
    a = AsyncActor.remote()
    gate = SignalActor.remote()
    calls = [a.wait_on.remote(gate) for _ in range(5)]
    wait_for_condition(lambda: nebula.get(gate.cur_num_waiters.remote()) == 5, timeout=30)
    nebula.get(gate.send.remote())
    nebula.get(calls, timeout=30)
    loops, peak = nebula.get(a.stats.remote())
    assert loops == 1
    assert peak == 5


def test_async_actor_respects_max_concurrency() -> None:
    a = AsyncActor.options(max_concurrency=2).remote()
    gate = SignalActor.remote()
    calls = [a.wait_on.remote(gate) for _ in range(6)]
    wait_for_condition(lambda: nebula.get(gate.cur_num_waiters.remote()) == 2, timeout=30)
    nebula.get(gate.send.remote())
    nebula.get(calls, timeout=30)
    assert nebula.get(a.stats.remote()) == (1, 2)


# --------------------------------------------------------- names and namespaces


def test_named_actor_is_found_by_get_actor() -> None:
    c = Counter.options(name="named-counter").remote()
    c.inc.remote()
    found = nebula.get_actor("named-counter")
    assert found == c
    assert nebula.get(found.get_value.remote()) == 1
    nebula.kill(c)


def test_get_actor_for_an_unknown_name_raises_value_error() -> None:
    with pytest.raises(ValueError, match="no-such-actor"):
        nebula.get_actor("no-such-actor")


def test_duplicate_actor_name_raises_value_error() -> None:
    first = Counter.options(name="taken").remote()
    with pytest.raises(ValueError, match="taken"):
        Counter.options(name="taken").remote()
    nebula.kill(first)


def test_names_are_scoped_by_namespace() -> None:
    a = Recorder.options(name="shared-name", namespace="ns-a").remote([1])
    b = Recorder.options(name="shared-name", namespace="ns-b").remote([2])
    assert nebula.get(nebula.get_actor("shared-name", namespace="ns-a").get.remote()) == [1]
    assert nebula.get(nebula.get_actor("shared-name", namespace="ns-b").get.remote()) == [2]
    with pytest.raises(ValueError):
        nebula.get_actor("shared-name")  # not in this job's namespace
    nebula.kill(a)
    nebula.kill(b)


def test_name_can_be_reused_after_the_actor_is_killed() -> None:
    first = Counter.options(name="reusable").remote()
    nebula.get(first.get_value.remote())
    nebula.kill(first)

    def name_is_free() -> bool:
        try:
            nebula.get_actor("reusable")
        except ValueError:
            return True
        return False

    wait_for_condition(name_is_free, timeout=5)
    second = Counter.options(name="reusable").remote()
    assert nebula.get(second.get_value.remote()) == 0
    nebula.kill(second)


def test_detached_actor_survives_its_handle() -> None:
    handle = Counter.options(name="detached-counter", lifetime="detached").remote()
    handle.inc.remote()
    nebula.get(handle.get_value.remote())
    del handle
    time.sleep(0.3)
    again = nebula.get_actor("detached-counter")
    assert nebula.get(again.get_value.remote()) == 1
    nebula.kill(again)


# ----------------------------------------------------------------------- death


def test_killed_actor_raises_actor_died_error() -> None:
    c = Counter.remote()
    assert nebula.get(c.get_value.remote()) == 0
    nebula.kill(c)
    with pytest.raises(ActorDiedError):
        nebula.get(c.get_value.remote(), timeout=10)
    # And later calls fail the same way rather than hang.
    with pytest.raises(ActorDiedError):
        nebula.get(c.inc.remote(), timeout=10)


def test_failing_constructor_makes_calls_raise_actor_died_error() -> None:
    @nebula.remote
    class Broken:
        def __init__(self) -> None:
            raise RuntimeError("constructor exploded")

        def ping(self) -> str:
            return "pong"

    b = Broken.remote()
    with pytest.raises(ActorDiedError, match="constructor exploded"):
        nebula.get(b.ping.remote(), timeout=10)


def test_a_handle_passed_only_to_an_actors_constructor_keeps_its_actor_alive() -> None:
    import gc

    @nebula.remote(num_cpus=0)
    class Inner:
        def value(self) -> int:
            return 1

    @nebula.remote(num_cpus=0)
    class Holder:
        def __init__(self, handles: list[nebula.ActorHandle]) -> None:
            self.handles = handles

        def read(self) -> int:
            return int(nebula.get(self.handles[0].value.remote()))

    holder = Holder.remote([Inner.remote()])  # only the Holder keeps the Inner handle
    gc.collect()
    time.sleep(1.0)
    assert nebula.get(holder.read.remote(), timeout=30) == 1
