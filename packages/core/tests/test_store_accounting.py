"""The object store's bookkeeping, driven without processes: reservations, eviction of
copies before spilling primaries, least recently used first, restoring, refusing what can
never fit, and freed files kept for reuse."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _store_io import settle

from nebula._object_store import shm
from nebula._object_store.store import ObjectStore, RoomPending, StoreFull
from nebula._protocol import ShmLocation

MB = 1 << 20


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "objects"
    folder.mkdir()
    return folder


@pytest.fixture
def stores() -> Iterator[list[ObjectStore]]:
    """Stores a test makes, closed after it (their copy threads stop)."""
    made: list[ObjectStore] = []
    yield made
    for store in made:
        store.close()


def reserve(store: ObjectStore, object_id: bytes, size: int) -> bool:
    """Reserve as the node manager does: a reservation that waits for spills is retried."""
    while True:
        try:
            return store.reserve(object_id, size)
        except RoomPending:
            settle(store)


def put(store: ObjectStore, folder: Path, name: str, size: int, *, copy: bool = False) -> bytes:
    """Reserve, write and seal an object of ``size`` bytes, as a writer does."""
    object_id = name.encode().ljust(20, b"_")
    reserve(store, object_id, size)
    path = folder / name
    path.write_bytes(name.encode()[:1] * size)
    store.seal(ShmLocation(object_id, b"n", str(path), size), is_copy=copy)
    return object_id


def test_reservations_and_objects_count_against_capacity(
    files: Path, tmp_path: Path, stores: list[ObjectStore]
) -> None:
    store = ObjectStore(10 * MB, str(tmp_path / "spill"))
    stores.append(store)
    a = put(store, files, "a", 4 * MB)
    store.reserve(b"b" * 20, 5 * MB)
    assert store.used == 4 * MB and store.available_bytes() == 1 * MB
    store.cancel(b"b" * 20)
    store.free(a)
    assert store.used == 0 and store.available_bytes() == 10 * MB
    assert not (files / "a").exists()


def test_what_can_never_fit_is_refused_with_the_sizes(
    tmp_path: Path, stores: list[ObjectStore]
) -> None:
    store = ObjectStore(10 * MB, str(tmp_path / "spill"))
    stores.append(store)
    with pytest.raises(StoreFull, match="10,485,760 bytes"):
        store.reserve(b"x" * 20, 11 * MB)


def test_copies_are_evicted_before_primaries_are_spilled(
    files: Path, tmp_path: Path, stores: list[ObjectStore]
) -> None:
    store = ObjectStore(10 * MB, str(tmp_path / "spill"))
    stores.append(store)
    primary = put(store, files, "p", 4 * MB)
    copy = put(store, files, "c", 4 * MB, copy=True)
    put(store, files, "n", 4 * MB)
    assert copy not in store.objects  # gone: it can be fetched again from its node
    assert store.objects[primary].in_memory
    assert store.used == 8 * MB


def test_primaries_spill_least_recently_used_first_and_restore(
    files: Path, tmp_path: Path, stores: list[ObjectStore]
) -> None:
    store = ObjectStore(10 * MB, str(tmp_path / "spill"))
    stores.append(store)
    old = put(store, files, "old", 4 * MB)
    recent = put(store, files, "recent", 4 * MB)
    store.read_chunk(old, 0, 1)  # old becomes the most recently used
    put(store, files, "new", 4 * MB)
    assert store.objects[old].in_memory
    spilled = store.objects[recent]
    assert not spilled.in_memory and spilled.spilled_path is not None
    assert os.path.getsize(spilled.spilled_path) == 4 * MB
    assert store.read_chunk(recent, 0, 6) == b"rrrrrr"  # readable while on disk
    with pytest.raises(RoomPending):  # room for it comes once "old" or "new" is spilled
        store.start_restore(recent)
    settle(store)
    assert store.start_restore(recent) is None  # under way
    [restored] = settle(store)
    assert restored.location is not None
    assert Path(restored.location.path).read_bytes()[:3] == b"rrr"
    assert store.used <= store.capacity
    assert sum(1 for s in store.objects.values() if not s.in_memory) == 1


def test_a_store_full_of_reservations_refuses_more(
    tmp_path: Path, stores: list[ObjectStore]
) -> None:
    store = ObjectStore(10 * MB, str(tmp_path / "spill"))
    stores.append(store)
    store.reserve(b"a" * 20, 6 * MB)
    with pytest.raises(StoreFull, match="being written"):
        store.reserve(b"b" * 20, 6 * MB)


@pytest.fixture
def session_store(tmp_path: Path) -> Iterator[ObjectStore]:
    store = ObjectStore(64 * MB, str(tmp_path / "spill"), session_tag="acct0001", node_id=b"n")
    yield store
    store.close()
    shm.delete_session_objects("acct0001")


def _stored(store: ObjectStore, name: bytes, size: int, fill: bytes) -> bytes:
    """An object of ``size`` bytes of ``fill``, written and sealed, as a worker does."""
    object_id = name.ljust(20, b"_")
    store.reserve(object_id, size)
    path = shm.object_path("acct0001", object_id, b"n")
    with open(path, "wb") as f:
        f.write(fill * size)
    store.seal(ShmLocation(object_id, b"n", path, size), is_copy=False)
    return object_id


def test_a_second_reader_pulling_the_same_object_gets_no_freed_file(
    session_store: ObjectStore,
) -> None:
    # Two workers that pull the same object reserve it twice and write the same path. A
    # freed file moved there for the second would replace the first's, so readers of the
    # sealed copy saw another object's old bytes (buffers of two objects mixed).
    store = session_store
    for object_id in [_stored(store, name, 8 * MB, b"o") for name in (b"old1", b"old2")]:
        store.free(object_id)
    assert store.freed_bytes == 16 * MB
    pulled = b"pulled".ljust(20, b"_")
    assert store.reserve(pulled, 8 * MB) is True  # the first writer reuses a freed file
    path = shm.object_path("acct0001", pulled, b"n")
    with open(path, "r+b") as f:
        f.write(b"n" * 8 * MB)
    assert store.reserve(pulled, 8 * MB) is False  # the second writes the same file
    with open(path, "rb") as f:
        assert f.read(MB) == b"n" * MB
    store.seal(ShmLocation(pulled, b"n", path, 8 * MB), is_copy=True)
    assert store.reserve(pulled, 8 * MB) is False  # nor once it is stored
    assert store.freed_bytes == 8 * MB


def test_freed_files_are_kept_for_reuse_and_given_up_for_room(
    session_store: ObjectStore,
) -> None:
    store = session_store
    store.free(_stored(store, b"big", 8 * MB, b"\0"))
    assert store.freed_bytes == 8 * MB  # kept: its pages make the next write fast
    assert store.available_bytes() == 64 * MB  # and still counted as free
    # A write of a similar size takes the kept file over.
    assert store.reserve(b"next".ljust(20, b"_"), 7 * MB) is True
    assert store.freed_bytes == 0
    # The next big reservation drops nothing it needs: capacity is honoured.
    store.reserve(b"more".ljust(20, b"_"), 50 * MB)
    with pytest.raises(StoreFull):
        store.reserve(b"over".ljust(20, b"_"), 8 * MB)
