"""A borrowed object whose owner died fails a get instead of hanging it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

import nebula
from nebula import _config
from nebula.exceptions import ObjectLostError


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@nebula.remote
class Maker:
    def make(self, seconds: float) -> list[nebula.ObjectRef]:
        @nebula.remote
        def slow() -> str:
            time.sleep(seconds)
            return "done"

        # The actor owns this result: the driver only borrows it.
        return [slow.remote()]

    def pid(self) -> int:
        return os.getpid()


def test_get_of_an_object_whose_owner_died_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config, "OWNER_TIMEOUT_S", 2.0)
    maker = Maker.remote()
    [ref] = nebula.get(maker.make.remote(30))
    os.kill(nebula.get(maker.pid.remote()), signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(ObjectLostError, match="owns it"):
        nebula.get(ref, timeout=30)
    assert time.monotonic() - start < 10


def test_a_live_busy_owner_is_not_declared_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config, "OWNER_TIMEOUT_S", 1.0)
    maker = Maker.remote()
    [ref] = nebula.get(maker.make.remote(3))
    assert nebula.get(ref, timeout=30) == "done"
