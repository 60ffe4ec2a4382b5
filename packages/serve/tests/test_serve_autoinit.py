"""A script that calls serve.run without nebula.init starts its own cluster, as Ray's does."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from nebula import serve

@serve.deployment(ray_actor_options={"num_cpus": 0})
def echo(value):
    return value * 2

handle = serve.run(echo.bind(), name="auto", route_prefix=None)
print("answer", handle.remote(21).result(timeout_s=30))
serve.shutdown()
"""


def test_serve_run_without_init_starts_a_local_cluster() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "answer 42" in done.stdout
