"""Helpers shared by the long-running processes (control store, node manager, workers)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

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
        # A worker forked from a node manager inherits its logging set-up: replace it.
        force=True,
    )


def install_term_handler(stop: list[bool]) -> int:
    """Stop on SIGTERM; ignore SIGINT, which a Ctrl-C in the driver's terminal sends to the
    whole process group: interrupting the driver must not take the cluster down.

    Returns a descriptor that turns readable when a signal arrives: a poll loop that watches
    it stops at once instead of at its next tick (Python retries a poll a signal interrupts).
    Call from the main thread; read the descriptor empty with :func:`drain`.
    """

    def _on_term(signum: int, frame: object) -> None:
        stop[0] = True

    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return read_fd


def exit_now(code: int = 0) -> NoReturn:
    """End a cluster process that has shut down cleanly, without the interpreter's teardown.

    Freeing every module (numpy's, Arrow's...) one by one takes longer than the shutdown
    itself, and the process's memory goes back to the system at once anyway. ``atexit``
    callbacks still run and output is flushed.
    """
    import atexit

    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def drain(fd: int) -> None:
    """Read a non-blocking descriptor until it is empty."""
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def set_process_title(argv: Sequence[str]) -> None:
    """Show ``argv`` as this process's command line (``ps``, ``/proc/PID/cmdline``).

    A process forked without ``exec`` keeps its parent's command line; tools that find
    Nebula's processes by it (``nebula stop``, leak checks) should see what it has become.
    Linux only; the title is cut to the length of the original command line.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # Fields 48 and 49 of stat (counted from 1, pid first) bound the argument area.
        start, end = int(fields[45]), int(fields[46])
    except (OSError, IndexError, ValueError):
        return
    size = end - start
    if start <= 0 or size <= 1:
        return
    title = b"\0".join(arg.encode() for arg in argv)[: size - 1]
    ctypes.memmove(start, title.ljust(size, b"\0"), size)
