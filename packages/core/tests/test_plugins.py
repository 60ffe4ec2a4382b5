"""The plugin seam: registries, built-in policies and resources, and entry-point loading."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pluggy
import pytest

from nebula._plugins.manager import BUILTIN_PLUGIN_NAME
from nebula.plugins import (
    CommandRegistry,
    JobInfo,
    PluginLoadError,
    Registry,
    ResourceRegistry,
    command_registry,
    get_plugin_manager,
    get_registry,
    hookimpl,
    reset_plugin_manager,
    resource_registry,
    scheduling_policy_registry,
)

InstallPlugin = Callable[..., ModuleType]


@pytest.fixture(autouse=True)
def fresh_plugin_manager() -> Iterator[None]:
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """Install a module as a real distribution with a ``nebula.plugins`` entry point."""
    installed: list[str] = []

    def install(module_name: str, source: str, entry_point: str | None = None) -> ModuleType:
        (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source))
        dist_info = tmp_path / f"{module_name}-0.1.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {module_name}\nVersion: 0.1\n"
        )
        (dist_info / "entry_points.txt").write_text(
            f"[nebula.plugins]\n{entry_point or module_name} = {module_name}\n"
        )
        monkeypatch.syspath_prepend(tmp_path)
        installed.append(module_name)
        reset_plugin_manager()
        get_plugin_manager()
        return sys.modules[module_name]

    yield install
    for module_name in installed:
        sys.modules.pop(module_name, None)


# --- registries --------------------------------------------------------------------------


def test_duplicate_name_is_rejected_naming_the_first_plugin() -> None:
    class Clash:
        @hookimpl
        def nebula_register_resources(self, registry: ResourceRegistry) -> None:
            registry.add("CPU", lambda: 1.0)

    get_plugin_manager().register(Clash(), name="clash")
    with pytest.raises(ValueError) as excinfo:
        resource_registry()
    message = str(excinfo.value)
    assert f"resource 'CPU' is already registered by plugin '{BUILTIN_PLUGIN_NAME}'" in message
    assert "plugin 'clash' cannot register it again" in message


class WidgetRegistry(Registry[object]):
    kind = "widget"


def test_duplicate_name_outside_a_plugin_is_rejected() -> None:
    registry = WidgetRegistry()
    registry.add("map", object())
    with pytest.raises(ValueError, match="widget 'map' is already registered"):
        registry.add("map", object())


def test_names_must_be_non_empty_strings() -> None:
    registry = ResourceRegistry()
    with pytest.raises(ValueError, match="non-empty"):
        registry.add(" ")
    with pytest.raises(TypeError, match="must be a str"):
        registry.add(3)  # type: ignore[arg-type]


def test_unknown_policy_lookup_lists_known_names() -> None:
    with pytest.raises(KeyError) as excinfo:
        scheduling_policy_registry().get("SPRAED")
    assert str(excinfo.value) == (
        "unknown scheduling policy 'SPRAED'; registered names are: 'DEFAULT', 'SPREAD', "
        "'PLACEMENT_GROUP', 'NODE_AFFINITY'."
    )


def test_registry_remembers_order_description_and_plugin() -> None:
    registry = scheduling_policy_registry()
    names = ["DEFAULT", "SPREAD", "PLACEMENT_GROUP", "NODE_AFFINITY"]
    assert registry.names() == names == list(registry)
    assert "SPREAD" in registry and "NOPE" not in registry
    registration = registry.registration("SPREAD")
    assert registration.plugin == BUILTIN_PLUGIN_NAME
    assert "least-loaded" in registration.description


def test_registries_are_built_once_per_manager() -> None:
    assert resource_registry() is resource_registry()
    first = command_registry()
    assert first is command_registry()
    reset_plugin_manager()
    # A new manager builds a new registry (installed packages may fill it again).
    assert command_registry() is not first


def test_command_registry_keeps_the_parts_of_a_command() -> None:
    registry = CommandRegistry()
    registry.add("serve", help="run a server", configure=lambda parser: None, run=lambda ns: 0)
    command = registry.get("serve")
    assert (command.name, command.help) == ("serve", "run a server")
    assert registry.registration("serve").description == "run a server"


def test_core_commands_are_registered_by_the_builtin_plugin() -> None:
    registry = command_registry()
    for name in ("start", "stop", "status", "list", "microbenchmark"):
        assert registry.registration(name).plugin == BUILTIN_PLUGIN_NAME


def test_registry_of_an_undeclared_hook_is_refused() -> None:
    with pytest.raises(PluginLoadError, match="no hook named 'nebula_register_widgets'"):
        get_registry("nebula_register_widgets", WidgetRegistry)


# --- resources -----------------------------------------------------------------------------


def test_builtin_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    detected = resource_registry().detect_all()
    assert set(detected) == {"CPU", "GPU", "memory"}
    assert detected["CPU"] >= 1 and detected["memory"] > 0 and detected["GPU"] == 0


@pytest.mark.parametrize(
    ("visible", "expected"), [("0,1", 2.0), ("GPU-5e1f,GPU-77aa,3", 3.0), ("", 0.0), ("-1", 0.0)]
)
def test_gpu_count_honours_cuda_visible_devices(
    monkeypatch: pytest.MonkeyPatch, visible: str, expected: float
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert resource_registry().detect_all()["GPU"] == expected


def test_gpu_count_falls_back_to_nvidia_smi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: H100 (UUID: GPU-1)'\n"
        "echo '  MIG 1g.10gb Device 0: (UUID: MIG-1)'\necho 'GPU 1: H100 (UUID: GPU-2)'\n"
    )
    fake.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resource_registry().detect_all()["GPU"] == 2.0
    fake.unlink()
    assert resource_registry().detect_all()["GPU"] == 0.0


def test_failing_detectors_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> float:
        raise RuntimeError("no driver")

    registry = ResourceRegistry()
    registry.add("broken", broken)
    registry.add("absent", lambda: None)
    registry.add("manual")
    registry.add("fpga", lambda: 2)
    with caplog.at_level(logging.WARNING, logger="nebula._plugins.registries"):
        assert registry.detect_all() == {"fpga": 2.0}
    assert "'broken'" in caplog.text and "no driver" in caplog.text
    assert "'absent'" in caplog.text


def test_negative_detection_is_a_plugin_bug() -> None:
    registry = ResourceRegistry()
    registry.add("fpga", lambda: -1.0)
    with pytest.raises(ValueError, match=r"resource 'fpga'.*finite number >= 0"):
        registry.detect_all()


# --- loading plugins -----------------------------------------------------------------------

TEST_PLUGIN = """
    from nebula.plugins import hookimpl

    finished_jobs = []

    @hookimpl
    def nebula_register_resources(registry):
        registry.add("tpu_pod", lambda: 4.0)

    @hookimpl
    def nebula_job_finished(job):
        finished_jobs.append(job)
"""


def test_entry_point_plugin_is_found(install_plugin: InstallPlugin) -> None:
    plugin = install_plugin("nebula_testplugin", TEST_PLUGIN)
    assert resource_registry().detect_all()["tpu_pod"] == 4.0
    assert resource_registry().registration("tpu_pod").plugin == "nebula_testplugin"

    job = JobInfo(job_id="01", driver_pid=123, namespace="default")
    get_plugin_manager().hook.nebula_job_finished(job=job)
    assert plugin.finished_jobs == [job]


def test_misspelled_hook_is_caught_by_check_pending(install_plugin: InstallPlugin) -> None:
    source = """
        from nebula.plugins import hookimpl

        @hookimpl
        def nebula_register_resource(registry):
            pass
    """
    with pytest.raises(pluggy.PluginValidationError) as excinfo:
        install_plugin("nebula_typoplugin", source)
    message = str(excinfo.value)
    assert "plugin 'nebula_typoplugin' implements unknown hook 'nebula_register_resource'" in (
        message
    )
    assert "did you mean 'nebula_register_resources'?" in message


def test_optional_hooks_may_be_unknown(install_plugin: InstallPlugin) -> None:
    source = """
        from nebula.plugins import hookimpl

        @hookimpl(optionalhook=True)
        def nebula_future_hook():
            pass
    """
    install_plugin("nebula_optionalplugin", source)
    assert get_plugin_manager().has_plugin("nebula_optionalplugin")


WIDGET_SPECS = """
    from nebula.plugins import Registry, hookspec

    class WidgetRegistry(Registry[object]):
        kind = "widget"

    @hookspec
    def nebula_register_widgets(registry):
        "Add widgets by name."
"""

WIDGET_PLUGIN = """
    from nebula.plugins import hookimpl

    @hookimpl
    def nebula_add_hookspecs(pluginmanager):
        import nebula_widget_specs
        pluginmanager.add_hookspecs(nebula_widget_specs)

    @hookimpl
    def nebula_register_widgets(registry):
        registry.add("knob", "a knob", description="turns")
"""


def test_a_package_adds_hooks_of_its_own(install_plugin: InstallPlugin, tmp_path: Path) -> None:
    (tmp_path / "nebula_widget_specs.py").write_text(textwrap.dedent(WIDGET_SPECS))
    try:
        install_plugin("nebula_widgets", WIDGET_PLUGIN)
        specs = sys.modules["nebula_widget_specs"]
        registry = get_registry("nebula_register_widgets", specs.WidgetRegistry)
        assert registry.get("knob") == "a knob"
        assert registry.registration("knob").plugin == "nebula_widgets"
        assert get_registry("nebula_register_widgets", specs.WidgetRegistry) is registry
    finally:
        sys.modules.pop("nebula_widget_specs", None)


def test_a_third_party_implements_a_package_hook_with_a_typo(
    install_plugin: InstallPlugin, tmp_path: Path
) -> None:
    (tmp_path / "nebula_widget_specs.py").write_text(textwrap.dedent(WIDGET_SPECS))
    typo = WIDGET_PLUGIN.replace("def nebula_register_widgets", "def nebula_register_widget")
    try:
        with pytest.raises(pluggy.PluginValidationError) as excinfo:
            install_plugin("nebula_widgets", typo)
        assert "did you mean 'nebula_register_widgets'?" in str(excinfo.value)
    finally:
        sys.modules.pop("nebula_widget_specs", None)


def test_a_plugin_command_may_not_take_a_core_name(
    install_plugin: InstallPlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    from nebula._cli import main

    source = """
        from nebula.plugins import hookimpl

        @hookimpl
        def nebula_register_cli(commands):
            commands.add("start", help="mine", configure=lambda p: None, run=lambda a: 0)
    """
    install_plugin("nebula_clashing_cli", source)
    assert main(["--help"]) == 1
    error = capsys.readouterr().err
    assert f"command 'start' is already registered by plugin '{BUILTIN_PLUGIN_NAME}'" in error
    assert "plugin 'nebula_clashing_cli' cannot register it again" in error


def test_a_plugin_command_runs_from_the_cli(install_plugin: InstallPlugin) -> None:
    from nebula._cli import main

    source = """
        from nebula.plugins import hookimpl

        seen = []

        def configure(parser):
            parser.add_argument("--times", type=int, default=1)

        def run(args):
            seen.append(args.times)
            return 3

        @hookimpl
        def nebula_register_cli(commands):
            commands.add("hello", help="say hello", configure=configure, run=run)
    """
    plugin = install_plugin("nebula_hello_cli", source)
    assert main(["hello", "--times", "2"]) == 3
    assert plugin.seen == [2]


def test_broken_entry_point_names_itself(install_plugin: InstallPlugin) -> None:
    with pytest.raises(PluginLoadError) as excinfo:
        install_plugin("nebula_brokenplugin", "import nebula_no_such_module\n", "broken")
    message = str(excinfo.value)
    assert "entry point 'broken' (nebula_brokenplugin" in message
    assert "ModuleNotFoundError" in message


def test_importing_nebula_stays_light() -> None:
    # Plugin authors and the CLI import nebula often: it must not drag in numpy or any
    # domain package's dependencies.
    code = (
        "import sys, nebula, nebula.hookspecs, nebula.plugins\n"
        "heavy = {'numpy', 'pyarrow', 'torch', 'starlette', 'gymnasium', 'pandas'}\n"
        "heavy &= set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
