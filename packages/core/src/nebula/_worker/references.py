"""What a process knows about each object and actor it references.

The process that creates an object *owns* it: it holds its value (or where the value lives),
counts the references to it, and frees it once none is left anywhere. Other processes
*borrow* it: the owner keeps their addresses and they tell it when they are done.
A count here is the number of live ``ObjectRef``/``ActorHandle`` instances in this process
plus the objects that contain this one (``pins``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from nebula._protocol import ObjectValue


@dataclass(slots=True)
class Entry:
    object_id: bytes
    owner: str
    owned: bool
    is_actor: bool = False
    value: ObjectValue | None = None
    local_refs: int = 0
    pins: int = 0
    borrowers: set[str] = field(default_factory=set)
    # Borrowed entries: whether we asked the owner for the value / told it we borrow.
    requested: bool = False
    registered: bool = False
    # Owned entries: processes waiting for the value.
    waiters: list[str] = field(default_factory=list)
    callbacks: list[Callable[[ObjectValue], None]] = field(default_factory=list)
    # Python objects kept alive as long as this entry (refs inside a put value).
    keep_alive: list[object] = field(default_factory=list)
    # Owned entries whose value came from a task: refs the value contains.
    contained: tuple[tuple[bytes, str], ...] = ()
    # The read-only mapping of a shared-memory value, shared by every get() in this process.
    mapping: memoryview | None = None
    # Owned shared-memory values: other nodes holding a copy (node id -> node manager).
    copies: dict[bytes, str] = field(default_factory=dict)
    # Owned shared-memory values: pulls in progress, reader node -> (holders, started).
    pulls: dict[bytes, tuple[tuple[bytes, ...], float]] | None = None
    # Owned task returns in shared memory: the finished task, kept to rebuild a lost value.
    lineage: Any = None

    def in_use(self) -> bool:
        return self.local_refs > 0 or self.pins > 0 or bool(self.borrowers)


class Release(Enum):
    """What to do about an entry nothing references any more (see ``ReferenceTable.collect``)."""

    FREE_VALUE = "free the owned value (and unpin the refs it contains)"
    ACTOR_OUT_OF_SCOPE = "the owned actor has no handle left anywhere: end it"
    RETURN_BORROW = "tell the owner this process no longer borrows the object"
    FORGET_BORROW = "drop the entry; the owner never heard of this borrow"


class ReferenceTable:
    """Entries by id, and the counting rules: when an entry is released and how.

    Pure bookkeeping (no messages): the core worker holds its lock around every call and
    carries out the ``Release`` each transition returns, so the rules are tested alone.
    """

    def __init__(self, my_address: str) -> None:
        self.my_address = my_address
        self.entries: dict[bytes, Entry] = {}

    def get(self, object_id: bytes) -> Entry | None:
        return self.entries.get(object_id)

    def owned(self, object_id: bytes, *, is_actor: bool = False) -> Entry:
        entry = self.entries.get(object_id)
        if entry is None:
            entry = Entry(object_id, self.my_address, True, is_actor=is_actor)
            self.entries[object_id] = entry
        return entry

    def reference(self, object_id: bytes, owner: str, *, is_actor: bool = False) -> Entry:
        """The entry for a ref seen in this process, made on first sight."""
        entry = self.entries.get(object_id)
        if entry is None:
            owned = owner == self.my_address
            entry = Entry(object_id, owner, owned, is_actor=is_actor)
            self.entries[object_id] = entry
        return entry

    def remove(self, object_id: bytes) -> None:
        self.entries.pop(object_id, None)

    # ------------------------------------------------------------ transitions

    def add_local_ref(self, object_id: bytes, owner: str, *, is_actor: bool = False) -> bool:
        """A new ObjectRef or handle in this process; True when the owner must now be told
        this process borrows it (the first ref to a borrowed object)."""
        entry = self.reference(object_id, owner, is_actor=is_actor)
        entry.local_refs += 1
        if entry.owned or entry.registered:
            return False
        entry.registered = True
        return True

    def drop_local_ref(self, object_id: bytes) -> tuple[Entry, Release] | None:
        entry = self.entries.get(object_id)
        if entry is None:
            return None
        entry.local_refs -= 1
        return self._released(entry)

    def pin(self, object_id: bytes, owner: str) -> None:
        """Another object this process holds contains this one (its owner was told)."""
        entry = self.reference(object_id, owner)
        entry.pins += 1
        entry.registered = True

    def unpin(self, object_id: bytes) -> tuple[Entry, Release] | None:
        entry = self.entries.get(object_id)
        if entry is None:
            return None
        entry.pins -= 1
        return self._released(entry)

    def add_borrower(self, object_id: bytes, borrower: str) -> None:
        entry = self.entries.get(object_id)
        if entry is not None and borrower != self.my_address:
            entry.borrowers.add(borrower)

    def remove_borrower(self, object_id: bytes, borrower: str) -> tuple[Entry, Release] | None:
        entry = self.entries.get(object_id)
        if entry is None:
            return None
        entry.borrowers.discard(borrower)
        return self._released(entry)

    def collect(self, entry: Entry) -> tuple[Entry, Release] | None:
        """Release ``entry`` if nothing references it (a value just arrived for it)."""
        return self._released(entry)

    def _released(self, entry: Entry) -> tuple[Entry, Release] | None:
        if entry.in_use():
            return None
        if entry.owned:
            if entry.is_actor:
                self.remove(entry.object_id)
                return entry, Release.ACTOR_OUT_OF_SCOPE
            if entry.value is None:
                return None  # freed when the producing task's result arrives
            self.remove(entry.object_id)
            return entry, Release.FREE_VALUE
        self.remove(entry.object_id)
        return entry, Release.RETURN_BORROW if entry.registered else Release.FORGET_BORROW
