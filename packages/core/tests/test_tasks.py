"""Remote functions: parallelism, options, arguments, nesting, get/wait/put/cancel, resources."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nebula
from nebula.exceptions import GetTimeoutError, NebulaError, TaskCancelledError
from nebula.testing import SignalActor, wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster_with_4_cpus() -> Iterator[None]:
    nebula.init(num_cpus=4)
    try:
        yield
    finally:
        nebula.shutdown()


@nebula.remote
def identity(x: object) -> object:
    return x


@nebula.remote
def sleep_then_return(seconds: float, value: object = None) -> object:
    time.sleep(seconds)
    return value


@nebula.remote
def add(x: int, y: int) -> int:
    return x + y


@nebula.remote
def blocked_until(gate: Any, value: object = None) -> object:
    """Runs until the test sends ``gate`` (a SignalActor)."""
    nebula.get(gate.wait.remote())
    return value


@nebula.remote
def announce_then_sleep(started: Any, seconds: float) -> None:
    nebula.get(started.send.remote())
    time.sleep(seconds)


# ------------------------------------------------------------------ parallelism


def test_four_tasks_run_in_parallel_on_four_cpus() -> None:
    # Start the workers first: this measures parallelism, not process start-up.
    nebula.get([sleep_then_return.remote(0.2) for _ in range(4)])
    start = time.monotonic()
    results = nebula.get([sleep_then_return.remote(0.5, i) for i in range(4)])
    elapsed = time.monotonic() - start
    assert results == [0, 1, 2, 3]
    assert elapsed < 1.5, f"4 x 0.5 s on 4 CPUs took {elapsed:.2f} s"


def test_many_small_tasks_return_in_submission_order() -> None:
    refs = [add.remote(i, i) for i in range(200)]
    assert nebula.get(refs) == [2 * i for i in range(200)]


# ---------------------------------------------------------------------- options


def test_options_override_without_changing_the_function() -> None:
    @nebula.remote(num_returns=2)
    def pair() -> tuple[int, int]:
        return 1, 2

    a, b = pair.remote()
    assert nebula.get([a, b]) == [1, 2]
    single = pair.options(num_returns=1).remote()
    assert isinstance(single, nebula.ObjectRef)
    assert nebula.get(single) == (1, 2)
    # The decorator's options still apply after .options() was used.
    assert len(pair.remote()) == 2


def test_num_returns_splits_the_result_into_refs() -> None:
    @nebula.remote(num_returns=3)
    def three() -> tuple[str, list[int], dict[str, int]]:
        return "a", [1], {"c": 3}

    refs = three.remote()
    assert isinstance(refs, list) and len(refs) == 3
    assert all(isinstance(r, nebula.ObjectRef) for r in refs)
    assert nebula.get(refs) == ["a", [1], {"c": 3}]


def test_num_returns_zero_runs_for_side_effect_only() -> None:
    @nebula.remote(num_returns=0)
    def nothing() -> None:
        return None

    assert nothing.remote() == []


# -------------------------------------------------------------------- arguments


def test_object_ref_args_are_resolved_before_the_task_runs() -> None:
    @nebula.remote
    def describe(x: object) -> tuple[str, object]:
        return type(x).__name__, x

    slow = sleep_then_return.remote(0.3, {"k": 1})
    assert nebula.get(describe.remote(slow)) == ("dict", {"k": 1})
    assert nebula.get(describe.remote(x=nebula.put([1, 2]))) == ("list", [1, 2])


def test_refs_nested_in_containers_stay_refs_inside_the_task() -> None:
    @nebula.remote
    def inspect(items: list[nebula.ObjectRef], mapping: dict[str, nebula.ObjectRef]) -> object:
        assert all(isinstance(r, nebula.ObjectRef) for r in items)
        assert isinstance(mapping["r"], nebula.ObjectRef)
        return sum(nebula.get(items)) + nebula.get(mapping["r"])

    items = [nebula.put(1), add.remote(1, 1), nebula.put(3)]
    assert nebula.get(inspect.remote(items, {"r": nebula.put(10)})) == 16


@nebula.remote
def append_line(path: str, value: object) -> object:
    with open(path, "a") as f:
        f.write("ran\n")
    return value


_DOUBLE_RUN = (
    "runtime bug: a task whose ObjectRef args are already available at submit time is "
    "queued twice (Submitter.submit calls _on_resolved from the when_ready callback and "
    "again after the loop), so it runs twice and one worker lease is never returned"
)


def test_task_with_a_ready_ref_arg_runs_exactly_once(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.txt")
    assert nebula.get(append_line.remote(path, nebula.put(7))) == 7
    time.sleep(0.5)  # a duplicate run would land by now
    with open(path) as f:
        assert f.read().splitlines() == ["ran"]


def test_cpus_are_given_back_after_tasks_with_ref_args() -> None:
    nebula.get([identity.remote(nebula.put(i)) for i in range(2)])
    wait_for_condition(lambda: nebula.available_resources().get("CPU") == 4.0, timeout=3)


def test_chained_tasks_form_a_dag() -> None:
    a = add.remote(1, 2)
    b = add.remote(a, 10)
    c = add.remote(a, b)
    assert nebula.get(c) == 16


# ---------------------------------------------------------------- nested tasks


@nebula.remote
def fan_out(n: int) -> list[int]:
    return nebula.get([add.remote(i, 1) for i in range(n)])


@nebula.remote
def depth(n: int) -> int:
    if n == 0:
        return 0
    return 1 + nebula.get(depth.remote(n - 1))


def test_tasks_submit_tasks_and_get_their_results() -> None:
    assert nebula.get(fan_out.remote(5), timeout=30) == [1, 2, 3, 4, 5]
    assert nebula.get([fan_out.remote(3) for _ in range(6)], timeout=30) == [[1, 2, 3]] * 6


def test_recursion_deeper_than_the_cpu_count_does_not_deadlock() -> None:
    # Each level blocks in get() while its child runs: the blocked worker must give its CPU back.
    assert nebula.get(depth.remote(10), timeout=60) == 10


# --------------------------------------------------------------------------- get


def test_get_single_ref_and_list_of_refs() -> None:
    ref = identity.remote("x")
    assert nebula.get(ref) == "x"
    assert nebula.get([ref, ref]) == ["x", "x"]
    assert nebula.get([]) == []


def test_get_timeout_raises_get_timeout_error_which_is_a_timeout_error() -> None:
    ref = sleep_then_return.remote(3)
    start = time.monotonic()
    with pytest.raises(GetTimeoutError) as info:
        nebula.get(ref, timeout=0.3)
    assert time.monotonic() - start < 2.0
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, NebulaError)
    with pytest.raises(TimeoutError):
        nebula.get([ref], timeout=0)
    nebula.cancel(ref)


# -------------------------------------------------------------------------- wait


def test_wait_returns_ready_and_not_ready_in_input_order() -> None:
    gate = SignalActor.remote()
    fast = [identity.remote(i) for i in range(3)]
    slow = blocked_until.remote(gate)
    refs = [slow, *fast]
    ready, not_ready = nebula.wait(refs, num_returns=3, timeout=30)
    assert ready == fast
    assert not_ready == [slow]
    nebula.get(gate.send.remote())
    assert nebula.wait([slow], timeout=30) == ([slow], [])


def test_wait_timeout_returns_what_is_ready_so_far() -> None:
    gate = SignalActor.remote()
    slow = [blocked_until.remote(gate) for _ in range(2)]
    fast = identity.remote(1)
    nebula.get(fast)
    start = time.monotonic()
    ready, not_ready = nebula.wait([*slow, fast], num_returns=3, timeout=0.5)
    assert 0.4 < time.monotonic() - start < 5.0
    assert ready == [fast]
    assert not_ready == slow
    nebula.get(gate.send.remote())
    nebula.get(slow, timeout=30)


def test_wait_defaults_to_one_and_returns_no_more_than_num_returns() -> None:
    refs = [identity.remote(i) for i in range(4)]
    nebula.get(refs)
    ready, not_ready = nebula.wait(refs)
    assert len(ready) == 1 and len(not_ready) == 3
    ready, not_ready = nebula.wait(refs, num_returns=4, timeout=5)
    assert ready == refs and not_ready == []


def test_wait_with_zero_timeout_does_not_block() -> None:
    ref = sleep_then_return.remote(3)
    start = time.monotonic()
    assert nebula.wait([ref], timeout=0) == ([], [ref])
    assert time.monotonic() - start < 0.5
    nebula.cancel(ref)


def test_wait_on_an_empty_list_returns_two_empty_lists() -> None:
    assert nebula.wait([]) == ([], [])
    assert nebula.wait([], num_returns=1, timeout=0) == ([], [])
    with pytest.raises(ValueError, match="num_returns"):
        nebula.wait([], num_returns=0)


def test_wait_loop_drains_results_as_they_finish() -> None:
    refs = [sleep_then_return.remote(0.1 * (3 - i), i) for i in range(3)]
    seen = []
    while refs:
        ready, refs = nebula.wait(refs)
        seen.append(nebula.get(ready[0]))
    assert sorted(seen) == [0, 1, 2]


# --------------------------------------------------------------------------- put


def test_put_returns_a_ref_usable_by_get_and_tasks() -> None:
    value = {"a": [1, 2, 3], "b": "text"}
    ref = nebula.put(value)
    assert isinstance(ref, nebula.ObjectRef)
    assert nebula.get(ref) == value
    assert nebula.get(identity.remote(ref)) == value


# ------------------------------------------------------------------------ cancel


def test_cancel_a_queued_task() -> None:
    # Fill the 4 CPUs so the next task waits in the queue.
    blockers = [sleep_then_return.remote(1.5) for _ in range(4)]
    queued = identity.remote("never")
    nebula.cancel(queued)
    with pytest.raises(TaskCancelledError):
        nebula.get(queued, timeout=10)
    nebula.get(blockers, timeout=10)


def test_cancel_a_running_task() -> None:
    started = SignalActor.remote()
    ref = announce_then_sleep.remote(started, 30)
    nebula.get(started.wait.remote(), timeout=30)  # running, not queued
    start = time.monotonic()
    nebula.cancel(ref)
    with pytest.raises(TaskCancelledError):
        nebula.get(ref, timeout=10)
    assert time.monotonic() - start < 5
    # The cluster keeps working afterwards.
    assert nebula.get(add.remote(1, 1), timeout=10) == 2


def test_cancel_a_finished_task_keeps_its_value() -> None:
    ref = identity.remote(5)
    assert nebula.get(ref) == 5
    nebula.cancel(ref)
    assert nebula.get(ref) == 5


# --------------------------------------------------------------------- resources


@pytest.fixture
def two_cpu_cluster() -> Iterator[None]:
    """A fresh 2-CPU cluster for this test; the module's 4-CPU cluster comes back after."""
    nebula.shutdown()
    nebula.init(num_cpus=2)
    try:
        yield
    finally:
        nebula.shutdown()
        nebula.init(num_cpus=4)


@pytest.mark.usefixtures("two_cpu_cluster")
def test_tasks_needing_all_cpus_never_overlap() -> None:
    @nebula.remote(num_cpus=2)
    def exclusive() -> tuple[float, float]:
        start = time.time()
        time.sleep(0.2)
        return start, time.time()

    spans = sorted(nebula.get([exclusive.remote() for _ in range(4)], timeout=30))
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start >= end, f"tasks overlapped: {spans}"


@pytest.mark.usefixtures("two_cpu_cluster")
def test_fractional_cpus_let_more_tasks_run_at_once() -> None:
    @nebula.remote(num_cpus=0.5)
    def quarter_of_the_node() -> tuple[float, float]:
        start = time.time()
        time.sleep(0.5)
        return start, time.time()

    # The first round starts the two extra workers; the second is measured.
    nebula.get([quarter_of_the_node.remote() for _ in range(4)], timeout=30)
    spans = nebula.get([quarter_of_the_node.remote() for _ in range(4)], timeout=30)
    # All four fit at once: every task started before any other ended.
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end, f"0.5-CPU tasks did not share 2 CPUs: {spans}"


def test_cpus_are_given_back_after_tasks_finish() -> None:
    nebula.get([sleep_then_return.remote(0.1) for _ in range(8)])
    wait_for_condition(lambda: nebula.available_resources().get("CPU") == 4.0, timeout=5)


@pytest.mark.parametrize(
    ("options", "mentions"),
    [({"resources": {"gizmo": 1}}, "gizmo"), ({"num_gpus": 4}, "GPU")],
    ids=["custom-resource", "gpus"],
)
def test_infeasible_task_waits_and_is_warned_about(
    options: dict[str, object],
    mentions: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    ref = identity.options(**options).remote(1)
    ready, not_ready = nebula.wait([ref], timeout=1.0)
    assert ready == [] and not_ready == [ref]

    seen: list[str] = []

    def warned() -> bool:
        seen.append(capfd.readouterr().err)
        return any("Warning" in line and mentions in line for line in "".join(seen).splitlines())

    wait_for_condition(warned, timeout=5)
    nebula.cancel(ref)
    with pytest.raises(TaskCancelledError):
        nebula.get(ref, timeout=5)
