"""Spilling on a slow or broken disk: the node keeps serving while objects spill.

Spills and restores copy on the store's threads. With every chunk of a copy made slower
than the time the control store gives a silent node, the node must stay alive, the puts
that wait for room must finish and every value must read back intact; an object freed
while it is being copied leaves nothing behind; a spill directory that cannot be written
makes a put fail with the disk's error and loses no object already stored.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _store_io import settle

import nebula
from nebula._object_store import disk_io
from nebula._object_store.store import ObjectStore, Restored, RoomPending, StoreFull
from nebula._protocol import ShmLocation
from nebula.exceptions import ObjectStoreFullError
from nebula.testing import wait_for_condition

MB = 1 << 20
BLOCK = 15 * MB  # one copy chunk each (with its header)
CAPACITY = 3 * BLOCK + MB
CHUNK_DELAY_S = 2.0  # each spill takes twice the node timeout below
NODE_TIMEOUT_S = 1.0

SLOW_DISK = {
    "NEBULA_SPILL_CHUNK_DELAY_S": str(CHUNK_DELAY_S),
    "NEBULA_NODE_TIMEOUT_S": str(NODE_TIMEOUT_S),
    "NEBULA_NODE_HEARTBEAT_S": "0.2",
}


@pytest.fixture(scope="module")
def session() -> Iterator[dict[str, Any]]:
    os.environ.update(SLOW_DISK)
    try:
        info = nebula.init(num_cpus=2, object_store_memory=CAPACITY)
    finally:
        for name in SLOW_DISK:
            del os.environ[name]
    yield dict(info)
    nebula.shutdown()


def _spill_root(session: dict[str, Any]) -> str:
    return os.path.join(str(session["session_dir"]), "spill")


def _spill_files(session: dict[str, Any]) -> list[str]:
    return glob.glob(os.path.join(_spill_root(session), "*", "*"))


def _alive_nodes() -> int:
    return sum(1 for node in nebula.nodes() if node["Alive"])


@nebula.remote
def checksum(array: np.ndarray) -> int:
    return int(array.sum())


def test_the_node_stays_alive_while_spills_outlast_its_timeout(
    session: dict[str, Any],
) -> None:
    started = time.monotonic()
    refs = [nebula.put(np.full(BLOCK // 8, i, dtype=np.int64)) for i in range(5)]
    # Two objects had to spill, one slow chunk after the other, to make room.
    assert time.monotonic() - started > 2 * CHUNK_DELAY_S
    assert len(_spill_files(session)) == 2
    assert _alive_nodes() == 1
    assert nebula.get(checksum.remote(refs[-1]), timeout=60) == 4 * (BLOCK // 8)
    for i in reversed(range(5)):  # the spilled ones come back from disk, intact
        array = nebula.get(refs[i], timeout=60)
        assert array.shape == (BLOCK // 8,) and array[0] == i and array[-1] == i
        assert int(array.sum()) == i * (BLOCK // 8)
        del array
    assert _alive_nodes() == 1
    del refs
    wait_for_condition(lambda: not _spill_files(session), timeout=30)


def test_a_spill_directory_that_cannot_be_written_fails_the_put_and_loses_nothing(
    session: dict[str, Any],
) -> None:
    root = _spill_root(session)
    shutil.rmtree(root, ignore_errors=True)
    Path(root).write_text("not a directory")  # nothing can be created below it
    try:
        refs = [nebula.put(np.full(BLOCK // 8, i, dtype=np.int64)) for i in range(3)]
        with pytest.raises(ObjectStoreFullError, match=r"spilling to .* failed: .*Not a directory"):
            nebula.put(np.zeros(BLOCK // 8, dtype=np.int64))
        assert _alive_nodes() == 1
        for i, ref in enumerate(refs):
            assert int(nebula.get(ref, timeout=30)[-1]) == i
        del refs, ref  # the room comes back when objects are freed
        assert int(nebula.get(nebula.put(np.ones(BLOCK // 8, dtype=np.int64)))[0]) == 1
    finally:
        os.unlink(root)


# ---------------------------------------------------------------- the store alone


@pytest.fixture
def slow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    monkeypatch.setattr(disk_io, "CHUNK_BYTES", MB)
    store = ObjectStore(8 * MB, str(tmp_path / "spill"), spill_chunk_delay_s=0.05)
    yield store
    store.close()


def _settle(store: ObjectStore) -> list[Restored]:
    restored = settle(store)
    store.io.wait(0.2)  # removals queued behind the copies
    return restored + store.collect_io()


def _no_files_left(folder: Path) -> None:
    """Spilled files are removed on the spill thread, behind the copies queued before."""
    deadline = time.monotonic() + 10
    while glob.glob(str(folder / "*")):
        assert time.monotonic() < deadline, (
            f"files left in {folder}: {glob.glob(str(folder / '*'))}"
        )
        time.sleep(0.05)


def _put(store: ObjectStore, folder: Path, name: str, size: int) -> bytes:
    object_id = name.encode().ljust(20, b"_")
    store.reserve(object_id, size)
    path = folder / name
    path.write_bytes(name.encode()[:1] * size)
    store.seal(ShmLocation(object_id, b"n", str(path), size), is_copy=False)
    return object_id


def test_an_object_being_spilled_stays_readable_and_freeing_it_stops_the_spill(
    slow_store: ObjectStore, tmp_path: Path
) -> None:
    store = slow_store
    a = _put(store, tmp_path, "a", 6 * MB)
    with pytest.raises(RoomPending):  # "a" must spill first: that takes a while
        store.reserve(b"b" * 20, 6 * MB)
    assert store.objects[a].spilling is not None
    assert store.start_restore(a) is not None  # still in memory: readable as it was
    assert store.read_chunk(a, 0, 3) == b"aaa"
    store.free(a)
    assert store.used == 0 and store.spilling_bytes == 0
    store.reserve(b"b" * 20, 6 * MB)  # its room is back at once
    _settle(store)
    assert not os.path.exists(tmp_path / "a")
    _no_files_left(tmp_path / "spill")


def test_freeing_an_object_being_restored_leaves_no_file(
    slow_store: ObjectStore, tmp_path: Path
) -> None:
    store = slow_store
    a = _put(store, tmp_path, "a", 6 * MB)
    with pytest.raises(RoomPending):
        store.reserve(b"b" * 20, 6 * MB)
    _settle(store)
    assert not store.objects[a].in_memory
    store.reserve(b"b" * 20, 6 * MB)
    store.cancel(b"b" * 20)
    assert store.start_restore(a) is None  # under way
    assert store.start_restore(a) is None  # a second reader joins it
    store.free(a)
    assert store.used == 0 and store.restoring_bytes == 0
    assert _settle(store) == []  # nobody is told it is back
    assert not glob.glob(str(tmp_path / "nebula-*")) and not os.path.exists(tmp_path / "a")
    _no_files_left(tmp_path / "spill")


def test_a_failed_spill_keeps_the_object_and_says_why(tmp_path: Path) -> None:
    blocked = tmp_path / "spill"
    blocked.write_text("")
    store = ObjectStore(8 * MB, str(blocked))
    try:
        a = _put(store, tmp_path, "a", 6 * MB)
        with pytest.raises(RoomPending):
            store.reserve(b"b" * 20, 6 * MB)
        _settle(store)
        with pytest.raises(StoreFull, match=r"spilling to .* failed"):
            store.reserve(b"b" * 20, 6 * MB)
        assert store.objects[a].in_memory and store.read_chunk(a, 0, 2) == b"aa"
        assert store.used == 6 * MB
    finally:
        store.close()


def test_a_spill_that_finds_the_file_taken_back_by_its_owner_waits_for_the_free(
    tmp_path: Path,
) -> None:
    """An owner that frees an object may rename its file to write its next value there
    (``KeepFreed``); a spill that starts in between finds no file. The reservation that
    needed the room waits for the owner's word instead of failing."""
    store = ObjectStore(8 * MB, str(tmp_path / "spill"))
    try:
        a = _put(store, tmp_path, "a", 6 * MB)
        kept = tmp_path / "kept-by-owner"
        os.rename(tmp_path / "a", kept)
        with pytest.raises(RoomPending):
            store.reserve(b"b" * 20, 6 * MB)
        _settle(store)
        assert store.spill_error is None
        with pytest.raises(RoomPending):  # still waiting for the owner, not full
            store.reserve(b"b" * 20, 6 * MB)
        store.keep_for_owner(a, str(kept), 6 * MB)
        store.reserve(b"b" * 20, 6 * MB)  # the kept file makes way for it
        assert not kept.exists()
        _no_files_left(tmp_path / "spill")
    finally:
        store.close()
