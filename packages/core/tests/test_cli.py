"""The ``nebula`` command: a head started from the CLI serves drivers, then stops cleanly."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from nebula.testing import wait_for_condition


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nebula._cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _processes_under(temp_dir: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if str(temp_dir) in " ".join(proc.info["cmdline"] or []):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ, NEBULA_TEMP_DIR=str(tmp_path))
    yield env
    _cli(env, "stop")
    wait_for_condition(lambda: not _processes_under(tmp_path), timeout=15)


def test_head_from_cli_serves_a_driver_and_stops(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    started = _cli(cli_env, "start", "--head", "--port", str(port), "--num-cpus", "1")
    assert started.returncode == 0, started.stderr
    assert f"127.0.0.1:{port}" in started.stdout
    assert "nebula.init(address=" in started.stdout

    joined = _cli(cli_env, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "2")
    assert joined.returncode == 0, joined.stderr

    if importlib.util.find_spec("starlette") is not None:
        # The head serves the dashboard; a job submitted from the shell finds it by itself
        # and runs as a driver of the two-node cluster.
        assert "Dashboard:              http://127.0.0.1:" in started.stdout
        submitted = _cli(
            cli_env, "job", "submit", "--", "python", "-c",
            "import nebula; nebula.init(); print('nodes', len(nebula.nodes()))",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        assert "nodes 2" in submitted.stdout

    driver = textwrap.dedent(
        f"""
        import nebula
        nebula.init(address="127.0.0.1:{port}")
        @nebula.remote
        def square(x):
            return x * x
        print(sorted(nebula.get([square.remote(i) for i in range(6)])))
        print(int(nebula.cluster_resources()["CPU"]))
        @nebula.remote
        class Keeper:
            def ping(self):
                return 1
        keeper = Keeper.options(name="keeper", lifetime="detached").remote()
        nebula.get(keeper.ping.remote())
        nebula.shutdown()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", driver], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[0, 1, 4, 9, 16, 25]", "3"]

    status = _cli(cli_env, "status", "--address", f"127.0.0.1:{port}")
    assert status.returncode == 0, status.stderr
    assert "Nodes: 2 alive" in status.stdout
    nodes = _cli(cli_env, "list", "nodes", "--address", f"127.0.0.1:{port}")
    assert nodes.returncode == 0, nodes.stderr
    assert nodes.stdout.startswith("NODE_ID") and "(2 nodes)" in nodes.stdout
    actors = _cli(
        cli_env, "list", "actors", "--filter", "state=ALIVE", "--address", f"127.0.0.1:{port}"
    )
    assert actors.returncode == 0, actors.stderr
    assert "(1 actors)" in actors.stdout and "keeper" in actors.stdout  # detached: it stays
    bad = _cli(cli_env, "list", "actors", "--filter", "state~x", "--address", f"127.0.0.1:{port}")
    assert bad.returncode == 1 and "KEY=VALUE" in bad.stderr

    # The cluster outlives the driver; `nebula stop` ends it and everything it started,
    # but leaves alone a cluster that a running program started for itself.
    assert _processes_under(tmp_path)
    import nebula

    nebula.init(num_cpus=1)
    try:
        stopped = _cli(cli_env, "stop")
        assert stopped.returncode == 0
        wait_for_condition(lambda: not _processes_under(tmp_path), timeout=15)

        @nebula.remote
        def still_here() -> str:
            return "yes"

        assert nebula.get(still_here.remote(), timeout=30) == "yes"
    finally:
        nebula.shutdown()


def test_connecting_to_nothing_fails_clearly(cli_env: dict[str, str]) -> None:
    address = f"127.0.0.1:{_free_port()}"
    result = _cli(cli_env, "status", "--address", address, timeout=30)
    assert result.returncode == 1
    assert "No cluster token" in result.stderr
    env = dict(cli_env, NEBULA_CLUSTER_TOKEN="0" * 64)
    result = _cli(env, "status", "--address", address, timeout=30)
    assert result.returncode == 1
    assert "Could not reach a Nebula cluster" in result.stderr


def test_joining_with_a_wrong_token_fails_clearly(cli_env: dict[str, str]) -> None:
    port = _free_port()
    started = _cli(cli_env, "start", "--head", "--port", str(port), "--num-cpus", "1")
    assert started.returncode == 0, started.stderr
    env = dict(cli_env, NEBULA_CLUSTER_TOKEN="0" * 64)
    joined = _cli(env, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1")
    assert joined.returncode == 1
    assert "rejected this cluster token" in joined.stderr


def test_auto_address_without_a_head_says_how_to_start_one(cli_env: dict[str, str]) -> None:
    result = _cli(cli_env, "status", timeout=30)
    assert result.returncode == 1
    assert "nebula start --head" in result.stderr
