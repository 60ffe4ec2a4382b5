"""Helpers shared by the long-running processes (control store, node manager, workers)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (no-op elsewhere).

    Linux ties this to the parent *thread*; only use it under single-threaded parents
    (node managers). Processes started by a driver poll ``parent_alive`` instead.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def require_token() -> str:
    """The cluster token every cluster process is started with (in its environment)."""
    from nebula._auth import TOKEN_ENV

    token = os.environ.get(TOKEN_ENV)
    if not token:
        sys.stderr.write(f"{TOKEN_ENV} is not set: cluster processes need the cluster token.\n")
        sys.exit(2)
    return token


def parent_alive(parent_pid: int) -> bool:
    return parent_pid <= 0 or os.getppid() == parent_pid


def announce_ready(address: str) -> None:
    """Tell the process that started us where we listen (first line of stdout)."""
    sys.stdout.write(f"NEBULA_READY {address}\n")
    sys.stdout.flush()


def setup_logging(name: str) -> None:
    level = os.environ.get("NEBULA_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def install_term_handler(stop: list[bool]) -> None:
    """Stop on SIGTERM; ignore SIGINT, which a Ctrl-C in the driver's terminal sends to the
    whole process group: interrupting the driver must not take the cluster down."""

    def _on_term(signum: int, frame: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
