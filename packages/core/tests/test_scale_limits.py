"""Limits a user can reach with one call or one driver, at small sizes.

The message limit is lowered to 1 MiB for this module, so that what takes hundreds of
megabytes at full size (10,000 arguments, num_returns=10,000) crosses it in seconds: each
such call either works, through shared memory or messages in parts, or fails at once with
an error that says what to do, never hangs. ``benchmarks/scale/`` runs the full sizes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import numpy as np
import pytest

import nebula
from nebula import _config
from nebula.exceptions import PendingCallsLimitExceeded

LIMITS = {
    "MAX_MESSAGE_BYTES": 1 << 20,
    "ARGS_INLINE_MAX_BYTES": 256 << 10,
    "RETURNS_INLINE_MAX_BYTES": 256 << 10,
    "MAX_NUM_RETURNS": 1000,
}
ITEM = list(range(2000))  # about 10 KB pickled: inline on its own


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    saved = {name: getattr(_config, name) for name in LIMITS}
    saved_env = {name: os.environ.get(f"NEBULA_{name}") for name in LIMITS}
    for name, value in LIMITS.items():
        setattr(_config, name, value)
        os.environ[f"NEBULA_{name}"] = str(value)  # for the processes the cluster starts
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()
    for name, value in saved.items():
        setattr(_config, name, value)
    for name, env in saved_env.items():
        if env is None:
            os.environ.pop(f"NEBULA_{name}", None)
        else:
            os.environ[f"NEBULA_{name}"] = env


@nebula.remote
def total(*args: list[int]) -> int:
    return sum(sum(arg) for arg in args)


@pytest.mark.timeout(60)
def test_scale_arguments_larger_than_a_message_go_through_the_store() -> None:
    args = [ITEM] * 300  # about 3 MB by value, three times the message limit
    assert nebula.get(total.remote(*args), timeout=30) == 300 * sum(ITEM)


@pytest.mark.timeout(60)
def test_scale_return_values_larger_than_a_message_arrive_in_parts() -> None:
    @nebula.remote(num_returns=300)
    def many() -> tuple[list[int], ...]:
        return tuple([i, *ITEM] for i in range(300))

    refs = many.remote()
    values = nebula.get(refs, timeout=30)
    assert [v[0] for v in values] == list(range(300))
    assert all(v[1:] == ITEM for v in values)


@pytest.mark.timeout(60)
def test_scale_too_many_ref_arguments_fail_at_once_with_what_to_do() -> None:
    refs = [nebula.put(ITEM) for _ in range(300)]  # each inline in this process
    start = time.monotonic()
    with pytest.raises(ValueError, match="ObjectRef arguments") as info:
        nebula.get(total.remote(*refs), timeout=30)
    assert time.monotonic() - start < 20
    assert "one ref to a list of them" in str(info.value)
    # One ref to the list works.
    assert nebula.get(total.remote(*nebula.get(refs)), timeout=30) == 300 * sum(ITEM)


def test_scale_num_returns_over_the_limit_is_refused_when_declared() -> None:
    with pytest.raises(ValueError, match="NEBULA_MAX_NUM_RETURNS"):

        @nebula.remote(num_returns=1001)
        def f() -> None:
            return None

    with pytest.raises(ValueError, match="more than the limit of 1,000"):
        total.options(num_returns=5000)


@pytest.mark.timeout(60)
def test_scale_a_bounded_driver_queue_blocks_or_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    @nebula.remote
    def slow(i: int) -> int:
        time.sleep(0.05)
        return i

    monkeypatch.setattr(_config, "MAX_QUEUED_TASKS", 4)
    monkeypatch.setattr(_config, "QUEUED_TASKS_FULL", "block")
    refs = [slow.remote(i) for i in range(12)]  # back-pressure: waits for room, no error
    assert nebula.get(refs, timeout=30) == list(range(12))

    monkeypatch.setattr(_config, "QUEUED_TASKS_FULL", "error")
    held = [slow.remote(i) for i in range(4)]
    with pytest.raises(PendingCallsLimitExceeded, match="NEBULA_MAX_QUEUED_TASKS=4"):
        slow.remote(99)
    assert nebula.get(held, timeout=30) == list(range(4))
    assert nebula.get(slow.remote(5), timeout=30) == 5


@pytest.mark.timeout(60)
def test_scale_an_array_larger_than_a_message_round_trips() -> None:
    array = np.arange(1 << 18)  # 2 MiB: shared memory, not a message
    assert int(nebula.get(nebula.put(array), timeout=30)[-1]) == (1 << 18) - 1
