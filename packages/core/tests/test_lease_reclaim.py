"""Idle leases of one kind of task are given back as soon as another kind waits for them.

A process keeps a lease idle for a while (``LEASE_IDLE_TIMEOUT_S``) so a burst of tasks
does not lease a worker per task. A pipeline's next step often has another scheduling
class (another resource shape, a node affinity): its tasks must not wait for the previous
step's idle leases to time out. The test stretches that timeout to a minute, so only the
reclaim can let the second kind of task run.
"""

from __future__ import annotations

import os
import subprocess
import sys

PROGRAM = """
import time
import nebula

nebula.init(num_cpus=2)

@nebula.remote
def one_cpu(i):
    return i

@nebula.remote(num_cpus=2)
def two_cpus():
    return "ran"

assert nebula.get([one_cpu.remote(i) for i in range(4)]) == [0, 1, 2, 3]
# Both CPUs are now held by this driver's idle one-CPU leases.
started = time.monotonic()
assert nebula.get(two_cpus.remote(), timeout=20) == "ran"
print(f"waited {time.monotonic() - started:.2f}")
nebula.shutdown()
"""


def test_a_waiting_class_takes_over_idle_leases_of_another() -> None:
    env = {**os.environ, "NEBULA_LEASE_IDLE_TIMEOUT_S": "60"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    waited = float(done.stdout.split("waited ")[-1])
    assert waited < 10  # it ran on the reclaimed CPUs, not after the idle leases' minute
