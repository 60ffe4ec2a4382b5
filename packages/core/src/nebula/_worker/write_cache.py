"""Freed objects' shared memory, kept mapped in the owner for its next large ``put``.

Writing into a fresh shared-memory file makes the kernel allocate and zero every page and
fill a page table for it: that, not the copy, bounds a large ``put``. When an object this
process owns is freed and no other process has its file open or mapped, the owner keeps the
file (renamed out of the object's name) mapped with its page table filled. The next put of
a similar size takes it back: the copy into it runs at memory bandwidth.

"No other process" is checked with a write lease on the owner's own descriptor: the kernel
grants one only when no other open file description of the file exists, and every mapping
holds one. So a value a reader still looks at (a zero-copy numpy view) is never reused.

The node's store counts kept files as used memory (``KeepFreed``) and may delete them when
it needs room; the owner notices the file gone and drops its mapping.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nebula import _protocol as p
from nebula._object_store import shm
from nebula._serialization import Serialized

# Smaller values are cheap to write anyway.
_MIN_BYTES = 1 << 20
_MAX_FILES = 4
_MAX_BYTES = 2 << 30
# Buffers at least this big are copied by two threads: one core alone does not reach the
# memory's bandwidth (measured here: 20 GB/s with one thread, 27 with two).
_PARALLEL_COPY_BYTES = 32 << 20


@dataclass
class _Kept:
    fd: int
    mapping: mmap.mmap
    capacity: int
    path: str

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.mapping.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


class WriteCache:
    def __init__(self, session_tag: str, node_id: bytes) -> None:
        self._session_tag = session_tag
        self._node_id = node_id
        self._kept: list[_Kept] = []  # freed files, under pool names, oldest first
        self._live: dict[bytes, _Kept] = {}  # objects written through a kept mapping
        self._numbers = itertools.count()

    def take(self, object_id: bytes, size: int) -> tuple[_Kept, str] | None:
        """A kept file to write an object of ``size`` bytes into, moved to its name.

        Returns it with the pool name it had (the store stops counting that), or None.
        """
        fits = [k for k in self._kept if size <= k.capacity <= 2 * size]
        if size < _MIN_BYTES or not fits:
            return None
        kept = min(fits, key=lambda k: k.capacity)
        self._kept.remove(kept)
        pool_path = kept.path
        kept.path = shm.object_path(self._session_tag, object_id, self._node_id)
        try:
            os.rename(pool_path, kept.path)
        except OSError:  # the store reclaimed it
            kept.close()
            return None
        return kept, pool_path

    def write(self, kept: _Kept, object_id: bytes, value: Serialized) -> None:
        os.ftruncate(kept.fd, value.total_size)  # readers see exactly the value's bytes
        view = memoryview(kept.mapping)[: value.total_size]
        try:
            value.write_into(view, _copy)
        finally:
            view.release()
        self._live[object_id] = kept

    def abandon(self, kept: _Kept) -> None:
        """A taken file whose write failed: remove it (the store no longer counts it)."""
        kept.close()
        with contextlib.suppress(OSError):
            os.unlink(kept.path)

    def keep_freed(self, location: p.ShmLocation) -> str | None:
        """Keep a freed object's file if nobody else maps it; returns its new path."""
        kept = self._live.pop(location.object_id, None)
        if location.node_id != self._node_id or location.size < _MIN_BYTES:
            if kept is not None:
                kept.close()
            return None
        if kept is None:
            held = sum(k.capacity for k in [*self._kept, *self._live.values()])
            if len(self._kept) + len(self._live) >= _MAX_FILES or (
                held + location.size > _MAX_BYTES
            ):
                return None
            kept = _open_for_keeping(location)
            if kept is None:
                return None
        pool_path = shm.pool_path(
            self._session_tag, self._node_id, os.getpid() << 24 | next(self._numbers)
        )
        if not shm.unobserved(kept.fd):
            kept.close()
            return None
        try:
            os.rename(kept.path, pool_path)
        except OSError:
            kept.close()
            return None
        kept.path = pool_path
        self._kept.append(kept)
        return pool_path

    def prune(self) -> None:
        """Drop mappings of files the store deleted (to make room, or spilled to disk)."""
        for kept in [k for k in self._kept if not os.path.exists(k.path)]:
            self._kept.remove(kept)
            kept.close()
        for object_id, kept in list(self._live.items()):
            if not os.path.exists(kept.path):
                del self._live[object_id]
                kept.close()

    def close(self) -> None:
        for kept in [*self._kept, *self._live.values()]:
            kept.close()
        self._kept.clear()
        self._live.clear()


_copier: ThreadPoolExecutor | None = None


def _copy(dest: memoryview, src: memoryview) -> None:
    """Copy ``src`` into ``dest``, a large one in two halves at once (numpy drops the GIL)."""
    global _copier
    if dest.nbytes < _PARALLEL_COPY_BYTES or (os.cpu_count() or 1) < 2:
        dest[:] = src
        return
    try:
        import numpy as np
    except ImportError:
        dest[:] = src
        return
    target = np.frombuffer(dest, dtype=np.uint8)
    source = np.frombuffer(src, dtype=np.uint8)  # raw(): contiguous bytes
    half = (len(target) // 2) & ~63
    if _copier is None:
        _copier = ThreadPoolExecutor(1, thread_name_prefix="nebula-copy")
    other = _copier.submit(np.copyto, target[half:], source[half:])
    np.copyto(target[:half], source[:half])
    other.result()


def _open_for_keeping(location: p.ShmLocation) -> _Kept | None:
    try:
        fd = os.open(location.path, os.O_RDWR)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size != location.size:
            raise OSError("not the object's file")
        mapping = mmap.mmap(fd, location.size, flags=mmap.MAP_SHARED | _POPULATE)
    except (OSError, ValueError):
        os.close(fd)
        return None
    return _Kept(fd, mapping, location.size, location.path)


_POPULATE: int = getattr(mmap, "MAP_POPULATE", 0)
