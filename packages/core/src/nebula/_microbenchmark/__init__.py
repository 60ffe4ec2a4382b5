"""`nebula microbenchmark`: Ray's core microbenchmarks, run against Nebula.

The lines carry the names, definitions and multipliers of `ray microbenchmark`, so a Nebula
number is read next to the Ray number of the same name. Only the runner lives here; the timing
procedure is in `timing`, the workloads in `workloads`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import nebula
from nebula._microbenchmark.timing import BenchmarkResult, measure
from nebula._microbenchmark.workloads import (
    PLACEMENT_GROUP_RESOURCE,
    PLACEMENT_GROUP_RESOURCE_AMOUNT,
    BenchmarkEnv,
    Workload,
    WorkloadUnavailable,
    all_workloads,
    placement_groups_supported,
)

__all__ = ["BenchmarkResult", "run_microbenchmark", "workload_names"]


def workload_names() -> list[str]:
    """The lines a full run prints, in order; starts nothing."""
    return [workload.name for workload in all_workloads()]


def run_microbenchmark(
    *,
    name_filter: str | None = None,
    duration_s: float = 2.0,
    num_cpus: int | None = None,
    json_path: str | None = None,
    out: TextIO = sys.stdout,
) -> list[BenchmarkResult]:
    """Run every workload whose name contains `name_filter`, printing each line when measured.

    A line is printed as soon as it is known because a full run takes minutes and a reader
    wants to see progress (and which workload hangs, if one does). The cluster is started here
    only if the caller has not started one, and then stopped here too; `num_cpus` applies only
    to a cluster started here.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}.")
    selected = [w for w in all_workloads() if name_filter is None or name_filter in w.name]

    results: list[BenchmarkResult] = []
    if selected:
        owns_cluster = not nebula.is_initialized()
        if owns_cluster:
            nebula.init(**_init_options(num_cpus))
        try:
            env = BenchmarkEnv.from_cluster_resources(nebula.cluster_resources())
            for workload in selected:
                result = _run_one(workload, env, duration_s)
                if result is not None:
                    print(result.format_line(), file=out, flush=True)
                    results.append(result)
        finally:
            if owns_cluster:
                nebula.shutdown()

    if json_path is not None:
        payload = [result.to_json() for result in results]
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return results


def _init_options(num_cpus: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if num_cpus is not None:
        options["num_cpus"] = num_cpus
    if placement_groups_supported():
        options["resources"] = {PLACEMENT_GROUP_RESOURCE: PLACEMENT_GROUP_RESOURCE_AMOUNT}
    return options


def _run_one(workload: Workload, env: BenchmarkEnv, duration_s: float) -> BenchmarkResult | None:
    try:
        with workload.prepare(env) as measurable:
            return measure(
                workload.name,
                measurable.call,
                multiplier=measurable.multiplier,
                duration_s=duration_s,
            )
    except WorkloadUnavailable:
        return None
