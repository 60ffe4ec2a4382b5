"""The workloads of `nebula microbenchmark`, one per line of Ray's `ray microbenchmark`.

Names, definitions and multipliers are Ray's (`ray/_private/ray_perf.py`) so each line can be
compared with the Ray line of the same name. Deliberate differences:
- a workload creates its actors and objects only when it is selected, and kills its actors
  when done, so a filtered run starts nothing it does not measure and one workload's actors
  do not slow down the next;
- the n-actor workloads size themselves by the cluster's CPUs, not the machine's cores, so
  `--num-cpus` smaller than the machine cannot leave the client tasks without a CPU;
- `wait` takes no `fetch_local` hint: Nebula's `wait` has none to give.

The remote functions and classes live at module level so workers import them by reference
instead of receiving a pickled closure with every task.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import nebula

# Ray's sizes, kept so that a call performs the same work as in Ray.
_BATCH_SIZE = 1000
_CALLS_PER_CLIENT = 5000
_CALLS_PER_CLIENT_WITH_ARG = 1000
_TASKS_PER_ACTOR_CLIENT = 10000
_NUM_CLIENTS = 4
_REFS_IN_OBJECT = 10000
_NUM_PLACEMENT_GROUPS = 100
# 100 Mi int64 values: 0.8 GB per put; a put task stores ten arrays of a tenth of that.
_LARGE_ARRAY_LEN = 100 * 1024 * 1024
_PUT_TASK_ARRAY_LEN = 10 * 1024 * 1024
_PUTS_PER_TASK = 10
_PUT_TASKS = 10
# The placement-group workload reserves this custom resource so it never competes with the
# CPUs other work needs; the runner declares it when it starts the cluster itself.
PLACEMENT_GROUP_RESOURCE = "custom"
PLACEMENT_GROUP_RESOURCE_AMOUNT = 100.0
_BUNDLE_SHARE = 0.001


class WorkloadUnavailable(Exception):
    """Raised while preparing a workload that the connected cluster cannot run; it is skipped."""


@dataclass(frozen=True, slots=True)
class Measurable:
    """What a prepared workload hands to the timer: one call, and how many operations it is."""

    call: Callable[[], object]
    multiplier: float = 1.0


@dataclass(frozen=True, slots=True)
class BenchmarkEnv:
    """Facts about the cluster that size the workloads."""

    # Ray uses half the machine's cores as the actor count of its n-actor workloads; taking
    # half of the cluster's CPUs also leaves CPUs for the client tasks of the n:n workloads.
    num_server_actors: int
    resources: Mapping[str, float]

    @classmethod
    def from_cluster_resources(cls, resources: Mapping[str, float]) -> BenchmarkEnv:
        return cls(max(1, int(resources.get("CPU", 1)) // 2), dict(resources))


Prepare = Callable[[BenchmarkEnv], AbstractContextManager[Measurable]]


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    prepare: Prepare


# --- remote code -------------------------------------------------------------------------


# The actor classes are wrapped by calling `nebula.remote` rather than decorating them: a type
# checker ignores what a class decorator returns and would not know about `.remote()`.


class _Actor:
    def small_value(self) -> bytes:
        return b"ok"

    def small_value_arg(self, x: object) -> bytes:
        return b"ok"

    def small_value_batch(self, n: int) -> None:
        nebula.get([small_value.remote() for _ in range(n)])


class _AsyncActor:
    async def small_value(self) -> bytes:
        return b"ok"

    async def small_value_with_arg(self, x: object) -> bytes:
        return b"ok"


class _Client:
    def __init__(self, servers: Any) -> None:
        self.servers: list[Any] = servers if isinstance(servers, list) else [servers]

    def small_value_batch(self, n: int) -> None:
        nebula.get([s.small_value.remote() for s in self.servers for _ in range(n)])

    def small_value_batch_arg(self, n: int) -> None:
        x = nebula.put(0)
        nebula.get([s.small_value_arg.remote(x) for s in self.servers for _ in range(n)])


Actor = nebula.remote(num_cpus=0)(_Actor)
AsyncActor = nebula.remote(_AsyncActor)
Client = nebula.remote(num_cpus=0)(_Client)


@nebula.remote
def small_value() -> bytes:
    return b"ok"


@nebula.remote
def create_object_containing_ref() -> list[Any]:
    return [nebula.put(1) for _ in range(_REFS_IN_OBJECT)]


@nebula.remote
def do_put_small() -> None:
    for _ in range(100):
        nebula.put(0)


@nebula.remote
def do_put() -> None:
    import numpy as np

    for _ in range(_PUTS_PER_TASK):
        nebula.put(np.zeros(_PUT_TASK_ARRAY_LEN, dtype=np.int64))


@nebula.remote
def call_actors_round_robin(actors: list[Any], n: int) -> None:
    nebula.get([actors[i % len(actors)].small_value.remote() for i in range(n)])


# --- preparation -------------------------------------------------------------------------


@contextmanager
def _killed_on_exit(actors: list[Any]) -> Iterator[list[Any]]:
    """Actors outlive their handles' scope in some runtimes; kill them so they free workers."""
    try:
        yield actors
    finally:
        for actor in actors:
            nebula.kill(actor)


@contextmanager
def _get_small(env: BenchmarkEnv) -> Iterator[Measurable]:
    value = nebula.put(0)
    yield Measurable(lambda: nebula.get(value))


@contextmanager
def _put_small(env: BenchmarkEnv) -> Iterator[Measurable]:
    yield Measurable(lambda: nebula.put(0))


@contextmanager
def _put_multi_small(env: BenchmarkEnv) -> Iterator[Measurable]:
    yield Measurable(lambda: nebula.get([do_put_small.remote() for _ in range(10)]), 1000)


@contextmanager
def _put_large(env: BenchmarkEnv) -> Iterator[Measurable]:
    import numpy as np

    array = np.zeros(_LARGE_ARRAY_LEN, dtype=np.int64)
    yield Measurable(lambda: nebula.put(array), 8 * 0.1)


@contextmanager
def _tasks_and_get_batch(env: BenchmarkEnv) -> Iterator[Measurable]:
    yield Measurable(lambda: nebula.get([small_value.remote() for _ in range(_BATCH_SIZE)]))


@contextmanager
def _put_multi(env: BenchmarkEnv) -> Iterator[Measurable]:
    yield Measurable(
        lambda: nebula.get([do_put.remote() for _ in range(_PUT_TASKS)]), _PUT_TASKS * 8 * 0.1
    )


@contextmanager
def _get_containing_object_ref(env: BenchmarkEnv) -> Iterator[Measurable]:
    ref = create_object_containing_ref.remote()
    yield Measurable(lambda: nebula.get(ref))


def _wait_for_each(num_refs: int) -> None:
    not_ready = [small_value.remote() for _ in range(num_refs)]
    for _ in range(num_refs):
        _ready, not_ready = nebula.wait(not_ready)


@contextmanager
def _wait_multiple_refs(env: BenchmarkEnv) -> Iterator[Measurable]:
    yield Measurable(lambda: _wait_for_each(_BATCH_SIZE))


@contextmanager
def _tasks_sync(env: BenchmarkEnv) -> Iterator[Measurable]:
    yield Measurable(lambda: nebula.get(small_value.remote()))


@contextmanager
def _tasks_async(env: BenchmarkEnv) -> Iterator[Measurable]:
    yield Measurable(
        lambda: nebula.get([small_value.remote() for _ in range(_BATCH_SIZE)]),
        _BATCH_SIZE,
    )


@contextmanager
def _multi_client_tasks(env: BenchmarkEnv) -> Iterator[Measurable]:
    n = _TASKS_PER_ACTOR_CLIENT
    with _killed_on_exit([Actor.remote() for _ in range(_NUM_CLIENTS)]) as clients:
        yield Measurable(
            lambda: nebula.get([c.small_value_batch.remote(n) for c in clients]),
            n * len(clients),
        )


def _start_one(actor_class: Any, options: Mapping[str, Any] | None) -> Any:
    return actor_class.options(**options).remote() if options else actor_class.remote()


def _sync_calls(actor_class: Any) -> Prepare:
    """The 1:1 "calls sync" lines: one call in flight at a time, so they measure latency."""

    @contextmanager
    def prepare(env: BenchmarkEnv) -> Iterator[Measurable]:
        with _killed_on_exit([actor_class.remote()]) as (actor,):
            yield Measurable(lambda: nebula.get(actor.small_value.remote()))

    return prepare


def _async_calls(actor_class: Any, options: Mapping[str, Any] | None = None) -> Prepare:
    """The 1:1 "calls async" lines: a thousand calls in flight before the first result is read."""

    @contextmanager
    def prepare(env: BenchmarkEnv) -> Iterator[Measurable]:
        with _killed_on_exit([_start_one(actor_class, options)]) as (actor,):
            yield Measurable(
                lambda: nebula.get([actor.small_value.remote() for _ in range(_BATCH_SIZE)]),
                _BATCH_SIZE,
            )

    return prepare


@contextmanager
def _async_calls_with_args(env: BenchmarkEnv) -> Iterator[Measurable]:
    with _killed_on_exit([AsyncActor.remote()]) as (actor,):
        yield Measurable(
            lambda: nebula.get([actor.small_value_with_arg.remote(i) for i in range(_BATCH_SIZE)]),
            _BATCH_SIZE,
        )


def _one_to_n(actor_class: Any) -> Prepare:
    """One client actor calling every server actor, so the driver is not the bottleneck."""

    @contextmanager
    def prepare(env: BenchmarkEnv) -> Iterator[Measurable]:
        n = _CALLS_PER_CLIENT
        servers = [actor_class.remote() for _ in range(env.num_server_actors)]
        with _killed_on_exit(servers), _killed_on_exit([Client.remote(servers)]) as (client,):
            yield Measurable(
                lambda: nebula.get(client.small_value_batch.remote(n)), n * len(servers)
            )

    return prepare


def _n_to_n(actor_class: Any) -> Prepare:
    """Several client tasks each spreading calls over all server actors."""

    @contextmanager
    def prepare(env: BenchmarkEnv) -> Iterator[Measurable]:
        n, m = _CALLS_PER_CLIENT, _NUM_CLIENTS
        servers = [actor_class.remote() for _ in range(env.num_server_actors)]
        with _killed_on_exit(servers):
            yield Measurable(
                lambda: nebula.get([call_actors_round_robin.remote(servers, n) for _ in range(m)]),
                m * n,
            )

    return prepare


@contextmanager
def _n_to_n_with_arg(env: BenchmarkEnv) -> Iterator[Measurable]:
    n = _CALLS_PER_CLIENT_WITH_ARG
    servers = [Actor.remote() for _ in range(env.num_server_actors)]
    with (
        _killed_on_exit(servers),
        _killed_on_exit([Client.remote(s) for s in servers]) as clients,
    ):
        yield Measurable(
            lambda: nebula.get([c.small_value_batch_arg.remote(n) for c in clients]),
            n * len(clients),
        )


def _placement_group_api() -> tuple[Callable[..., Any], Callable[[Any], None]] | None:
    """Placement groups are optional in the core; without them their line is left out."""
    try:
        util = importlib.import_module("nebula.util")
        return util.placement_group, util.remove_placement_group
    except (ImportError, AttributeError):
        return None


@contextmanager
def _placement_group_create_removal(env: BenchmarkEnv) -> Iterator[Measurable]:
    api = _placement_group_api()
    needed = _NUM_PLACEMENT_GROUPS * _BUNDLE_SHARE
    if api is None or env.resources.get(PLACEMENT_GROUP_RESOURCE, 0.0) < needed:
        raise WorkloadUnavailable
    create, remove = api

    def create_and_remove() -> None:
        groups = [
            create(bundles=[{PLACEMENT_GROUP_RESOURCE: _BUNDLE_SHARE}])
            for _ in range(_NUM_PLACEMENT_GROUPS)
        ]
        for group in groups:
            group.wait(timeout_seconds=30)
        # Removing in the timed call keeps the cluster from accumulating groups across calls,
        # which would make later trials slower than earlier ones.
        for group in groups:
            remove(group)

    yield Measurable(create_and_remove, _NUM_PLACEMENT_GROUPS)


_WORKLOADS: tuple[Workload, ...] = (
    Workload("single client get calls (Plasma Store)", _get_small),
    Workload("single client put calls (Plasma Store)", _put_small),
    Workload("multi client put calls (Plasma Store)", _put_multi_small),
    Workload("single client put gigabytes", _put_large),
    Workload("single client tasks and get batch", _tasks_and_get_batch),
    Workload("multi client put gigabytes", _put_multi),
    Workload("single client get object containing 10k refs", _get_containing_object_ref),
    Workload("single client wait 1k refs", _wait_multiple_refs),
    Workload("single client tasks sync", _tasks_sync),
    Workload("single client tasks async", _tasks_async),
    Workload("multi client tasks async", _multi_client_tasks),
    Workload("1:1 actor calls sync", _sync_calls(Actor)),
    Workload("1:1 actor calls async", _async_calls(Actor)),
    Workload(
        "1:1 actor calls concurrent",
        _async_calls(Actor, options={"max_concurrency": 16}),
    ),
    Workload("1:n actor calls async", _one_to_n(Actor)),
    Workload("n:n actor calls async", _n_to_n(Actor)),
    Workload("n:n actor calls with arg async", _n_to_n_with_arg),
    Workload("1:1 async-actor calls sync", _sync_calls(AsyncActor)),
    Workload("1:1 async-actor calls async", _async_calls(AsyncActor)),
    Workload("1:1 async-actor calls with args async", _async_calls_with_args),
    Workload("1:n async-actor calls async", _one_to_n(AsyncActor)),
    Workload("n:n async-actor calls async", _n_to_n(AsyncActor)),
)

_PLACEMENT_GROUP_WORKLOAD = Workload(
    "placement group create/removal", _placement_group_create_removal
)


def placement_groups_supported() -> bool:
    return _placement_group_api() is not None


def all_workloads() -> tuple[Workload, ...]:
    """Every workload the installed core can run, in Ray's order."""
    if placement_groups_supported():
        return (*_WORKLOADS, _PLACEMENT_GROUP_WORKLOAD)
    return _WORKLOADS
