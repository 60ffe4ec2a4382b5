"""Turn a repeated call into a rate, measured the way `ray microbenchmark` measures it.

The procedure (warm-up, then a fixed number of equal trials, the clock read once per batch of
calls) is kept identical to Ray's so that a Nebula line and the Ray line of the same name can
be compared directly. Ray's 10 s pause before each workload, meant to let noisy neighbours on
shared CI machines settle, is left out: it would more than double a local run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

# Ray averages four trials; fewer makes the spread meaningless, more only makes a run longer.
NUM_TRIALS = 4

# A batch of calls between two reads of the clock is a tenth of what the warm-up managed, so
# the clock costs nothing next to sub-microsecond calls and a trial overshoots by little.
_BATCHES_PER_WARMUP = 10


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    """One line of the report; `rate_per_s` already includes the workload's multiplier."""

    name: str
    rate_per_s: float
    stddev: float

    def to_json(self) -> dict[str, str | float]:
        """Key names follow what dashboards built for Ray's microbenchmark output expect."""
        return {"name": self.name, "rate": self.rate_per_s, "stddev": self.stddev}

    def format_line(self) -> str:
        return f"{self.name} per second {self.rate_per_s:.2f} +- {self.stddev:.2f}"


def measure(
    name: str,
    call: Callable[[], object],
    *,
    multiplier: float = 1.0,
    duration_s: float = 2.0,
) -> BenchmarkResult:
    """Rate of `call` (times `multiplier`, the operations one call performs) in calls per second.

    The warm-up lasts half a trial, as in Ray (1 s before 2 s trials): long enough to start the
    workers and actors a workload needs, and to size the batches of calls between clock reads.
    """
    warmup_s = duration_s / 2
    start = time.perf_counter()
    warmup_calls = 0
    while time.perf_counter() - start < warmup_s:
        call()
        warmup_calls += 1

    batch = warmup_calls // _BATCHES_PER_WARMUP + 1
    rates: list[float] = []
    for _ in range(NUM_TRIALS):
        calls = 0
        start = time.perf_counter()
        while time.perf_counter() - start < duration_s:
            for _ in range(batch):
                call()
            calls += batch
        elapsed = time.perf_counter() - start
        rates.append(multiplier * calls / elapsed)

    # Population deviation, as numpy.std computes it in Ray's helper.
    return BenchmarkResult(name, statistics.fmean(rates), statistics.pstdev(rates))
