"""Deployments called from Python: graphs, handles, responses, streams, status, errors."""

from __future__ import annotations

import asyncio
import time

import pytest
from nebula.serve.exceptions import ServeError

from nebula import serve

pytestmark = pytest.mark.timeout(120)


@serve.deployment
class Adder:
    def __init__(self, increment: int) -> None:
        self.increment = increment

    def __call__(self, x: int) -> int:
        return x + self.increment

    def double(self, x: int) -> int:
        return 2 * x

    def replica(self) -> str:
        return serve.get_replica_context().replica_id

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def count(self, n: int):  # type: ignore[no-untyped-def]
        yield from range(n)


@serve.deployment
def square(x: int) -> int:
    return x * x


@serve.deployment
class Combiner:
    def __init__(self, adder, squarer) -> None:  # type: ignore[no-untyped-def]
        self.adder = adder
        self.squarer = squarer

    async def __call__(self, x: int) -> int:
        # The adder's response goes to the squarer unresolved.
        return await self.squarer.remote(self.adder.remote(x))

    async def streamed(self, n: int) -> list[int]:
        items = []
        async for item in self.adder.options(stream=True).count.remote(n):
            items.append(item)
        return items

    def handle_types(self) -> list[str]:
        return [type(self.adder).__name__, type(self.squarer).__name__]


def test_graph_of_bound_deployments_arrives_as_handles(serve_cluster: str) -> None:
    handle = serve.run(Combiner.bind(Adder.bind(1), square.bind()), name="graph", route_prefix=None)
    assert handle.remote(3).result(timeout_s=30) == 16
    assert handle.handle_types.remote().result() == ["DeploymentHandle", "DeploymentHandle"]
    assert handle.streamed.remote(4).result() == [0, 1, 2, 3]
    status = serve.status().applications["graph"]
    assert status.status == "RUNNING"
    assert set(status.deployments) == {"Combiner", "Adder", "square"}
    assert serve.get_app_handle("graph").remote(2).result() == 9


def test_method_calls_streams_and_passing_responses(serve_cluster: str) -> None:
    handle = serve.run(Adder.bind(10), name="adder", route_prefix=None)
    first = handle.remote(1)
    second = handle.double.remote(first)  # passed without waiting
    assert second.result(timeout_s=30) == 22
    assert list(handle.options(stream=True).count.remote(3)) == [0, 1, 2]
    assert handle.options(method_name="double").remote(4).result() == 8


def test_responses_are_awaitable_from_async_code(serve_cluster: str) -> None:
    handle = serve.run(Adder.bind(5), name="async-caller", route_prefix=None)

    async def main() -> list[int]:
        results = await asyncio.gather(*(handle.remote(i) for i in range(20)))
        items = [i async for i in handle.options(stream=True).count.remote(2)]
        return list(results) + items

    assert asyncio.run(main()) == [i + 5 for i in range(20)] + [0, 1]


def test_requests_spread_over_replicas(serve_cluster: str) -> None:
    handle = serve.run(Adder.options(num_replicas=3).bind(0), name="spread", route_prefix=None)
    seen = {handle.replica.remote().result() for _ in range(60)}
    assert len(seen) == 3
    assert serve.status().applications["spread"].deployments["Adder"].replica_states == {
        "RUNNING": 3
    }


def test_errors_reach_the_caller_and_the_replica_keeps_serving(serve_cluster: str) -> None:
    handle = serve.run(Adder.bind(1), name="errors", route_prefix=None)
    with pytest.raises(ValueError, match="broken on purpose"):
        handle.fail.remote("broken on purpose").result()
    with pytest.raises(AttributeError, match="no method 'missing'"):
        handle.missing.remote().result()
    assert handle.remote(1).result() == 2


def test_result_timeout(serve_cluster: str) -> None:
    @serve.deployment
    class Slow:
        async def __call__(self) -> str:
            await asyncio.sleep(5)
            return "late"

    handle = serve.run(Slow.bind(), name="slow", route_prefix=None)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        handle.remote().result(timeout_s=0.3)
    assert time.monotonic() - start < 3


def test_constructor_error_makes_run_raise_it(serve_cluster: str) -> None:
    @serve.deployment
    class Broken:
        def __init__(self) -> None:
            raise RuntimeError("cannot load the model")

    with pytest.raises(RuntimeError, match="cannot load the model"):
        serve.run(Broken.bind(), name="broken", route_prefix=None, _timeout_s=60)
    assert serve.status().applications["broken"].status == "DEPLOY_FAILED"
    serve.delete("broken")


def test_bad_arguments_get_clear_errors(serve_cluster: str) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        serve.run(Adder.bind(1), name="bad", route_prefix="nope")
    serve.run(Adder.bind(1), name="first", route_prefix="/taken")
    with pytest.raises(ValueError, match="already used by application 'first'"):
        serve.run(Adder.bind(1), name="second", route_prefix="/taken")
    with pytest.raises(TypeError, match="does not take"):
        Adder.options(num_replica=2)
    with pytest.raises(ServeError, match="no application named"):
        serve.get_app_handle("nothing-here")


def test_user_config_reconfigures_in_place(serve_cluster: str) -> None:
    @serve.deployment(user_config={"greeting": "hello"})
    class Greeter:
        def reconfigure(self, config: dict[str, str]) -> None:
            self.greeting = config["greeting"]

        def __call__(self, name: str) -> str:
            return f"{self.greeting} {name}"

        def replica(self) -> str:
            return serve.get_replica_context().replica_id

    handle = serve.run(Greeter.bind(), name="greeter", route_prefix=None)
    assert handle.remote("ann").result() == "hello ann"
    replica = handle.replica.remote().result()
    handle = serve.run(
        Greeter.options(user_config={"greeting": "hi"}).bind(), name="greeter", route_prefix=None
    )
    deadline = time.monotonic() + 30
    while handle.remote("ann").result() != "hi ann":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert handle.replica.remote().result() == replica


def test_delete_removes_the_application(serve_cluster: str) -> None:
    serve.run(Adder.bind(1), name="short-lived", route_prefix=None)
    serve.delete("short-lived")
    assert "short-lived" not in serve.status().applications


def test_replica_context_outside_a_replica() -> None:
    with pytest.raises(RuntimeError, match="only inside a replica"):
        serve.get_replica_context()
