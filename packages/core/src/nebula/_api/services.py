"""Starting and stopping the cluster's processes (control store, node managers)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from nebula import _config
from nebula import _protocol as p
from nebula._auth import TOKEN_ENV, write_token_file
from nebula._ids import random_id

ADDRESS_FILE = "nebula_current_cluster"


@dataclass
class LocalCluster:
    """Processes this process started, and where they listen."""

    session_dir: str
    session_tag: str
    control_store: str
    node_manager: str
    node_id: bytes
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def new_session() -> tuple[str, str]:
    tag = random_id(4).hex()
    session_dir = os.path.join(_config.TEMP_DIR, f"session_{time.strftime('%Y%m%d-%H%M%S')}_{tag}")
    os.makedirs(os.path.join(session_dir, "logs"), exist_ok=True)
    return session_dir, tag


def session_tag_of(session_dir: str) -> str:
    return os.path.basename(session_dir).rsplit("_", 1)[-1]


def launch_process(
    args: list[str], *, detached: bool, log_path: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a process and wait for the address it announces on its first stdout line."""
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdin=subprocess.DEVNULL,
            env=None if env is None else {**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=log if detached else None,
            start_new_session=detached,
        )
    finally:
        log.close()
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + _config.PROCESS_START_TIMEOUT_S
    buffer = b""
    try:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                process.kill()
                raise RuntimeError(f"{args[0]} did not start within the time limit; see {log_path}")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                process.wait()
                raise RuntimeError(
                    f"{args[0]} exited during start-up with code {process.returncode}; "
                    f"see {log_path} or the output above"
                )
            buffer += chunk
    finally:
        selector.close()
    line = buffer.split(b"\n", 1)[0].decode()
    if not line.startswith("NEBULA_READY "):
        process.kill()
        raise RuntimeError(f"{args[0]} printed an unexpected start-up line: {line!r}")
    return process, line.split(" ", 1)[1].strip()


def start_control_store(
    session_dir: str,
    *,
    host: str,
    port: int,
    detached: bool,
    token: str,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    args = ["nebula._control_store", "--host", host, "--port", str(port)]
    args += ["--session-dir", session_dir]
    if not detached:
        args += ["--parent-pid", str(os.getpid())]
    log_path = os.path.join(session_dir, "logs", "control_store.err")
    env = {**(env or {}), TOKEN_ENV: token}
    process, address = launch_process(args, detached=detached, log_path=log_path, env=env)
    # A driver of the same user on this machine then connects with the address alone.
    write_token_file(_config.TEMP_DIR, token, address)
    return process, address


def start_node_manager(
    session_dir: str,
    *,
    control_store: str,
    host: str,
    num_cpus: float | None,
    num_gpus: float | None,
    resources: dict[str, float] | None,
    object_store_memory: int | None,
    detached: bool,
    port: int = 0,
    token: str,
    env: dict[str, str] | None = None,
    head: bool = False,
) -> tuple[subprocess.Popen[bytes], str, bytes]:
    node_id = random_id(16)
    args = ["nebula._node_manager", "--host", host, "--port", str(port)]
    args += ["--control-store", control_store, "--node-id", node_id.hex()]
    args += ["--session-tag", session_tag_of(session_dir), "--session-dir", session_dir]
    if num_cpus is not None:
        args += ["--num-cpus", str(num_cpus)]
    if num_gpus is not None:
        args += ["--num-gpus", str(num_gpus)]
    if resources:
        args += ["--resources", json.dumps(resources)]
    if object_store_memory:
        args += ["--object-store-memory", str(int(object_store_memory))]
    if not detached:
        args += ["--parent-pid", str(os.getpid())]
    if head:
        args.append("--head")
    log_path = os.path.join(session_dir, "logs", f"node_manager-{node_id.hex()[:8]}.err")
    env = {**(env or {}), TOKEN_ENV: token}
    process, address = launch_process(args, detached=detached, log_path=log_path, env=env)
    return process, address, node_id


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout_s: float = 5.0) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in reversed(processes):
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(2.0)
        if process.stdout is not None:
            process.stdout.close()


def probe_cluster(
    cs_address: str, *, host: str, token: str, timeout_s: float = 5.0
) -> p.ClusterInfoReply:
    """Ask a control store for the cluster's nodes; TimeoutError if it does not answer."""
    from nebula._worker.core_worker import CoreWorker

    probe = CoreWorker(
        token=token,
        is_driver=True,
        host=host,
        control_store=cs_address,
        node_manager="",
        node_id=b"",
        session_tag="",
    )
    try:
        reply = probe.call(cs_address, lambda rid, to: p.GetClusterInfo(rid, to), timeout_s)
    finally:
        probe.shutdown()
    assert isinstance(reply, p.ClusterInfoReply)
    return reply


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def local_ip_towards(host: str) -> str:
    """This machine's address on the interface that reaches ``host``."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((host, 9))
        except OSError:
            return "127.0.0.1"
        return str(sock.getsockname()[0])


def address_file() -> str:
    return os.path.join(_config.TEMP_DIR, ADDRESS_FILE)


def write_address_file(
    address: str, session_dir: str, pids: list[int], *, dashboard_url: str | None = None
) -> None:
    os.makedirs(_config.TEMP_DIR, exist_ok=True)
    path = address_file()
    record = {"address": address, "session_dir": session_dir, "pids": pids}
    if dashboard_url is not None:
        record["dashboard_url"] = dashboard_url
    with open(path, "w") as f:
        json.dump(record, f)
    os.chmod(path, 0o600)


def read_address_file() -> dict[str, object] | None:
    try:
        with open(address_file()) as f:
            data: dict[str, object] = json.load(f)
            return data
    except (OSError, ValueError):
        return None
