"""Starting the dashboard process (without importing its web dependencies here)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys

from nebula._auth import TOKEN_ENV

DEFAULT_PORT = 8265
DASHBOARD_URL_KEY = "dashboard:url"
REQUIRED = ("starlette", "uvicorn", "prometheus_client")
UNAVAILABLE = (
    "the dashboard is not installed; install it with `pip install 'nebula-core[dashboard]'`"
)


def available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in REQUIRED)


def choose_port(host: str, wanted: int = DEFAULT_PORT) -> int:
    """``wanted`` if it is free on ``host``, else a free port (several clusters on one
    machine each get a dashboard)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in (wanted, 0):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError(f"no free port on {host}")


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def command(
    *, host: str, port: int, cluster_address: str, session_dir: str, parent_pid: int = 0
) -> list[str]:
    args = [sys.executable, "-m", "nebula._dashboard", "--host", host, "--port", str(port)]
    args += ["--cluster-address", cluster_address, "--session-dir", session_dir]
    if parent_pid:
        args += ["--parent-pid", str(parent_pid)]
    return args


def start_in_background(
    *, host: str, port: int, cluster_address: str, session_dir: str, token: str
) -> subprocess.Popen[bytes]:
    """Start a dashboard that stops with this process; does not wait for it to serve."""
    log_path = os.path.join(session_dir, "logs", "dashboard.err")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command(
                host=host,
                port=port,
                cluster_address=cluster_address,
                session_dir=session_dir,
                parent_pid=os.getpid(),
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, TOKEN_ENV: token},
        )
