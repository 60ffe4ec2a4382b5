"""A plugin installed as a real entry point reaches the cluster's processes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import nebula
from nebula._plugins.manager import reset_plugin_manager

PLUGIN = textwrap.dedent(
    """
    from nebula.hookspecs import hookimpl

    @hookimpl
    def nebula_register_resources(registry):
        registry.add("tpu_pod", lambda: 4.0, description="test accelerator")
    """
)


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "nebula_tpu_plugin.py").write_text(PLUGIN)
    dist_info = tmp_path / "nebula_tpu_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: nebula-tpu-plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text("[nebula.plugins]\ntpu = nebula_tpu_plugin\n")
    # The node manager is a separate process: it finds the plugin through its path.
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugin_manager()
    yield tmp_path
    reset_plugin_manager()


def test_plugin_resource_is_schedulable(installed_plugin: Path) -> None:
    nebula.init(num_cpus=1)
    try:
        assert nebula.cluster_resources()["tpu_pod"] == 4.0

        @nebula.remote(resources={"tpu_pod": 2})
        def uses_tpu() -> str:
            return "ran on a tpu_pod node"

        assert nebula.get(uses_tpu.remote(), timeout=30) == "ran on a tpu_pod node"
    finally:
        nebula.shutdown()


# A plugin naming a module for workers; the module takes a while to import, as Arrow does,
# and records which process imported it.
PRELOAD_PLUGIN = textwrap.dedent(
    """
    from nebula.hookspecs import hookimpl

    @hookimpl
    def nebula_worker_imports():
        return ["nebula_slow_module", "nebula_no_such_module"]
    """
)
SLOW_MODULE = "import os, time\ntime.sleep(1.0)\nIMPORTED_BY = os.getpid()\n"


@pytest.fixture
def preload_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "nebula_preload_plugin.py").write_text(PRELOAD_PLUGIN)
    (tmp_path / "nebula_slow_module.py").write_text(SLOW_MODULE)
    dist_info = tmp_path / "nebula_preload_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: nebula-preload-plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[nebula.plugins]\npreload = nebula_preload_plugin\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugin_manager()
    yield tmp_path
    reset_plugin_manager()


@nebula.remote
def preloaded() -> tuple[int, bool]:
    import os
    import sys

    module = sys.modules.get("nebula_slow_module")
    return os.getpid(), module is not None and os.getpid() != module.IMPORTED_BY


@nebula.remote(num_cpus=1)
class Holder:
    def pid(self) -> int:
        import os

        return os.getpid()


def test_workers_start_with_the_modules_plugins_name(preload_plugin: Path) -> None:
    import time

    from nebula.util.state import list_workers

    nebula.init(num_cpus=2)
    try:
        # Leased before the module is loaded: this worker is never replaced under its actor.
        holder = Holder.remote()
        actor_pid = nebula.get(holder.pid.remote(), timeout=30)
        started = {w["pid"] for w in list_workers() if w["worker_type"] == "WORKER"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the idle worker is replaced once it is loaded
            alive = {w["pid"] for w in list_workers() if w["worker_type"] == "WORKER"}
            if alive - started:
                break
            time.sleep(0.1)
        pid, has_module = nebula.get(preloaded.remote(), timeout=30)
        assert has_module, "workers did not get the module the plugin named"
        assert pid != actor_pid
        assert nebula.get(holder.pid.remote(), timeout=30) == actor_pid
        # The module that does not exist was skipped; the replaced worker left no record.
        workers = [w for w in list_workers() if w["worker_type"] == "WORKER"]
        assert all(w["is_alive"] for w in workers), workers
    finally:
        nebula.shutdown()
