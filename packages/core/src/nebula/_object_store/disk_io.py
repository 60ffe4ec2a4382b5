"""Spilling and restoring objects' bytes on threads, off the node manager's loop.

Under disk pressure (gigabytes of dirty pages queued for writeback) one copy to disk can
wait for seconds; done on the node manager's loop, it stopped the node's heartbeats until
the cluster declared the node dead. Copies run here instead, on two threads: one writes
spills (and removes spilled files), one reads them back, so a reader's restore does not
wait behind a queue of spills. The loop hands over a job and goes on; each finished job is
queued for it, and a byte on a pipe (``ready_fd``) wakes it to collect them.

Spills are written in large chunks with ``sendfile`` (no copy through user space), each
chunk's writeback started as soon as it is copied (``sync_file_range``), so the disk works
while the copy goes on instead of when the kernel's dirty limits are reached; a long spill
waits for its chunks to be on disk once it is ``DIRTY_WINDOW_BYTES`` ahead of them. A spill
is complete (and its object's memory freed) once all its bytes are in its file: the pages
then belong to the kernel, which writes them out and reclaims them, and a restore soon
after its spill reads them from memory. If the disk falls behind, the kernel throttles the
spill thread, never the loop. A job is cancelled, never cut short in a way the loop cannot
see: the loop decides what a finished job means for the store.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import select
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

CHUNK_BYTES = 16 << 20
# A spill copies at most this far ahead of what is on disk.
DIRTY_WINDOW_BYTES = 256 << 20

_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4


def _load_sync_file_range() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _finish_writeback(fd: int, offset: int, length: int) -> None:
    """Wait until the range is on disk (its write errors, such as EIO, surface here)."""
    if _sync_file_range is None:
        os.fdatasync(fd)
        return
    flags = _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
    if _sync_file_range(fd, offset, length, flags) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


@dataclass(eq=False)
class IOJob:
    """One copy of an object's bytes from ``source`` to ``target``.

    ``kind`` is "spill" (memory to disk) or "restore" (disk to memory; ``target`` is a
    temporary name, renamed to ``final`` once the copy is complete). ``error`` is set when
    the copy failed, in which case ``target`` has been removed.
    """

    kind: str
    object_id: bytes
    source: str
    target: str
    size: int
    final: str = ""
    cancelled: bool = False
    error: str | None = None
    # The spill found no file: the object's owner took it back to reuse (see write_cache),
    # and the node manager has yet to hear of it.
    source_gone: bool = False
    started: float = field(default_factory=time.monotonic)


class DiskIO:
    """The store's copy threads and the queue of finished jobs the loop collects."""

    def __init__(self, *, chunk_delay_s: float = 0.0) -> None:
        # Only tests set a delay: it makes each chunk as slow as a disk under pressure.
        self._chunk_delay_s = chunk_delay_s
        self._spills: queue.SimpleQueue[IOJob | str | None] = queue.SimpleQueue()
        self._restores: queue.SimpleQueue[IOJob | str | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[IOJob] = queue.SimpleQueue()
        self._ready_read, self._ready_write = os.pipe()
        os.set_blocking(self._ready_read, False)
        os.set_blocking(self._ready_write, False)
        self._threads: list[threading.Thread] = []  # started at the first job
        self._closed = False

    @property
    def ready_fd(self) -> int:
        """Readable when finished jobs wait to be collected."""
        return self._ready_read

    def submit(self, job: IOJob) -> None:
        self._start()
        (self._spills if job.kind == "spill" else self._restores).put(job)

    def remove(self, path: str) -> None:
        """Delete a file on disk off the loop (a large unlink can wait for the disk)."""
        self._start()
        self._spills.put(path)

    def _start(self) -> None:
        if self._threads:
            return
        for name, jobs in (("nebula-spill", self._spills), ("nebula-restore", self._restores)):
            thread = threading.Thread(target=self._run, args=(jobs,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def collect(self) -> list[IOJob]:
        """The jobs finished since the last call, in the order they finished."""
        try:
            while os.read(self._ready_read, 4096):
                pass
        except BlockingIOError:
            pass
        finished = []
        while True:
            try:
                finished.append(self._done.get_nowait())
            except queue.Empty:
                return finished

    def wait(self, timeout_s: float) -> None:
        """Block until a finished job waits to be collected, or the timeout passed."""
        select.select([self._ready_read], [], [], timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._spills.put(None)
        self._restores.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            return  # stuck on the disk: its pipe stays open for it (the process is ending)
        os.close(self._ready_read)
        os.close(self._ready_write)

    # -------------------------------------------------------------- threads

    def _run(self, jobs: queue.SimpleQueue[IOJob | str | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            if isinstance(job, str):
                _remove(job)
                continue
            try:
                if job.kind == "spill":
                    self._spill(job)
                else:
                    self._restore(job)
            except OSError as exc:
                job.error = f"{exc.strerror or exc} ({exc.filename or job.target})"
                _remove(job.target)
            except _Cancelled:
                _remove(job.target)
            except Exception as exc:  # never let the thread die with a job unanswered
                logger.exception("copying object %s failed", job.object_id.hex())
                job.error = repr(exc)
                _remove(job.target)
            self._done.put(job)
            try:
                os.write(self._ready_write, b"\0")
            except (BlockingIOError, OSError):
                pass  # the pipe is full (a wake-up is pending anyway) or closed

    def _spill(self, job: IOJob) -> None:
        os.makedirs(os.path.dirname(job.target), mode=0o700, exist_ok=True)
        try:
            source = os.open(job.source, os.O_RDONLY)
        except FileNotFoundError:
            job.source_gone = True
            raise _Cancelled from None
        try:
            target = os.open(job.target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                unwritten: deque[tuple[int, int]] = deque()
                unwritten_bytes = 0
                for offset, length in self._chunks(job):
                    _send_all(target, source, offset, length)
                    _start_writeback(target, offset, length)
                    unwritten.append((offset, length))
                    unwritten_bytes += length
                    while unwritten_bytes > DIRTY_WINDOW_BYTES:
                        done_offset, done_length = unwritten.popleft()
                        _finish_writeback(target, done_offset, done_length)
                        unwritten_bytes -= done_length
            finally:
                os.close(target)
        finally:
            os.close(source)

    def _restore(self, job: IOJob) -> None:
        source = os.open(job.source, os.O_RDONLY)
        try:
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(source, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            target = os.open(job.target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for offset, length in self._chunks(job):
                    _send_all(target, source, offset, length)
            finally:
                os.close(target)
        finally:
            os.close(source)
        if job.cancelled:
            raise _Cancelled
        # Readers map the object by its name: it appears there complete, never half written.
        os.rename(job.target, job.final)

    def _chunks(self, job: IOJob) -> Iterator[tuple[int, int]]:
        """The object's chunks in order; stops the copy once its job is cancelled."""
        for offset in range(0, job.size, CHUNK_BYTES):
            if job.cancelled or self._closed:
                raise _Cancelled
            if self._chunk_delay_s:
                time.sleep(self._chunk_delay_s)
            yield offset, min(CHUNK_BYTES, job.size - offset)


class _Cancelled(Exception):
    """The object was freed while its bytes were being copied (or before a spill began)."""


def _send_all(target: int, source: int, offset: int, length: int) -> None:
    end = offset + length
    while offset < end:
        sent = os.sendfile(target, source, offset, end - offset)
        if sent == 0:
            raise OSError(0, "the object's file ended early")
        offset += sent


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove %s: %s", path, exc)
