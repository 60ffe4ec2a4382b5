"""The node's object store bookkeeping: capacity, eviction, spilling and restoring.

Writers reserve room before they write. When the store is full, copies of objects whose
primary lives on another node are evicted first (they can be fetched again), then primary
objects are spilled to local disk, least recently used first; a reader that finds an
object spilled asks for it back and it is restored. A value larger than the whole store
is written to a file on local disk instead (as Ray's fallback allocation does) and read
from there through the page cache; it never counts against the store's memory.

Large freed objects' files are kept for reuse when no process still maps them: a writer
that overwrites pages the kernel already allocated writes several times faster than one
that makes it allocate (and zero) fresh pages. The kept files count as used memory and are
the first to go when room is needed.

Spills and restores copy on threads (``disk_io``), never on the node manager's loop: an
object being spilled stays in memory, readable and counted, until its file is complete;
a reservation that needs room the spills under way will make waits for them
(``make_room`` says so) instead of failing; a spill that fails leaves its object in
memory, and the store refuses room with the disk's error rather than lose anything.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from nebula._object_store import shm
from nebula._object_store.disk_io import DiskIO, IOJob
from nebula._protocol import ShmLocation

logger = logging.getLogger(__name__)

# Freed files smaller than this are not worth keeping: small writes are cheap anyway.
_REUSE_MIN_BYTES = 1 << 20
# Kept files hold at most this share of the store (and never more than the cap).
_REUSE_SHARE = 4
_REUSE_CAP_BYTES = 4 << 30
# An object whose spill failed is not tried again for this long (the disk is full or broken).
_SPILL_RETRY_S = 5.0


@dataclass
class StoredObject:
    location: ShmLocation
    is_copy: bool
    spilled_path: str | None = None
    last_used: float = field(default_factory=time.monotonic)
    # Written straight to disk: larger than the whole store (see reserve_on_disk).
    on_disk: bool = False
    # The copy under way to or from disk, if any (see disk_io).
    spilling: IOJob | None = None
    restoring: IOJob | None = None
    spill_failed_at: float | None = None
    # When a spill found its file gone (``IOJob.source_gone``): the owner is freeing it.
    leaving_since: float | None = None

    @property
    def in_memory(self) -> bool:
        return self.spilled_path is None

    def spillable(self, now: float) -> bool:
        return (
            self.in_memory
            and not self.on_disk
            and self.spilling is None
            and (self.spill_failed_at is None or now - self.spill_failed_at >= _SPILL_RETRY_S)
            and not self.leaving(now)
        )

    def leaving(self, now: float) -> bool:
        """Whether the owner's word that it freed the object is expected any moment."""
        return self.leaving_since is not None and now - self.leaving_since < _SPILL_RETRY_S


class StoreFull(Exception):
    """No room can be made for a reservation."""


class RoomPending(Exception):
    """Room for a reservation or a restore comes once the copies under way finish.

    The caller asks again after ``collect_io`` (the node manager queues the request).
    """


@dataclass(frozen=True)
class Restored:
    """A restore finished: the object is in memory at ``location``, or ``error`` says why not."""

    object_id: bytes
    location: ShmLocation | None
    error: str | None = None


@dataclass
class _FreedFile:
    path: str
    size: int


class ObjectStore:
    def __init__(
        self,
        capacity: int,
        spill_dir: str,
        *,
        session_tag: str = "",
        node_id: bytes = b"",
        spill_chunk_delay_s: float = 0.0,
    ) -> None:
        self.capacity = capacity
        self.spill_dir = spill_dir
        self.io = DiskIO(chunk_delay_s=spill_chunk_delay_s)
        # Bytes of spills under way (still in memory) and of restores under way (counted in
        # ``used`` from the start: their room is taken).
        self.spilling_bytes = 0
        self.restoring_bytes = 0
        self.spill_error: str | None = None
        self._copy_numbers = itertools.count()
        self.objects: dict[bytes, StoredObject] = {}
        self.reserved: dict[bytes, int] = {}
        self._disk_reserved: set[bytes] = set()
        self.used = 0
        self._session_tag = session_tag
        self._node_id = node_id
        self._freed: deque[_FreedFile] = deque()  # oldest first
        # Files owners kept from freed objects for their next writes (path -> size).
        self._retained: OrderedDict[str, int] = OrderedDict()
        self.freed_bytes = 0
        self._freed_numbers = itertools.count()
        self._reuse_limit = min(capacity // _REUSE_SHARE, _REUSE_CAP_BYTES) if session_tag else 0

    def available_bytes(self) -> int:
        """Bytes new objects can take now. Freed files kept for reuse are not subtracted:
        they are dropped as soon as room is needed."""
        return max(0, self.capacity - self.used - self._reserved_total())

    def must_wait(self, size: int, object_id: bytes | None = None) -> bool:
        """Whether ``size`` bytes fit only once objects being written now are sealed.

        Sealed objects can always be spilled (and kept files dropped) to make room; the
        room other writers have reserved cannot be taken until they finish.
        """
        others = self._reserved_total() - (self.reserved.get(object_id, 0) if object_id else 0)
        return others > 0 and others + size > self.capacity

    # ------------------------------------------------------------ reservations

    def reserve(self, object_id: bytes, size: int, retained_path: str | None = None) -> bool:
        """Set aside ``size`` bytes for an object about to be written.

        Raises StoreFull when no room can be made, RoomPending when spills under way will
        make it. ``retained_path``: a file its owner kept (``keep_for_owner``) and now
        writes into; it stops being counted apart. Returns True when a freed file was moved
        to the object's path for the writer to overwrite.
        """
        retained = self._retained.pop(retained_path, 0) if retained_path is not None else 0
        self.freed_bytes -= retained
        if size > self.capacity:
            raise StoreFull(
                f"an object of {size:,} bytes cannot fit in this node's object store of "
                f"{self.capacity:,} bytes (object_store_memory); store it in smaller pieces "
                "or start the node with more object_store_memory"
            )
        # A freed file is moved to the object's path, replacing whatever is there: never
        # while another writer fills that path (two readers pulling the same object) or the
        # object is stored, or its readers would see the freed file's old bytes.
        busy = object_id in self.reserved or object_id in self.objects
        freed = self._take_freed(size) if retained_path is None and not busy else None
        try:
            self._make_room(size, keep=object_id)
        except (StoreFull, RoomPending):
            if freed is not None:
                self._keep_freed(freed)
            if retained_path is not None and retained:
                self._retained[retained_path] = retained  # counted until the write starts
                self.freed_bytes += retained
            raise
        self.reserved[object_id] = self.reserved.get(object_id, 0) + size
        if freed is None:
            return False
        try:
            os.rename(freed.path, shm.object_path(self._session_tag, object_id, self._node_id))
        except OSError:
            _remove(freed.path)
            return False
        return True

    def reserve_on_disk(self, object_id: bytes) -> str:
        """Where an object larger than the whole store is written instead of memory."""
        os.makedirs(self.spill_dir, mode=0o700, exist_ok=True)
        self._disk_reserved.add(object_id)
        return os.path.join(self.spill_dir, f"large-{object_id.hex()}")

    def seal(self, location: ShmLocation, *, is_copy: bool) -> None:
        self.reserved.pop(location.object_id, None)
        if location.object_id in self.objects:
            return
        if location.object_id in self._disk_reserved:
            self._disk_reserved.discard(location.object_id)
            self.objects[location.object_id] = StoredObject(location, is_copy, on_disk=True)
            return
        self.objects[location.object_id] = StoredObject(location, is_copy)
        self.used += location.size

    def cancel(self, object_id: bytes) -> None:
        self.reserved.pop(object_id, None)
        self._disk_reserved.discard(object_id)

    def free(self, object_id: bytes) -> None:
        self.reserved.pop(object_id, None)
        stored = self.objects.pop(object_id, None)
        if stored is None:
            if object_id in self._disk_reserved:
                self._disk_reserved.discard(object_id)
                self.io.remove(os.path.join(self.spill_dir, f"large-{object_id.hex()}"))
            return
        spilling = stored.spilling is not None
        self._stop_copies(stored)
        if stored.on_disk:
            self.io.remove(stored.location.path)
        elif stored.in_memory:
            self.used -= stored.location.size
            # A spill's thread still has the file open: it cannot be handed to a writer.
            if spilling or not self._keep_for_reuse(stored.location):
                shm.delete_object(stored.location.path)
        else:
            assert stored.spilled_path is not None
            self.io.remove(stored.spilled_path)

    def _stop_copies(self, stored: StoredObject) -> None:
        """The object leaves the store: its copies under way stop, their room comes back."""
        if stored.spilling is not None:
            stored.spilling.cancelled = True
            stored.spilling = None
            self.spilling_bytes -= stored.location.size
        if stored.restoring is not None:
            stored.restoring.cancelled = True
            stored.restoring = None
            self.restoring_bytes -= stored.location.size
            self.used -= stored.location.size

    # ------------------------------------------------------------------ access

    def start_restore(self, object_id: bytes) -> ShmLocation | None:
        """Bring a spilled object back into memory, making room if needed.

        Returns its location when it is in memory now (one being spilled still is), None
        when its restore is under way (``collect_io`` reports it when done). Raises
        KeyError for an object not here, StoreFull or RoomPending as ``reserve`` does.
        """
        stored = self.objects.get(object_id)
        if stored is None:
            raise KeyError(object_id)
        stored.last_used = time.monotonic()
        if stored.in_memory:
            return stored.location
        if stored.restoring is not None:
            return None
        size = stored.location.size
        self._make_room(size, keep=object_id)
        assert stored.spilled_path is not None
        job = IOJob(
            "restore",
            object_id,
            stored.spilled_path,
            self._restore_path(stored.location.path),
            size,
            final=stored.location.path,
        )
        stored.restoring = job
        self.used += size
        self.restoring_bytes += size
        self.io.submit(job)
        return None

    def _restore_path(self, final: str) -> str:
        """Where a restore writes before its object appears under its own name: beside it,
        named as the node's files are (so the node's cleanup finds it)."""
        name = f"nebula-{self._session_tag}-restore{next(self._copy_numbers):x}-"
        return os.path.join(os.path.dirname(final), name + self._node_id.hex()[:8])

    def spilled_size(self, object_id: bytes) -> int | None:
        """The size of a spilled object a restore has to make room for (None: nothing to do)."""
        stored = self.objects.get(object_id)
        if stored is None or stored.in_memory or stored.restoring is not None:
            return None
        return stored.location.size

    def file_of(self, object_id: bytes) -> str | None:
        """The file holding the object's bytes now (in memory or spilled), if stored here.

        Called from the bulk transfer threads: it only reads the table.
        """
        stored = self.objects.get(object_id)
        if stored is None:
            return None
        stored.last_used = time.monotonic()
        return stored.spilled_path or stored.location.path

    def read_chunk(self, object_id: bytes, offset: int, length: int) -> bytes:
        stored = self.objects.get(object_id)
        if stored is None:
            raise KeyError(object_id)
        stored.last_used = time.monotonic()
        path = stored.location.path if stored.in_memory else stored.spilled_path
        assert path is not None
        with open(path, "rb") as f:
            return os.pread(f.fileno(), length, offset)

    # ------------------------------------------------------------ copies done

    def collect_io(self) -> list[Restored]:
        """Apply the copies that finished since the last call; returns the restores."""
        restored = []
        for job in self.io.collect():
            if job.kind == "spill":
                self._spill_finished(job)
            else:
                result = self._restore_finished(job)
                if result is not None:
                    restored.append(result)
        return restored

    def _holder(self, job: IOJob) -> StoredObject | None:
        stored = self.objects.get(job.object_id)
        if stored is None or job not in (stored.spilling, stored.restoring):
            return None  # freed (or kept by its owner) while the copy ran
        return stored

    def _spill_finished(self, job: IOJob) -> None:
        stored = self._holder(job)
        if stored is None:
            if job.error is None:
                self.io.remove(job.target)
            return
        stored.spilling = None
        self.spilling_bytes -= job.size
        if job.source_gone:
            # Its owner renamed the file to write its next value there; the KeepFreed on its
            # way frees the room, which reservations wait for (_make_room counts it).
            stored.leaving_since = time.monotonic()
            return
        if job.error is not None:
            stored.spill_failed_at = time.monotonic()
            self.spill_error = f"spilling to {self.spill_dir} failed: {job.error}"
            logger.error(
                "object %s (%d bytes) stays in memory: %s",
                job.object_id.hex(),
                job.size,
                self.spill_error,
            )
            return
        self.spill_error = None
        shm.delete_object(stored.location.path)  # only now: its file on disk is complete
        stored.spilled_path = job.target
        self.used -= job.size
        logger.debug(
            "spilled %s (%d bytes) to %s in %.3f s",
            job.object_id.hex(),
            job.size,
            job.target,
            time.monotonic() - job.started,
        )

    def _restore_finished(self, job: IOJob) -> Restored | None:
        stored = self._holder(job)
        if stored is None:
            if job.error is None:
                shm.delete_object(job.final)
            return None
        stored.restoring = None
        self.restoring_bytes -= job.size
        if job.error is not None:
            self.used -= job.size
            logger.error("could not restore object %s: %s", job.object_id.hex(), job.error)
            return Restored(job.object_id, None, f"restoring it from disk failed: {job.error}")
        self.io.remove(job.source)
        stored.spilled_path = None
        stored.last_used = time.monotonic()
        return Restored(job.object_id, stored.location)

    # ------------------------------------------------------------- freed files

    def _keep_for_reuse(self, location: ShmLocation) -> bool:
        size = location.size
        if size < _REUSE_MIN_BYTES or size > self._reuse_limit:
            return False
        if shm.mapped_elsewhere(location.path):
            return False  # a reader may still look at these pages: they must not change
        while self._freed and self.freed_bytes + size > self._reuse_limit:
            self._drop_oldest_freed()
        kept = _FreedFile(
            shm.pool_path(self._session_tag, self._node_id, next(self._freed_numbers)), size
        )
        try:
            os.rename(location.path, kept.path)
        except OSError:
            return False
        self._keep_freed(kept)
        return True

    def keep_for_owner(self, object_id: bytes, path: str, size: int) -> None:
        """An owner kept a freed object's file (now at ``path``) to write its next value."""
        self.reserved.pop(object_id, None)
        stored = self.objects.pop(object_id, None)
        if stored is not None:
            self._stop_copies(stored)
        if stored is not None and stored.on_disk:
            pass  # the owner took over the file
        elif stored is not None and stored.in_memory:
            self.used -= stored.location.size
        elif stored is not None and stored.spilled_path is not None:
            self.io.remove(stored.spilled_path)
        self._retained[path] = size
        self.freed_bytes += size

    def _keep_freed(self, freed: _FreedFile) -> None:
        self._freed.append(freed)
        self.freed_bytes += freed.size

    def _take_freed(self, size: int) -> _FreedFile | None:
        """The kept file closest in size to ``size`` (within half to twice), if any."""
        fits = [f for f in self._freed if size // 2 <= f.size <= 2 * size]
        if not fits:
            return None
        best = min(fits, key=lambda f: abs(f.size - size))
        self._freed.remove(best)
        self.freed_bytes -= best.size
        return best

    def _drop_oldest_freed(self) -> None:
        if self._freed:
            freed = self._freed.popleft()
            self.freed_bytes -= freed.size
            _remove(freed.path)
        else:  # the owner notices the file gone and lets go of its pages
            path, size = self._retained.popitem(last=False)
            self.freed_bytes -= size
            _remove(path)

    def drop_freed(self) -> None:
        while self._freed or self._retained:
            self._drop_oldest_freed()

    # ---------------------------------------------------------------- eviction

    def _reserved_total(self) -> int:
        return sum(self.reserved.values())

    def _make_room(self, size: int, keep: bytes) -> None:
        """Make ``size`` bytes free now, or raise RoomPending when copies under way will.

        Copies of other nodes' objects are dropped at once; primaries are spilled (least
        recently used first) only as far as the spills already under way fall short.
        """
        if self.used + self._reserved_total() + self.freed_bytes + size <= self.capacity:
            return
        while (self._freed or self._retained) and (
            self.used + self._reserved_total() + self.freed_bytes + size > self.capacity
        ):
            self._drop_oldest_freed()
        excess = self.used + self._reserved_total() + size - self.capacity
        if excess <= 0:
            return
        now = time.monotonic()
        candidates = sorted(
            (s for oid, s in self.objects.items() if oid != keep and s.spillable(now)),
            key=lambda s: (not s.is_copy, s.last_used),
        )
        for stored in candidates:
            if excess - self.spilling_bytes <= 0:
                break
            if stored.is_copy:
                self._evict_copy(stored)
            else:
                self._start_spill(stored)
            excess -= stored.location.size if stored.is_copy else 0
        if excess <= 0:
            return
        # Restores under way take room now but their objects can be spilled again later.
        leaving = sum(s.location.size for s in self.objects.values() if s.leaving(now))
        if excess - self.spilling_bytes - self.restoring_bytes - leaving <= 0:
            raise RoomPending
        detail = f"; {self.spill_error}" if self.spill_error else ""
        raise StoreFull(
            f"the object store is full: {self.used:,} bytes stored and "
            f"{self._reserved_total():,} being written of {self.capacity:,}; "
            f"{size:,} more bytes do not fit{detail}"
        )

    def _evict_copy(self, stored: StoredObject) -> None:
        del self.objects[stored.location.object_id]
        self.used -= stored.location.size
        shm.delete_object(stored.location.path)

    def _start_spill(self, stored: StoredObject) -> None:
        target = os.path.join(
            self.spill_dir,
            f"{stored.location.object_id.hex()}-{next(self._copy_numbers):x}",
        )
        job = IOJob(
            "spill", stored.location.object_id, stored.location.path, target, stored.location.size
        )
        stored.spilling = job
        self.spilling_bytes += job.size
        self.io.submit(job)

    def close(self) -> None:
        self.io.close()
        self.drop_freed()
        shutil.rmtree(self.spill_dir, ignore_errors=True)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
