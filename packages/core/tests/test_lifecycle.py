"""Starting, inspecting and stopping a cluster, and cleaning up after a driver that died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import nebula
from nebula.testing import SignalActor, wait_for_condition

CLUSTER_MODULES = ("nebula._node_manager", "nebula._worker", "nebula._control_store")


@pytest.fixture
def fresh() -> Iterator[None]:
    """Each test here starts its own cluster; make sure none is left running."""
    assert not nebula.is_initialized()
    yield
    nebula.shutdown()


def _cluster_processes(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            cmdline = " ".join(process.cmdline())
            if process.status() != psutil.STATUS_ZOMBIE and any(
                m in cmdline for m in CLUSTER_MODULES
            ):
                found.append(process)
        except psutil.Error:
            pass
    return found


def _session_tag(context: Any) -> str:
    return os.path.basename(str(context["session_dir"])).rsplit("_", 1)[-1]


@nebula.remote
def node_of_task() -> str:
    return nebula.get_runtime_context().get_node_id()


# ------------------------------------------------------------------ init/shutdown


@pytest.mark.usefixtures("fresh")
def test_is_initialized_follows_init_and_shutdown() -> None:
    assert nebula.is_initialized() is False
    nebula.init(num_cpus=1)
    assert nebula.is_initialized() is True
    nebula.shutdown()
    assert nebula.is_initialized() is False
    nebula.shutdown()  # a second shutdown is harmless


@pytest.mark.usefixtures("fresh")
def test_init_twice_raises_unless_told_to_ignore_it() -> None:
    first = nebula.init(num_cpus=1)
    with pytest.raises(RuntimeError, match="ignore_reinit_error"):
        nebula.init(num_cpus=1)
    again = nebula.init(num_cpus=1, ignore_reinit_error=True)
    assert again["session_dir"] == first["session_dir"]
    assert nebula.get(nebula.put("still works")) == "still works"


@pytest.mark.usefixtures("fresh")
def test_shutdown_stops_every_process_and_frees_shared_memory(
    shm_files: Callable[[str], list[str]],
) -> None:
    import numpy as np

    context = nebula.init(num_cpus=2)
    tag = _session_tag(context)

    @nebula.remote
    def big() -> np.ndarray:
        return np.zeros(100_000)

    @nebula.remote
    class Holder:
        def ping(self) -> int:
            return os.getpid()

    ref = big.remote()
    nebula.get(ref)
    kept = nebula.put(np.ones(100_000))
    holder = Holder.remote()
    actor_pid = nebula.get(holder.ping.remote())
    started = _cluster_processes(psutil.Process().children(recursive=True))
    assert len(started) >= 3  # control store, node manager, workers
    assert any(p.pid == actor_pid for p in started)
    assert len(shm_files(tag)) == 2

    nebula.shutdown()

    assert not _cluster_processes(psutil.Process().children(recursive=True))
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in started)
    assert shm_files(tag) == []
    del ref, kept, holder


@pytest.mark.usefixtures("fresh")
def test_init_after_shutdown_starts_a_new_cluster() -> None:
    first = nebula.init(num_cpus=1)
    nebula.shutdown()
    second = nebula.init(num_cpus=1)
    assert second["session_dir"] != first["session_dir"]
    assert nebula.get(nebula.put(1)) == 1


@pytest.mark.usefixtures("fresh")
def test_api_calls_before_init_say_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"nebula\.init"):
        nebula.get_actor("anything")
    with pytest.raises(RuntimeError, match=r"nebula\.init"):
        nebula.nodes()


@pytest.mark.usefixtures("fresh")
def test_connecting_to_nothing_fails_with_a_connection_error() -> None:
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:1"):
        nebula.init(address="127.0.0.1:1")
    assert time.monotonic() - start < 15
    assert nebula.is_initialized() is False


@pytest.mark.usefixtures("fresh")
def test_bad_init_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="num_cpus"):
        nebula.init(num_cpus=-1)
    with pytest.raises(ValueError, match="address"):
        nebula.init(address="no-port-here")
    assert nebula.is_initialized() is False


# ---------------------------------------------------------------- cluster info


@pytest.mark.usefixtures("fresh")
def test_nodes_resources_and_runtime_context() -> None:
    nebula.init(num_cpus=2, resources={"gizmo": 3})
    nodes = nebula.nodes()
    assert len(nodes) == 1
    [node] = nodes
    assert node["Alive"] is True
    assert node["Resources"]["CPU"] == 2
    assert node["Resources"]["gizmo"] == 3

    resources = nebula.cluster_resources()
    assert resources["CPU"] == 2
    assert resources["gizmo"] == 3
    assert nebula.available_resources()["CPU"] <= 2

    assert nebula.get(node_of_task.remote()) == node["NodeID"]
    assert nebula.get_runtime_context().get_node_id() == node["NodeID"]


@pytest.mark.usefixtures("fresh")
def test_available_resources_drop_while_a_task_runs() -> None:
    nebula.init(num_cpus=2)

    @nebula.remote(num_cpus=2)
    def hold(seconds: float) -> None:
        time.sleep(seconds)

    ref = hold.remote(2)
    wait_for_condition(lambda: nebula.available_resources().get("CPU", 0) == 0, timeout=10)
    nebula.get(ref)
    wait_for_condition(lambda: nebula.available_resources().get("CPU", 0) == 2, timeout=5)


# ------------------------------------------------------------------ dead driver

_DRIVER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import nebula

    context = nebula.init(num_cpus=2)

    @nebula.remote
    def pid():
        return os.getpid()

    @nebula.remote
    class Actor:
        def pid(self):
            return os.getpid()

    actor = Actor.remote()
    pids = nebula.get([pid.remote(), actor.pid.remote()])
    big = nebula.put(np.zeros(100_000))
    print("READY", context["session_dir"], *pids, flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), 9)
    """
)


def test_driver_killed_with_sigkill_leaves_no_cluster_behind(
    shm_files: Callable[[str], list[str]],
) -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdin is not None and driver.stdout is not None
    try:
        line = driver.stdout.readline().split()
        assert line and line[0] == "READY", f"driver did not start: {line}"
        tag = os.path.basename(line[1]).rsplit("_", 1)[-1]
        task_pid, actor_pid = int(line[2]), int(line[3])
        spawned = _cluster_processes(psutil.Process(driver.pid).children(recursive=True))
        assert {task_pid, actor_pid} <= {p.pid for p in spawned}
        assert shm_files(tag)

        driver.stdin.write("die\n")
        driver.stdin.flush()
        assert driver.wait(10) == -signal.SIGKILL

        def all_gone() -> bool:
            return not _cluster_processes(spawned)

        wait_for_condition(all_gone, timeout=10)
        wait_for_condition(lambda: not shm_files(tag), timeout=5)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for stream in (driver.stdin, driver.stdout):
            if stream is not None:
                stream.close()


def test_losing_the_node_manager_fails_pending_work_instead_of_hanging() -> None:
    nebula.init(num_cpus=1)
    try:

        @nebula.remote
        def sleep_long(started: Any = None) -> None:
            if started is not None:
                nebula.get(started.send.remote())
            time.sleep(60)

        started = SignalActor.remote()
        ref = sleep_long.remote(started)
        nebula.get(started.wait.remote(), timeout=30)  # running on the node
        for child in psutil.Process().children():
            if "nebula._node_manager" in " ".join(child.cmdline()):
                child.kill()
        start = time.monotonic()
        with pytest.raises(nebula.exceptions.NodeDiedError, match="node manager"):
            nebula.get(ref, timeout=30)
        assert time.monotonic() - start < 5
        with pytest.raises(nebula.exceptions.NodeDiedError):
            sleep_long.remote()
    finally:
        nebula.shutdown()
    assert not psutil.Process().children(recursive=True)


def test_tasks_submitted_by_tasks_import_the_drivers_own_modules(tmp_path: Path) -> None:
    # A module importable only through the driver's sys.path: workers two levels down need it.
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "job_helpers.py").write_text(
        textwrap.dedent(
            """
            import nebula

            @nebula.remote
            def double(x):
                import job_arithmetic  # imported where it runs

                return job_arithmetic.twice(x)

            @nebula.remote
            def outer(x):
                return nebula.get(double.remote(x))
            """
        )
    )
    (tmp_path / "lib" / "job_arithmetic.py").write_text("def twice(x):\n    return 2 * x\n")
    script = (
        "import sys\nsys.path.insert(0, 'lib')\nimport nebula, job_helpers\n"
        "print(nebula.get(job_helpers.outer.remote(21)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "42"


def test_socket_files_of_killed_processes_are_swept() -> None:
    import socket

    from nebula._transport import ipc_path, sweep_stale_ipc_paths

    path = ipc_path("127.0.0.1", 1)  # port 1: no Nebula process listens there
    assert path is not None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(path)  # what a process killed with SIGKILL leaves: a file nobody listens on
    left.close()
    assert os.path.exists(path)
    assert sweep_stale_ipc_paths() >= 1
    assert not os.path.exists(path)
