"""The node's worker processes: starting them, watching them die, and forwarding their output."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

from nebula._ids import random_id
from nebula._node_manager.zygote import ForkFailed, Zygote, ZygoteGone
from nebula._transport import remove_ipc_path
from nebula._worker.__main__ import WorkerSettings

logger = logging.getLogger(__name__)


class WorkerProcessHandle(Protocol):
    """What the pool uses of a worker process: ``subprocess.Popen`` or a forked worker."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...


@dataclass
class WorkerProcess:
    worker_id: bytes
    process: WorkerProcessHandle
    started_at: float
    address: str | None = None
    job_id: int | None = None
    lease_id: bytes | None = None
    actor_id: bytes | None = None
    blocked: bool = False
    # Set when the worker is sent SIGKILL: it must never be leased again.
    dying: bool = False
    # Whether it was ever leased; an unused one may be replaced (see WorkerPool.renew).
    used: bool = False
    # Stopped unused, to be replaced: its exit is no event worth recording.
    retired: bool = False
    idle_since: float = field(default_factory=time.monotonic)
    launched_at: float = field(default_factory=time.time)
    partial: dict[int, bytes] = field(default_factory=dict)
    log_files: dict[int, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def registered(self) -> bool:
        return self.address is not None

    @property
    def idle(self) -> bool:
        return self.registered and self.lease_id is None and not self.dying


class WorkerPool:
    """Starts workers and tracks them by id, pid and output pipe.

    Workers are forked from ``zygote`` when there is one (milliseconds each), else started
    as new interpreters.
    """

    def __init__(
        self,
        node_manager_address: str,
        control_store: str,
        node_id: bytes,
        session_tag: str,
        host: str,
        log_dir: str,
        zygote: Zygote | None = None,
    ) -> None:
        self.node_manager_address = node_manager_address
        self.control_store = control_store
        self.node_id = node_id
        self.session_tag = session_tag
        self.host = host
        self.log_dir = log_dir
        self.zygote = zygote
        self.workers: dict[bytes, WorkerProcess] = {}
        self._by_fd: dict[int, tuple[WorkerProcess, bool]] = {}

    def start_worker(self) -> WorkerProcess:
        worker_id = random_id(16)
        process, out_r, err_r = self._fork(worker_id) or self._exec(worker_id)
        worker = WorkerProcess(worker_id, process, time.monotonic())
        for fd, is_err in ((out_r, False), (err_r, True)):
            os.set_blocking(fd, False)
            self._by_fd[fd] = (worker, is_err)
            suffix = "err" if is_err else "out"
            path = os.path.join(self.log_dir, f"worker-{process.pid}.{suffix}")
            with contextlib.suppress(OSError):
                worker.log_files[int(is_err)] = open(path, "ab")  # noqa: SIM115
        self.workers[worker_id] = worker
        return worker

    def _fork(self, worker_id: bytes) -> tuple[WorkerProcessHandle, int, int] | None:
        if self.zygote is None or not self.zygote.alive:
            return None
        try:
            return self.zygote.spawn(worker_id.hex(), self.node_manager_address)
        except (ZygoteGone, ForkFailed) as exc:
            logger.warning("starting a worker as a new process instead: %s", exc)
            return None

    def _exec(self, worker_id: bytes) -> tuple[WorkerProcessHandle, int, int]:
        settings = WorkerSettings(
            node_manager=self.node_manager_address,
            control_store=self.control_store,
            node_id=self.node_id.hex(),
            worker_id=worker_id.hex(),
            session_tag=self.session_tag,
            host=self.host,
        )
        cmd = [sys.executable, "-u", "-m", "nebula._worker", *settings.argv()]
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # Raw pipes we own: the node manager polls their read ends in its loop.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, env=env
            )
        finally:
            os.close(out_w)
            os.close(err_w)
        return process, out_r, err_r

    # ---------------------------------------------------------------- output

    def output_fds(self) -> list[int]:
        fds = list(self._by_fd)
        if self.zygote is not None and self.zygote.alive:
            fds.append(self.zygote.fileno())
        return fds

    def read_output(self, fd: int) -> tuple[WorkerProcess, bool, list[str]] | None:
        """Read what a worker wrote; returns complete lines (a dead pipe is closed)."""
        entry = self._by_fd.get(fd)
        if entry is None:
            if self.zygote is not None and self.zygote.alive and fd == self.zygote.fileno():
                self.zygote.read_notices(0.0)  # workers' exits, seen by the next reap()
            return None
        worker, is_err = entry
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return worker, is_err, []
        except OSError:
            chunk = b""
        if not chunk:
            self._close_fd(fd)
            rest = worker.partial.pop(fd, b"")
            lines = [rest.decode(errors="replace")] if rest else []
            return worker, is_err, lines
        log_file = worker.log_files.get(int(is_err))
        if log_file is not None:
            with contextlib.suppress(OSError):
                log_file.write(chunk)  # type: ignore[attr-defined]
                log_file.flush()  # type: ignore[attr-defined]
        data = worker.partial.pop(fd, b"") + chunk
        *complete, rest = data.split(b"\n")
        if rest:
            worker.partial[fd] = rest
        return worker, is_err, [line.decode(errors="replace") for line in complete]

    def _close_fd(self, fd: int) -> None:
        if self._by_fd.pop(fd, None) is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def drain_output(self, worker: WorkerProcess) -> list[tuple[bool, list[str]]]:
        out = []
        for fd, (w, _) in list(self._by_fd.items()):
            if w is worker:
                for _ in range(64):
                    result = self.read_output(fd)
                    if result is None:
                        break
                    _, is_err, lines = result
                    if lines:
                        out.append((is_err, lines))
                    if fd not in self._by_fd or not lines:
                        break
        return out

    # ------------------------------------------------------------- lifecycle

    def reap(self) -> list[WorkerProcess]:
        """Workers whose process has exited since the last call."""
        dead = [w for w in self.workers.values() if w.process.poll() is not None]
        for worker in dead:
            del self.workers[worker.worker_id]
        return dead

    def close_worker_files(self, worker: WorkerProcess) -> None:
        for fd, (w, _) in list(self._by_fd.items()):
            if w is worker:
                self._close_fd(fd)
        for log_file in worker.log_files.values():
            with contextlib.suppress(OSError):
                log_file.close()  # type: ignore[attr-defined]
        if worker.address is not None:
            remove_ipc_path(worker.address)  # a killed worker cannot remove its own
        if worker.retired:  # it never ran anything: its empty logs tell nothing
            for suffix in ("out", "err"):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.log_dir, f"worker-{worker.pid}.{suffix}"))

    def renew(self) -> None:
        """Replace the workers never leased by new ones from the zygote.

        Called once the zygote has imported the modules plugins name for workers: workers
        forked before that would import them again, each on its own, in their first task.
        """
        unused = [w for w in self.workers.values() if not (w.used or w.dying)]
        for worker in unused:
            worker.retired = True
            self.kill(worker)
        for _ in unused:
            self.start_worker()

    def kill(self, worker: WorkerProcess) -> None:
        worker.dying = True
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGKILL)

    def kill_all(self, timeout_s: float = 2.0) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for worker in list(self.workers.values()):
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(worker)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(1.0)
            self.close_worker_files(worker)
        self.workers.clear()
        if self.zygote is not None:
            self.zygote.close()
