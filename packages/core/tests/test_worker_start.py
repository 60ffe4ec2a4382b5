"""How a node starts its workers: forked from a pre-imported zygote, or as new interpreters."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Iterator

import psutil
import pytest

import nebula
from nebula.exceptions import WorkerCrashedError


@pytest.fixture
def fresh() -> Iterator[None]:
    """Each test here starts its own cluster, with the environment it set."""
    assert not nebula.is_initialized()
    yield
    nebula.shutdown()


@nebula.remote
class Probe:
    def pid(self) -> int:
        return os.getpid()

    def random_bits(self) -> int:
        return random.getrandbits(64)


@nebula.remote(max_retries=0)
def die_by(sig: int) -> None:
    os.kill(os.getpid(), sig)


def _cmdline(pid: int) -> str:
    return " ".join(psutil.Process(pid).cmdline())


@pytest.mark.usefixtures("fresh")
def test_workers_are_forked_from_the_zygote_and_named_as_workers() -> None:
    nebula.init(num_cpus=2)
    probes = [Probe.remote() for _ in range(2)]
    pids = nebula.get([probe.pid.remote() for probe in probes], timeout=30)

    assert len(set(pids)) == 2 and os.getpid() not in pids
    for pid in pids:
        # `nebula stop` and `ps` find workers by their command line.
        assert "nebula._worker --node-manager" in _cmdline(pid)
        assert "nebula._worker --zygote" in _cmdline(psutil.Process(pid).ppid())


@pytest.mark.usefixtures("fresh")
def test_forked_workers_do_not_share_random_state() -> None:
    nebula.init(num_cpus=2)
    probes = [Probe.remote() for _ in range(2)]
    first, second = nebula.get([probe.random_bits.remote() for probe in probes], timeout=30)

    assert first != second


@pytest.mark.usefixtures("fresh")
def test_a_forked_worker_killed_by_a_signal_is_reported_with_it() -> None:
    nebula.init(num_cpus=1)

    with pytest.raises(WorkerCrashedError, match="SIGKILL"):
        nebula.get(die_by.remote(signal.SIGKILL), timeout=30)
    # The node starts a replacement.
    assert nebula.get(Probe.remote().pid.remote(), timeout=30) > 0


@pytest.mark.usefixtures("fresh")
def test_workers_start_as_new_interpreters_when_forking_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEBULA_FORK_WORKERS", "0")
    nebula.init(num_cpus=1)

    pid = nebula.get(Probe.remote().pid.remote(), timeout=30)

    assert "nebula._node_manager" in _cmdline(psutil.Process(pid).ppid())
    with pytest.raises(WorkerCrashedError, match="SIGKILL"):
        nebula.get(die_by.remote(signal.SIGKILL), timeout=30)
