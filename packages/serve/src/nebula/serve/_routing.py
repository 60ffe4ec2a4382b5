"""Which replica gets the next request: the pure part of a router, testable without sockets.

Power of two choices: of the replicas with room (fewer than ``max_ongoing_requests`` of this
caller's requests in flight, and not recently found full), pick two at random and take the
one with fewer requests in flight. When none has room the request waits in the caller's
queue; the router wakes it when a request finishes or the replica set changes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass

# How long a replica that turned a request away (full because of other callers) is skipped.
FULL_BACKOFF_S = 0.01


@dataclass(frozen=True)
class ReplicaInfo:
    """A running replica as the controller announces it to callers."""

    replica_id: str
    host: str
    port: int
    max_ongoing_requests: int
    node_id: str = ""


@dataclass
class ReplicaSlot:
    """A caller's view of one replica."""

    info: ReplicaInfo
    ongoing: int = 0
    full_until: float = 0.0

    @property
    def replica_id(self) -> str:
        return self.info.replica_id

    def has_room(self, now: float) -> bool:
        return self.ongoing < self.info.max_ongoing_requests and now >= self.full_until


class ReplicaChooser:
    """Tracks this caller's load on each replica and picks where a request goes."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self.slots: dict[str, ReplicaSlot] = {}
        self._ids: list[str] = []

    def update(self, replicas: Iterable[ReplicaInfo]) -> list[str]:
        """Replace the replica set, keeping load counts; returns the ids that went away."""
        fresh = {info.replica_id: info for info in replicas}
        removed = [rid for rid in self.slots if rid not in fresh]
        for rid in removed:
            del self.slots[rid]
        for rid, info in fresh.items():
            slot = self.slots.get(rid)
            if slot is None:
                self.slots[rid] = ReplicaSlot(info)
            else:
                slot.info = info
        self._ids = list(self.slots)
        return removed

    def remove(self, replica_id: str) -> None:
        if self.slots.pop(replica_id, None) is not None:
            self._ids = list(self.slots)

    def choose(self, now: float | None = None) -> ReplicaSlot | None:
        ids = self._ids
        if not ids:
            return None
        now = time.monotonic() if now is None else now
        if len(ids) == 1:
            slot = self.slots[ids[0]]
            return slot if slot.has_room(now) else None
        first, second = self._rng.sample(ids, 2)
        a, b = self.slots[first], self.slots[second]
        a_ok, b_ok = a.has_room(now), b.has_room(now)
        if a_ok and b_ok:
            return a if a.ongoing <= b.ongoing else b
        if a_ok:
            return a
        if b_ok:
            return b
        # Both picks were full: fall back to the least loaded replica with room, if any.
        best: ReplicaSlot | None = None
        for slot in self.slots.values():
            if slot.has_room(now) and (best is None or slot.ongoing < best.ongoing):
                best = slot
        return best

    def mark_full(self, replica_id: str, now: float | None = None) -> None:
        slot = self.slots.get(replica_id)
        if slot is not None:
            slot.full_until = (time.monotonic() if now is None else now) + FULL_BACKOFF_S

    def backoff_ends(self, now: float | None = None) -> float | None:
        """When the first replica skipped only for turning a request away has room again
        (None when no replica waits out such a pause)."""
        now = time.monotonic() if now is None else now
        ends = [
            slot.full_until
            for slot in self.slots.values()
            if slot.full_until > now and slot.ongoing < slot.info.max_ongoing_requests
        ]
        return min(ends) if ends else None

    @property
    def in_flight(self) -> int:
        return sum(slot.ongoing for slot in self.slots.values())

    def __len__(self) -> int:
        return len(self._ids)
