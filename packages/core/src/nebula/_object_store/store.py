"""The node's object store bookkeeping: capacity, eviction, spilling and restoring.

Writers reserve room before they write. When the store is full, copies of objects whose
primary lives on another node are evicted first (they can be fetched again), then primary
objects are spilled to local disk, least recently used first; a reader that finds an
object spilled asks for it back and it is restored. A value that can never fit is refused
with the sizes involved.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field

from nebula._object_store import shm
from nebula._protocol import ShmLocation

logger = logging.getLogger(__name__)


@dataclass
class StoredObject:
    location: ShmLocation
    is_copy: bool
    spilled_path: str | None = None
    last_used: float = field(default_factory=time.monotonic)

    @property
    def in_memory(self) -> bool:
        return self.spilled_path is None


class StoreFull(Exception):
    """No room can be made for a reservation."""


class ObjectStore:
    def __init__(self, capacity: int, spill_dir: str) -> None:
        self.capacity = capacity
        self.spill_dir = spill_dir
        self.objects: dict[bytes, StoredObject] = {}
        self.reserved: dict[bytes, int] = {}
        self.used = 0

    # ------------------------------------------------------------ reservations

    def reserve(self, object_id: bytes, size: int) -> None:
        """Set aside ``size`` bytes for an object about to be written; raises StoreFull."""
        if size > self.capacity:
            raise StoreFull(
                f"an object of {size:,} bytes cannot fit in this node's object store of "
                f"{self.capacity:,} bytes (object_store_memory); store it in smaller pieces "
                "or start the node with more object_store_memory"
            )
        self._make_room(size, keep=object_id)
        self.reserved[object_id] = self.reserved.get(object_id, 0) + size

    def seal(self, location: ShmLocation, *, is_copy: bool) -> None:
        self.reserved.pop(location.object_id, None)
        if location.object_id in self.objects:
            return
        self.objects[location.object_id] = StoredObject(location, is_copy)
        self.used += location.size

    def cancel(self, object_id: bytes) -> None:
        self.reserved.pop(object_id, None)

    def free(self, object_id: bytes) -> None:
        self.reserved.pop(object_id, None)
        stored = self.objects.pop(object_id, None)
        if stored is None:
            return
        if stored.in_memory:
            self.used -= stored.location.size
            shm.delete_object(stored.location.path)
        else:
            assert stored.spilled_path is not None
            _remove(stored.spilled_path)

    # ------------------------------------------------------------------ access

    def restore(self, object_id: bytes) -> ShmLocation:
        """Bring a spilled object back into memory (making room if needed)."""
        stored = self.objects.get(object_id)
        if stored is None:
            raise KeyError(object_id)
        stored.last_used = time.monotonic()
        if stored.in_memory:
            return stored.location
        self._make_room(stored.location.size, keep=object_id)
        assert stored.spilled_path is not None
        shutil.copyfile(stored.spilled_path, stored.location.path)
        os.chmod(stored.location.path, 0o600)
        _remove(stored.spilled_path)
        stored.spilled_path = None
        self.used += stored.location.size
        return stored.location

    def read_chunk(self, object_id: bytes, offset: int, length: int) -> bytes:
        stored = self.objects.get(object_id)
        if stored is None:
            raise KeyError(object_id)
        stored.last_used = time.monotonic()
        path = stored.location.path if stored.in_memory else stored.spilled_path
        assert path is not None
        with open(path, "rb") as f:
            return os.pread(f.fileno(), length, offset)

    # ---------------------------------------------------------------- eviction

    def _reserved_total(self) -> int:
        return sum(self.reserved.values())

    def _make_room(self, size: int, keep: bytes) -> None:
        if self.used + self._reserved_total() + size <= self.capacity:
            return
        candidates = sorted(
            (s for oid, s in self.objects.items() if s.in_memory and oid != keep),
            key=lambda s: (not s.is_copy, s.last_used),
        )
        for stored in candidates:
            if self.used + self._reserved_total() + size <= self.capacity:
                return
            if stored.is_copy:
                self._evict_copy(stored)
            else:
                self._spill(stored)
        if self.used + self._reserved_total() + size > self.capacity:
            raise StoreFull(
                f"the object store is full: {self.used:,} bytes stored and "
                f"{self._reserved_total():,} being written of {self.capacity:,}; "
                f"{size:,} more bytes do not fit"
            )

    def _evict_copy(self, stored: StoredObject) -> None:
        del self.objects[stored.location.object_id]
        self.used -= stored.location.size
        shm.delete_object(stored.location.path)

    def _spill(self, stored: StoredObject) -> None:
        os.makedirs(self.spill_dir, mode=0o700, exist_ok=True)
        target = os.path.join(self.spill_dir, os.path.basename(stored.location.path))
        shutil.copyfile(stored.location.path, target)
        shm.delete_object(stored.location.path)
        stored.spilled_path = target
        self.used -= stored.location.size
        logger.info(
            "spilled %s (%d bytes) to %s",
            stored.location.object_id.hex(),
            stored.location.size,
            target,
        )

    def close(self) -> None:
        shutil.rmtree(self.spill_dir, ignore_errors=True)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
