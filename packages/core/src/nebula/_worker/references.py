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
    # Owned task returns in shared memory: the finished task, kept to rebuild a lost value.
    lineage: Any = None

    def in_use(self) -> bool:
        return self.local_refs > 0 or self.pins > 0 or bool(self.borrowers)


class ReferenceTable:
    """Entries by id; the caller holds the core worker's lock."""

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
