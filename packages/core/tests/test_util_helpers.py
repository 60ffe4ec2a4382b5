"""The small helpers Ray users reach for: results as they complete, a bounded parallel map,
custom serializers, finding what does not pickle, the node's IP and RuntimeEnv."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pytest

import nebula
from nebula.exceptions import GetTimeoutError
from nebula.runtime_env import RuntimeEnv
from nebula.testing import SignalActor
from nebula.util import (
    as_completed,
    deregister_serializer,
    get_node_ip_address,
    inspect_serializability,
    map_unordered,
    register_serializer,
)


@pytest.fixture(scope="module", autouse=True)
def _nebula() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@nebula.remote
def wait_then(value: int, signal: object | None = None) -> int:
    if signal is not None:
        nebula.get(signal.wait.remote())  # type: ignore[attr-defined]
    return value


@nebula.remote
def square(x: int) -> int:
    return x * x


def test_as_completed_yields_what_finished_first() -> None:
    signal = SignalActor.remote()
    slow = wait_then.remote(1, signal)
    fast = [wait_then.remote(v) for v in (2, 3)]
    results = as_completed([slow, *fast], chunk_size=1)
    assert sorted([next(results), next(results)]) == [2, 3]  # the blocked one is not awaited
    signal.send.remote()
    assert list(results) == [1]
    refs = list(as_completed([square.remote(3)], yield_obj_refs=True))
    assert nebula.get(refs) == [9]


def test_as_completed_timeout_and_bad_chunk() -> None:
    signal = SignalActor.remote()
    with pytest.raises(GetTimeoutError):
        list(as_completed([wait_then.remote(1, signal)], timeout=0.2))
    signal.send.remote()
    with pytest.raises(ValueError, match="chunk_size"):
        list(as_completed([], chunk_size=0))


def test_map_unordered_bounds_the_tasks_in_flight() -> None:
    submitted = 0

    def items() -> Iterator[int]:
        nonlocal submitted
        for i in range(40):
            submitted += 1
            yield i

    results = map_unordered(square, items(), backpressure_size=5, chunk_size=1)
    first = next(results)
    assert submitted <= 6  # no more than the bound went out before the first result
    assert sorted([first, *results]) == [i * i for i in range(40)]
    with pytest.raises(TypeError, match="remote function"):
        list(map_unordered(lambda x: x, [1]))


class Unpicklable:
    """Holds a lock, so pickle refuses it; the serializer sends its value instead."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.lock = threading.Lock()


def test_a_registered_serializer_carries_an_unpicklable_class() -> None:
    @nebula.remote
    def read(obj: Unpicklable) -> tuple[int, bool]:
        return obj.value, isinstance(obj.lock, type(threading.Lock()))

    with pytest.raises(TypeError, match="Could not serialize"):
        nebula.put(Unpicklable(1))
    register_serializer(
        Unpicklable, serializer=lambda o: o.value, deserializer=lambda v: Unpicklable(v)
    )
    try:
        assert nebula.get(read.remote(Unpicklable(7))) == (7, True)
        assert nebula.get(nebula.put([Unpicklable(3)]))[0].value == 3
    finally:
        deregister_serializer(Unpicklable)
    with pytest.raises(TypeError):
        nebula.put(Unpicklable(1))
    with pytest.raises(KeyError):
        deregister_serializer(Unpicklable)


def test_inspect_serializability_names_the_culprit() -> None:
    lock = threading.Lock()

    def uses_lock() -> None:
        with lock:
            pass

    ok, failures = inspect_serializability(uses_lock, print_file=io.StringIO())
    assert not ok and {f.name for f in failures} == {"lock"}
    assert inspect_serializability(square) == (True, set())


def test_node_ip_and_runtime_env() -> None:
    node = nebula.nodes()[0]["NodeManagerAddress"]
    assert get_node_ip_address() == node
    assert nebula.get(nebula.remote(lambda: get_node_ip_address()).remote()) == node
    env = RuntimeEnv(env_vars={"GREETING": "hi"})
    assert env == {"env_vars": {"GREETING": "hi"}}

    @nebula.remote(runtime_env=env)
    def greet() -> str:
        import os

        return os.environ["GREETING"]

    assert nebula.get(greet.remote()) == "hi"
    with pytest.raises(ValueError, match="not supported"):
        greet.options(runtime_env=RuntimeEnv(pip=["requests"])).remote()
