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
