"""Options mean what they say: unknown names are TypeErrors with a suggestion, options
Nebula cannot honour are refused, and max_calls, concurrency_groups and max_pending_calls
work."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

import nebula
from nebula._api.options import TaskOptions
from nebula.exceptions import PendingCallsLimitExceeded
from nebula.testing import SignalActor, wait_for_condition

pytestmark = pytest.mark.usefixtures("nebula_cluster")


@nebula.remote
def pid_of_worker() -> int:
    return os.getpid()


@nebula.remote(concurrency_groups={"io": 1, "compute": 1})
class Grouped:
    """A plain (threaded) actor whose groups each run one call at a time."""

    @nebula.method(concurrency_group="io")
    def fetch(self, signal: Any) -> str:
        nebula.get(signal.wait.remote())
        return "fetched"

    @nebula.method(concurrency_group="compute")
    def compute(self) -> str:
        return threading.current_thread().name

    def default(self) -> str:
        return threading.current_thread().name


@nebula.remote(concurrency_groups={"io": 2})
class AsyncGrouped:
    async def fetch(self, signal: Any) -> str:
        await signal.wait.remote()
        return "fetched"

    async def quick(self) -> str:
        return "quick"


@nebula.remote(max_pending_calls=2)
class Slow:
    def wait_for(self, signal: Any) -> int:
        nebula.get(signal.wait.remote())
        return 1


# --------------------------------------------------------------- unknown and refused


def test_unknown_init_argument_names_the_closest_one() -> None:
    with pytest.raises(TypeError) as excinfo:
        nebula.init(num_cpu=4, ignore_reinit_error=True)
    assert "'num_cpu'" in str(excinfo.value)
    assert "did you mean 'num_cpus'?" in str(excinfo.value)


@pytest.mark.parametrize(
    ("make", "wrong", "right"),
    [
        (lambda: nebula.remote(num_cpu=1)(lambda: None), "num_cpu", "num_cpus"),
        (lambda: pid_of_worker.options(max_retry=2), "max_retry", "max_retries"),
        (lambda: Grouped.options(max_concurency=2), "max_concurency", "max_concurrency"),
        (lambda: nebula.method(num_return=2), "num_return", "num_returns"),
    ],
    ids=["remote", "options", "actor-options", "method"],
)
def test_misspelled_options_are_type_errors_with_a_suggestion(
    make: Any, wrong: str, right: str
) -> None:
    with pytest.raises(TypeError) as excinfo:
        make()
    assert f"'{wrong}'" in str(excinfo.value)
    assert f"did you mean '{right}'?" in str(excinfo.value)


def test_actor_method_options_are_checked() -> None:
    actor = Grouped.remote()
    with pytest.raises(TypeError, match="did you mean 'concurrency_group'"):
        actor.compute.options(concurrency_grop="io")


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"accelerator_type": "A100"}, "accelerator_type is not supported"),
        ({"label_selector": {"zone": "a"}}, "label_selector is not supported"),
    ],
)
def test_options_nebula_cannot_honour_are_refused(options: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        pid_of_worker.options(**options)
    with pytest.raises(ValueError, match=text):
        Grouped.options(**options)


# ------------------------------------------------------------------------ max_calls


def test_max_calls_replaces_the_worker_after_n_tasks() -> None:
    twice = pid_of_worker.options(max_calls=2)
    pids = [nebula.get(twice.remote()) for _ in range(6)]
    assert len(set(pids)) >= 3
    assert all(pids.count(pid) <= 2 for pid in pids)
    assert all(not _alive(pid) for pid in set(pids[:4]))


def test_max_calls_defaults_to_one_for_gpu_tasks_only() -> None:
    assert TaskOptions().calls_per_worker() == 0
    assert TaskOptions(num_gpus=1).calls_per_worker() == 1
    assert TaskOptions(num_gpus=1, max_calls=0).calls_per_worker() == 0


def test_workers_are_reused_without_max_calls() -> None:
    pids = [nebula.get(pid_of_worker.remote()) for _ in range(4)]
    assert len(set(pids)) <= 2


def _alive(pid: int) -> bool:
    import psutil

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    try:
        wait_for_condition(gone, timeout=10)
    except RuntimeError:
        return True
    return False


# ------------------------------------------------------------------ concurrency groups


def test_a_busy_group_does_not_block_another_group_or_the_default() -> None:
    signal = SignalActor.remote()
    actor = Grouped.remote()
    first = actor.fetch.remote(signal)
    wait_for_condition(lambda: nebula.get(signal.cur_num_waiters.remote()) == 1)
    second = actor.fetch.remote(signal)  # same group of one thread: must wait for the first
    assert nebula.get(actor.compute.remote(), timeout=30).startswith("nebula-actor-compute")
    assert nebula.get(actor.default.remote(), timeout=30) == "MainThread"
    in_io = actor.compute.options(concurrency_group="io").remote()
    ready, _ = nebula.wait([second, in_io], num_returns=2, timeout=0.2)
    assert ready == []
    nebula.get(signal.send.remote())
    assert nebula.get([first, second], timeout=30) == ["fetched", "fetched"]
    assert nebula.get(in_io, timeout=30).startswith("nebula-actor-io")


def test_async_actor_groups_limit_concurrency_per_group() -> None:
    signal = SignalActor.remote()
    actor = AsyncGrouped.remote()
    calls = [actor.fetch.options(concurrency_group="io").remote(signal) for _ in range(3)]
    wait_for_condition(lambda: nebula.get(signal.cur_num_waiters.remote()) == 2)
    assert nebula.get(actor.quick.remote(), timeout=30) == "quick"
    assert nebula.get(signal.cur_num_waiters.remote()) == 2  # the third waits for a slot
    nebula.get(signal.send.remote())
    assert nebula.get(calls, timeout=30) == ["fetched"] * 3


def test_a_method_in_an_undeclared_group_is_refused_at_definition() -> None:
    class Bad:
        @nebula.method(concurrency_group="gpu")
        def run(self) -> None: ...

    with pytest.raises(ValueError, match=r"concurrency group 'gpu'.*does not declare"):
        nebula.remote(concurrency_groups={"io": 1})(Bad)


def test_a_call_in_an_undeclared_group_fails_with_the_groups_named() -> None:
    actor = Grouped.remote()
    with pytest.raises(ValueError, match=r"concurrency group 'nope'.*io, compute"):
        nebula.get(actor.compute.options(concurrency_group="nope").remote(), timeout=30)


# ------------------------------------------------------------------ max_pending_calls


def test_max_pending_calls_pushes_back_on_the_caller() -> None:
    signal = SignalActor.remote()
    actor = Slow.remote()
    pending = [actor.wait_for.remote(signal) for _ in range(2)]
    with pytest.raises(PendingCallsLimitExceeded, match="max_pending_calls=2"):
        actor.wait_for.remote(signal)
    nebula.get(signal.send.remote())
    assert nebula.get(pending, timeout=30) == [1, 1]
    assert nebula.get(actor.wait_for.remote(signal), timeout=30) == 1
