"""A driver busy for longer than the control store's patience (a loop submitting a million
tasks holds the worker's lock most of the time) keeps its job alive: its heartbeats do not
wait for that lock."""

from __future__ import annotations

import time

import pytest

import nebula
from nebula import _config
from nebula._api import runtime


@nebula.remote(num_cpus=1)
def one() -> int:
    return 1


@pytest.mark.timeout(60)
def test_scale_a_driver_holding_its_lock_long_keeps_its_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEBULA_DRIVER_TIMEOUT_S", "1.5")
    monkeypatch.setattr(_config, "DRIVER_HEARTBEAT_S", 0.2)
    nebula.init(num_cpus=1)
    try:
        assert nebula.get(one.remote(), timeout=30) == 1
        cw = runtime.require_core_worker()
        with cw.lock:  # as a long submission loop would, between its calls
            time.sleep(4.0)
        assert nebula.get([one.remote() for _ in range(20)], timeout=30) == [1] * 20
    finally:
        nebula.shutdown()
