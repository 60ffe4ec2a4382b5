"""Two hosts joined over a real network: a head and a node in separate network namespaces.

Each namespace has its own interfaces, so the node in ``ns2`` reaches the head in ``ns1`` only
through a veth pair, the way a second machine would. Needs root and ``ip``; skipped otherwise.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

HEAD_IP = "10.231.0.1"
NODE_IP = "10.231.0.2"
COMMAND_TIMEOUT_S = 60


@dataclass
class Hosts:
    head_ns: str
    node_ns: str
    env: dict[str, str]
    temp_dir: Path


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def _in_ns(
    ns: str, env: dict[str, str], *args: str, timeout: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ns_pids(ns: str) -> list[int]:
    listed = _ip("netns", "pids", ns)
    return [int(pid) for pid in listed.stdout.split()] if listed.returncode == 0 else []


def _kill_namespace_processes(ns: str) -> None:
    procs = []
    for pid in _ns_pids(ns):
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


def _free_port_in(ns: str, env: dict[str, str]) -> int:
    probe = "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"
    result = _in_ns(ns, env, sys.executable, "-c", probe, timeout=30)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    """Two namespaces joined by a veth pair; everything started in them dies at teardown."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("network namespaces need root on Linux")
    if shutil.which("ip") is None:
        pytest.skip("the `ip` command (iproute2) is not installed")
    tag = f"{os.getpid()}x{time.monotonic_ns() % 100000}"
    head_ns, node_ns = f"nbh{tag}", f"nbn{tag}"
    veth_head, veth_node = f"vh{tag}"[:15], f"vn{tag}"[:15]
    temp_dir = tmp_path / "nebula"
    temp_dir.mkdir()
    env = dict(os.environ, NEBULA_TEMP_DIR=str(temp_dir))
    created: list[str] = []
    try:
        for ns in (head_ns, node_ns):
            added = _ip("netns", "add", ns)
            if added.returncode != 0:
                pytest.skip(f"cannot create a network namespace: {added.stderr.strip()}")
            created.append(ns)
        steps = [
            ("link", "add", veth_head, "type", "veth", "peer", "name", veth_node),
            ("link", "set", veth_head, "netns", head_ns),
            ("link", "set", veth_node, "netns", node_ns),
            ("-n", head_ns, "addr", "add", f"{HEAD_IP}/24", "dev", veth_head),
            ("-n", node_ns, "addr", "add", f"{NODE_IP}/24", "dev", veth_node),
            ("-n", head_ns, "link", "set", "lo", "up"),
            ("-n", node_ns, "link", "set", "lo", "up"),
            ("-n", head_ns, "link", "set", veth_head, "up"),
            ("-n", node_ns, "link", "set", veth_node, "up"),
        ]
        for step in steps:
            done = _ip(*step)
            if done.returncode != 0:
                pytest.skip(f"cannot set up the test network (ip {' '.join(step)}): {done.stderr}")
        yield Hosts(head_ns, node_ns, env, temp_dir)
    finally:
        for ns in created:
            _kill_namespace_processes(ns)
        for ns in created:
            # Deleting a namespace also deletes the veth pair in it.
            _ip("netns", "delete", ns)
        for session_dir in glob.glob(str(temp_dir / "session_*")):
            tag_of_session = os.path.basename(session_dir).rsplit("_", 1)[-1]
            for path in glob.glob(f"/dev/shm/nebula-{tag_of_session}-*"):
                with contextlib.suppress(OSError):
                    os.unlink(path)


DRIVER = textwrap.dedent(
    """
    import json, socket, sys
    import numpy as np
    import nebula

    nebula.init(address=sys.argv[1])

    @nebula.remote(resources={"remote": 1})
    def where(head_ip):
        # The address this node uses to reach the head is the node's own interface.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect((head_ip, 9))
        ip = probe.getsockname()[0]
        probe.close()
        return nebula.get_runtime_context().get_node_id(), ip

    @nebula.remote(resources={"remote": 1})
    def make_array(n):
        return np.arange(n, dtype=np.int64)

    node_id, ip = nebula.get(where.remote(sys.argv[1].split(":")[0]), timeout=30)
    array = nebula.get(make_array.remote(10 * 2**20 // 8), timeout=30)
    nodes = [
        {"id": n["NodeID"], "ip": n["NodeManagerAddress"], "alive": n["Alive"],
         "remote": n["Resources"].get("remote", 0)}
        for n in nebula.nodes()
    ]
    print(json.dumps({
        "task_node": node_id,
        "task_ip": ip,
        "driver_node": nebula.get_runtime_context().get_node_id(),
        "nbytes": int(array.nbytes),
        "intact": bool((array == np.arange(array.size, dtype=np.int64)).all()),
        "nodes": nodes,
    }))
    nebula.shutdown()
    """
)


def test_task_and_object_cross_the_network_between_namespaces(hosts: Hosts) -> None:
    port = _free_port_in(hosts.head_ns, hosts.env)
    cli = [sys.executable, "-m", "nebula._cli", "start"]
    head = _in_ns(
        hosts.head_ns,
        hosts.env,
        *cli,
        "--head",
        "--node-ip-address",
        HEAD_IP,
        "--port",
        str(port),
        "--num-cpus",
        "1",
    )
    assert head.returncode == 0, head.stderr
    assert f"{HEAD_IP}:{port}" in head.stdout

    joined = _in_ns(
        hosts.node_ns,
        hosts.env,
        *cli,
        "--address",
        f"{HEAD_IP}:{port}",
        "--node-ip-address",
        NODE_IP,
        "--num-cpus",
        "1",
        "--resources",
        json.dumps({"remote": 1}),
    )
    assert joined.returncode == 0, joined.stderr

    # The node manager in ns2 really runs there, not on the head's network.
    node_pids = set(_ns_pids(hosts.node_ns))
    assert any("nebula._node_manager" in " ".join(_cmdline(pid)) for pid in node_pids)

    driver = _in_ns(hosts.head_ns, hosts.env, sys.executable, "-c", DRIVER, f"{HEAD_IP}:{port}")
    assert driver.returncode == 0, driver.stderr
    result = json.loads(driver.stdout.strip().splitlines()[-1])

    by_id = {node["id"]: node for node in result["nodes"]}
    assert len(by_id) == 2 and all(node["alive"] for node in by_id.values())
    remote = by_id[result["task_node"]]
    assert remote["ip"] == NODE_IP and remote["remote"] == 1
    assert result["task_ip"] == NODE_IP
    assert by_id[result["driver_node"]]["ip"] == HEAD_IP
    assert result["nbytes"] == 10 * 2**20
    assert result["intact"]


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []
