"""The owner's side of moving an object between nodes: which holders a reader pulls from.

Every node that made or copied an owned object can serve it. The owner hands each reader
the least busy holders, one per range the reader pulls at once, and counts the reader's
pull against them until the reader's copy is registered (``AddObjectCopy``). A holder
serves at most ``OBJECT_TRANSFER_PULLS_PER_HOLDER`` readers at once; a reader that finds
every holder busy while copies are being made waits for them, so a broadcast to many
nodes spreads as a tree instead of every reader pulling from the origin.
"""

from __future__ import annotations

from collections import Counter

from nebula._worker.references import Entry

Holder = tuple[bytes, str]  # (node id, node manager address)

# A pull not finished after this long no longer counts against its holders.
STALE_PULL_S = 60.0


def choose_holders(
    entry: Entry,
    node_managers: dict[bytes, str],
    reader: bytes,
    now: float,
    *,
    streams: int,
    per_holder: int,
) -> tuple[tuple[Holder, ...], tuple[Holder, ...], bool]:
    """(holders to use, fallback holders, wait) for ``reader``'s node; see module doc."""
    assert entry.value is not None and entry.value.shm is not None
    origin_id = entry.value.shm.node_id
    candidates: list[Holder] = []
    origin = node_managers.get(origin_id)
    if origin is not None:
        candidates.append((origin_id, origin))
    candidates += [h for h in entry.copies.items() if h[0] != origin_id]
    candidates = [h for h in candidates if h[0] != reader]
    pulls = entry.pulls if entry.pulls is not None else {}
    done = [
        node
        for node, (_, started) in pulls.items()
        if node in entry.copies or now - started > STALE_PULL_S or node == reader
    ]
    for node in done:
        del pulls[node]
    load = Counter(node for used, _ in pulls.values() for node in used)
    free = sorted((h for h in candidates if load[h[0]] < per_holder), key=lambda h: load[h[0]])
    if not free:
        if candidates and pulls:
            return (), tuple(candidates), True  # copies are on their way: wait for them
        free = candidates
    chosen = free[: max(1, streams)]
    if reader and chosen:
        pulls[reader] = (tuple(h[0] for h in chosen), now)
    entry.pulls = pulls or None
    return tuple(chosen), tuple(h for h in candidates if h not in chosen), False
