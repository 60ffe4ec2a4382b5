"""Starting workers by forking a process that has already imported what they need.

A fresh interpreter spends most of a worker's start-up importing Nebula and the installed
plugins. The node manager does that once, then forks a *zygote* before its endpoint starts
ZeroMQ's threads (a fork copies only the calling thread: the zygote is single-threaded).
The zygote forks one child per worker the node manager asks for: a worker is ready in
milliseconds, and the pages of its imported modules stay shared with the zygote's.

The two talk over a private socket pair (message per datagram, plain ASCII):

- node manager -> zygote: ``S <worker id> <node manager address>`` (start a worker) and
  ``K <pid> <signal>`` (signal a worker: only the zygote, the parent, knows that the pid is
  still its child's and not a reused one);
- zygote -> node manager: ``P <pid>`` with the read ends of the worker's stdout and stderr
  attached, or ``F <reason>`` if it could not fork, ``X <pid> <returncode>`` when a
  worker exits (only the parent can collect a child's exit status), and ``R`` once it has
  imported the modules plugins name for workers.

Those modules (``nebula_worker_imports``: Arrow and nebula-data's task side, say) are
imported only while no request waits, one at a time, so that the first workers start at
once whatever is installed. Workers forked after ``R`` find them loaded; the node manager
then replaces the workers it started before and never used (see ``WorkerPool.renew``).

The zygote follows the node manager when it dies, and its workers follow the zygote.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import pkgutil
import select
import signal
import socket
import subprocess
import sys
import time
import warnings

from nebula._process import die_with_parent, set_process_title
from nebula._worker.__main__ import WorkerSettings

logger = logging.getLogger(__name__)

_MAX_MESSAGE = 256
_SPAWN_TIMEOUT_S = 10.0


class ZygoteGone(Exception):
    """The zygote exited or stopped answering; start workers with ``exec`` instead."""


class ForkFailed(Exception):
    """The zygote could not fork this worker (the system refused); it still serves."""


class ForkedWorker:
    """A worker the zygote forked, seen from the node manager (like ``Popen``)."""

    def __init__(self, pid: int, zygote: Zygote) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._zygote = zygote

    def poll(self) -> int | None:
        if self.returncode is None:
            self._zygote.read_notices(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            self._zygote.read_notices(remaining)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            self._zygote.signal(self, sig)


class Zygote:
    """The node manager's end: asks the zygote for workers and hears of their exits."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self._sock = sock
        self.pid = pid
        self._workers: dict[int, ForkedWorker] = {}
        self._spawned: list[tuple[int, int, int]] = []
        self._fork_errors: list[str] = []
        self.alive = True
        # Whether the zygote has imported the modules plugins name for workers (``R``).
        self.preloaded = False

    @classmethod
    def start(
        cls, *, control_store: str, node_id: str, session_tag: str, host: str
    ) -> Zygote | None:
        """Fork the zygote; call before this process starts any thread. None if unable."""
        if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
            return None
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        with warnings.catch_warnings():
            # Python 3.12+ warns when other threads exist; a library may have started some
            # (a BLAS pool), and they are not needed in the zygote.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                parent_end.close()
                _Server(child_end, control_store, node_id, session_tag, host).run()
                code = 0
            except BaseException:
                logger.exception("the worker zygote failed")
            finally:
                os._exit(code)
        child_end.close()
        return cls(parent_end, pid)

    def fileno(self) -> int:
        return self._sock.fileno()

    # ----------------------------------------------------------------- requests

    def spawn(self, worker_id: str, node_manager: str) -> tuple[ForkedWorker, int, int]:
        """Start a worker; returns it with the read ends of its stdout and stderr."""
        self._send(f"S {worker_id} {node_manager}")
        deadline = time.monotonic() + _SPAWN_TIMEOUT_S
        while not self._spawned:
            if self._fork_errors:
                raise ForkFailed(self._fork_errors.pop(0))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._gone()
                raise ZygoteGone("the worker zygote did not answer in time")
            self.read_notices(remaining)
            if not self.alive:
                raise ZygoteGone("the worker zygote exited")
        pid, out_fd, err_fd = self._spawned.pop(0)
        worker = ForkedWorker(pid, self)
        self._workers[pid] = worker
        return worker, out_fd, err_fd

    def signal(self, worker: ForkedWorker, sig: int) -> None:
        try:
            self._send(f"K {worker.pid} {int(sig)}")
        except ZygoteGone:
            # Its workers got SIGTERM when it died; make sure of the rest.
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, sig)

    def _send(self, text: str) -> None:
        if not self.alive:
            raise ZygoteGone("the worker zygote exited")
        try:
            self._sock.send(text.encode())
        except OSError:
            self._gone()
            raise ZygoteGone("the worker zygote exited") from None

    # ------------------------------------------------------------------ notices

    def read_notices(self, timeout: float | None) -> None:
        """Take in what the zygote said, waiting up to ``timeout`` for the first message."""
        wait: float | None = timeout
        while self.alive:
            readable, _, _ = select.select([self._sock], [], [], wait)
            if not readable:
                return
            wait = 0.0
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._sock, _MAX_MESSAGE, 2)
            except OSError:
                data, fds = b"", []
            if not data:
                self._gone()
                return
            self._on_message(data.decode(), fds)

    def _on_message(self, text: str, fds: list[int]) -> None:
        kind, _, rest = text.partition(" ")
        if kind == "P" and len(fds) == 2:
            for fd in fds:
                os.set_inheritable(fd, False)
            self._spawned.append((int(rest), fds[0], fds[1]))
            return
        for fd in fds:
            os.close(fd)
        if kind == "X":
            pid, code = (int(x) for x in rest.split())
            worker = self._workers.pop(pid, None)
            if worker is not None:
                worker.returncode = code
        elif kind == "F":
            self._fork_errors.append(rest)
        elif kind == "R":
            self.preloaded = True

    def _gone(self) -> None:
        """The zygote died or hangs: make sure it is gone; its workers follow it (SIGTERM)."""
        if not self.alive:
            return
        self.alive = False
        self._sock.close()
        # Still our child until close() reaps it, so the pid cannot name another process.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        for worker in self._workers.values():
            worker.returncode = -signal.SIGTERM
        self._workers.clear()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the zygote (its remaining workers get SIGTERM) and wait for it to exit."""
        if self.alive:
            self.alive = False
            self._sock.close()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                pid, _status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                return
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                return
            time.sleep(0.002)


class _Server:
    """The zygote's side: forks workers on request and reports how they end."""

    def __init__(
        self, sock: socket.socket, control_store: str, node_id: str, session_tag: str, host: str
    ) -> None:
        self.sock = sock
        self.control_store = control_store
        self.node_id = node_id
        self.session_tag = session_tag
        self.host = host
        self.children: set[int] = set()
        self.wake_read, self.wake_write = os.pipe()

    def run(self) -> None:
        parent = os.getppid()
        die_with_parent()
        if os.getppid() != parent:
            return
        set_process_title(
            [sys.executable, "-m", "nebula._worker", "--zygote", "--session-tag", self.session_tag]
        )
        # The node manager's stdout carries its ready line to whoever started it: holding
        # it open would hide the node manager's death from that reader.
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.close(devnull)
        _import_worker_modules()
        preload = _plugin_worker_modules()

        for fd in (self.wake_read, self.wake_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _ignore_signal)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            sock_fd = self.sock.fileno()
            idle_wait = 0.0 if preload else None
            readable, _, _ = select.select([sock_fd, self.wake_read], [], [], idle_wait)
            if not readable and preload:
                _import_optional(preload.pop(0))
                if not preload:
                    self._notify("R")
                continue
            if self.wake_read in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_read, 4096)
            self._reap()
            if sock_fd in readable:
                data = self.sock.recv(_MAX_MESSAGE)
                if not data:
                    return  # the node manager closed its end: it is stopping
                self._on_request(data.decode())

    def _on_request(self, text: str) -> None:
        kind, _, rest = text.partition(" ")
        if kind == "S":
            worker_id, node_manager = rest.split()
            self._spawn(worker_id, node_manager)
        elif kind == "K":
            pid, sig = (int(x) for x in rest.split())
            if pid in self.children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self._notify(f"X {pid} {os.waitstatus_to_exitcode(status)}")

    def _notify(self, text: str, fds: list[int] | None = None) -> None:
        try:
            if fds:
                socket.send_fds(self.sock, [text.encode()], fds)
            else:
                self.sock.send(text.encode())
        except OSError:
            os._exit(0)  # the node manager is gone; the workers follow the zygote

    def _spawn(self, worker_id: str, node_manager: str) -> None:
        settings = WorkerSettings(
            node_manager=node_manager,
            control_store=self.control_store,
            node_id=self.node_id,
            worker_id=worker_id,
            session_tag=self.session_tag,
            host=self.host,
        )
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            self._notify(f"F {exc}")
            return
        if pid == 0:
            try:
                os.close(out_r)
                os.close(err_r)
                _become_worker(self, settings, out_w, err_w)
            except BaseException:
                logger.exception("a forked worker failed to start")
            finally:
                os._exit(1)
        self.children.add(pid)
        os.close(out_w)
        os.close(err_w)
        self._notify(f"P {pid}", [out_r, err_r])
        os.close(out_r)
        os.close(err_r)


def _import_worker_modules() -> None:
    """Import once, here, what every worker would otherwise import for itself."""
    import nebula._plugins.lifecycle
    import nebula._worker

    for module in pkgutil.iter_modules(nebula._worker.__path__, "nebula._worker."):
        importlib.import_module(module.name)


def _plugin_worker_modules() -> list[str]:
    """What plugins name through ``nebula_worker_imports``, each once, in their order."""
    from nebula._plugins.manager import get_plugin_manager

    try:
        lists = get_plugin_manager().hook.nebula_worker_imports()
    except Exception:
        logger.exception("a plugin's nebula_worker_imports hook failed")
        return []
    return list(dict.fromkeys(name for names in lists for name in names))


def _import_optional(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as exc:  # a broken optional module must not stop the node
        logger.warning("workers will import %s themselves: %s", name, exc)


def _ignore_signal(signum: int, frame: object) -> None:
    """A handler for SIGCHLD: its only job is to wake the zygote's loop."""


def _become_worker(server: _Server, settings: WorkerSettings, out_w: int, err_w: int) -> None:
    """In the forked child: shed the zygote's state and run as an ordinary worker would."""
    signal.set_wakeup_fd(-1)
    for fd in (server.sock.detach(), server.wake_read, server.wake_write):
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    devnull = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((devnull, 0), (out_w, 1), (err_w, 2)):
        os.dup2(fd, target)
        os.close(fd)
    # As ``python -u`` would: output reaches the node manager as soon as it is written.
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    stdin = open(0, closefd=False)  # noqa: SIM115 - the process's stdin from now on
    stdout = _unbuffered_text(1, encoding, errors)
    stderr = _unbuffered_text(2, encoding, "backslashreplace")
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = stdin, stdout, stderr  # type: ignore[misc]
    os.environ["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "nebula._worker", *settings.argv()]
    set_process_title(argv)
    import nebula._worker.__main__ as worker_main

    sys.argv = [worker_main.__file__ or "nebula._worker", *settings.argv()]
    sys.modules["__main__"] = worker_main
    if "numpy.random" in sys.modules:
        # Every worker would otherwise draw the zygote's random numbers.
        sys.modules["numpy.random"].seed()
    worker_main.run(settings)


def _unbuffered_text(fd: int, encoding: str, errors: str | None) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False), encoding=encoding, errors=errors, write_through=True
    )
