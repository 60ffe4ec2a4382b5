"""`nebula microbenchmark`: the lines are Ray's, and a selected line produces a rate.

Rates themselves are not asserted: performance belongs to benchmarks, not to tests.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nebula._microbenchmark import run_microbenchmark, workload_names

RAY_LINES = (
    "single client get calls (Plasma Store)",
    "single client put calls (Plasma Store)",
    "multi client put calls (Plasma Store)",
    "single client put gigabytes",
    "single client tasks and get batch",
    "multi client put gigabytes",
    "single client get object containing 10k refs",
    "single client wait 1k refs",
    "single client tasks sync",
    "single client tasks async",
    "multi client tasks async",
    "1:1 actor calls sync",
    "1:1 actor calls async",
    "1:1 actor calls concurrent",
    "1:n actor calls async",
    "n:n actor calls async",
    "n:n actor calls with arg async",
    "1:1 async-actor calls sync",
    "1:1 async-actor calls async",
    "1:1 async-actor calls with args async",
    "1:n async-actor calls async",
    "n:n async-actor calls async",
)


def test_workload_names_cover_ray_microbenchmark() -> None:
    names = workload_names()
    assert len(names) == len(set(names))
    assert [name for name in RAY_LINES if name not in names] == []


@pytest.mark.timeout(30)
def test_selected_workload_reports_a_rate(tmp_path: Path) -> None:
    name = "single client tasks sync"
    out = io.StringIO()
    json_path = tmp_path / "results.json"

    results = run_microbenchmark(
        name_filter=name, duration_s=0.2, num_cpus=2, json_path=str(json_path), out=out
    )

    assert [result.name for result in results] == [name]
    assert results[0].rate_per_s > 0
    assert out.getvalue().startswith(f"{name} per second ")
    assert json.loads(json_path.read_text()) == [
        {"name": name, "rate": results[0].rate_per_s, "stddev": results[0].stddev}
    ]
