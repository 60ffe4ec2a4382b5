"""A short chaos run: work keeps its exact results while workers, actors and nodes are killed.

The engine is ``benchmarks/chaos.py`` at the repository root (also a script for longer runs);
it is loaded by path because ``benchmarks`` is not a package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import cloudpickle
import pytest

import nebula

CHAOS_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "chaos.py"
DURATION_S = 25.0
SEED = 7


def _load_chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nebula_benchmarks_chaos", CHAOS_PATH)
    assert spec is not None and spec.loader is not None, f"cannot load {CHAOS_PATH}"
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module's annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    # Workers cannot import a module loaded by path: ship its functions and classes by value.
    cloudpickle.register_pickle_by_value(module)
    return module


# Bounded: the engine gives up GRACE_S (60 s) after DURATION_S; cluster start-up comes on top.
@pytest.mark.timeout(DURATION_S + 100)
def test_no_result_is_lost_or_wrong_while_workers_actors_and_nodes_die() -> None:
    if nebula.is_initialized():
        nebula.shutdown()
    chaos = _load_chaos()
    lines: list[str] = []

    report = chaos.run_chaos(DURATION_S, SEED, kill_nodes=True, report=lines.append)

    summary = "\n".join([report.table(), *report.examples, *report.fault_log[-20:]])
    assert report.results_wrong == 0, summary
    assert report.results_lost == 0, summary
    assert not report.timed_out, summary
    for kind in chaos.FAULT_KINDS:
        assert report.faults[kind] >= 3, f"too few faults of kind {kind!r}:\n{summary}"
    assert report.tasks_submitted >= 1000, summary
    assert report.actor_calls >= 1000, summary
