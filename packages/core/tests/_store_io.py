"""Driving an object store's spill and restore threads from a test, as the node manager does."""

from __future__ import annotations

import time

from nebula._object_store.store import ObjectStore, Restored


def settle(store: ObjectStore) -> list[Restored]:
    """Wait for the copies under way, as the node manager's loop does, and apply them."""
    restored: list[Restored] = []
    deadline = time.monotonic() + 10
    while store.spilling_bytes or store.restoring_bytes:
        assert time.monotonic() < deadline, "a copy did not finish"
        store.io.wait(0.5)
        restored += store.collect_io()
    return restored
