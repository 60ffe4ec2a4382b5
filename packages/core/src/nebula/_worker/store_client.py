"""The core worker's side of the shared-memory store: writing values into it (or inline,
when small), reserving space and mapping what other processes wrote."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nebula import _config
from nebula import _protocol as p
from nebula._ids import new_put_id
from nebula._object_store import shm
from nebula._serialization import Serialized, deserialize, serialize
from nebula._worker.references import ReferenceTable
from nebula.exceptions import ObjectLostError

if TYPE_CHECKING:
    from nebula._worker.object_transfer import ObjectPuller
    from nebula._worker.write_cache import WriteCache

# How often a reader restores an object spilled again before it could map it.
_RESTORE_ATTEMPTS = 20
_PULL_ATTEMPTS = 5  # pulls of a copy its store keeps dropping before it is mapped


class StoreClient:
    """Mixed into ``CoreWorker``: the store operations, on the worker's own state."""

    address: str
    node_id: bytes
    node_manager: str
    session_tag: str
    worker_id: bytes | None
    lock: threading.RLock
    refs: ReferenceTable
    puller: ObjectPuller
    write_cache: WriteCache

    if TYPE_CHECKING:

        def set_value(self, value: p.ObjectValue, *, pin_contained: bool = True) -> None: ...

        def send(self, address: str, msg: p.Message) -> None: ...

        def _process_released(self) -> None: ...

        def call(
            self, address: str, make: Callable[[int, str], p.Message], timeout_s: float = 30.0
        ) -> p.Message: ...

    def put(self, value: Any, *, owner_ref_factory: Callable[[bytes, str], Any]) -> Any:
        return self.put_serialized(serialize(value), owner_ref_factory=owner_ref_factory)

    def put_serialized(
        self, serialized: Serialized, *, owner_ref_factory: Callable[[bytes, str], Any]
    ) -> Any:
        object_id = new_put_id()
        stored = self.store_value(object_id, serialized)
        ref = owner_ref_factory(object_id, self.address)
        with self.lock:
            entry = self.refs.owned(object_id)
            entry.keep_alive.extend(serialized.contained_refs)
            self.set_value(stored, pin_contained=False)
        return ref

    def store_value(
        self, object_id: bytes, serialized: Serialized, owner: str | None = None
    ) -> p.ObjectValue:
        """Inline small values; write large ones to shared memory and tell the node.

        ``owner`` is the process that owns the value (for a task's return, the caller).
        """
        owner = owner or self.address
        contained = tuple((r.object_id, r.owner_address) for r in serialized.contained_refs)
        if serialized.total_size <= _config.INLINE_OBJECT_MAX_BYTES:
            return p.ObjectValue(object_id, inline=serialized.to_bytes(), contained=contained)
        if not self.node_id:
            # No store on this host (a driver on a machine without a node): keep it inline.
            return p.ObjectValue(object_id, inline=serialized.to_bytes(), contained=contained)
        size = serialized.total_size
        taken = None
        if owner == self.address:
            with self.lock:
                # Values whose refs were just dropped: free them now, so a loop of puts
                # writes each into the memory of the one before.
                self._process_released()
                taken = self.write_cache.take(object_id, size)
        try:
            reused, disk_path = self.reserve_space(object_id, size, taken[1] if taken else None)
        except BaseException:
            if taken is not None:
                self.write_cache.abandon(taken[0])
            raise
        if disk_path is not None and taken is not None:
            self.write_cache.abandon(taken[0])
            taken = None
        try:
            if taken is not None:
                self.write_cache.write(taken[0], object_id, serialized)
                location = p.ShmLocation(object_id, self.node_id, taken[0].path, size, owner)
            else:
                location = shm.write_object(
                    self.session_tag,
                    self.node_id,
                    object_id,
                    serialized,
                    owner,
                    reuse=reused,
                    path=disk_path,
                )
        except BaseException:
            if taken is not None:
                self.write_cache.abandon(taken[0])
            self.send(self.node_manager, p.FreeObjects((object_id,)))  # drop the reservation
            raise
        self.send(self.node_manager, p.ObjectSealed(location, owner))
        return p.ObjectValue(object_id, shm=location, contained=contained)

    def reserve_space(
        self, object_id: bytes, size: int, retained_path: str | None = None
    ) -> tuple[bool, str | None]:
        """Ask the node's store for room first: it spills to make some, or says it can't.

        Returns whether the store put a freed object's file at the object's path to reuse,
        and the file on disk to write instead when the object is larger than the store.
        ``retained_path``: the kept file (see ``write_cache``) this object goes into.
        """
        from nebula.exceptions import ObjectStoreFullError

        reply = self.call(
            self.node_manager,
            lambda rid, to: p.CreateObject(rid, to, object_id, size, retained_path),
            timeout_s=_config.OBJECT_STORE_FULL_WAIT_S + 30.0,
        )
        assert isinstance(reply, p.CreateObjectReply)
        if reply.error is not None:
            raise ObjectStoreFullError(reply.error[0].upper() + reply.error[1:] + ".")
        return reply.reused, reply.disk_path

    def _map(self, location: p.ShmLocation) -> memoryview:
        """Map a value in this node's store, restoring it first if it was spilled.

        Under heavy pressure another writer may spill the object again between its restore
        and the mapping: it is restored again, a bounded number of times.
        """

        try:
            return shm.map_object(location)
        except ObjectLostError:
            pass
        for attempt in range(_RESTORE_ATTEMPTS):
            reply = self.call(
                self.node_manager,
                lambda rid, to: p.RestoreObject(rid, to, location.object_id),
                timeout_s=_config.OBJECT_STORE_FULL_WAIT_S + 30.0,
            )
            assert isinstance(reply, p.RestoreObjectReply)
            if reply.location is None:
                raise ObjectLostError(
                    f"Object {location.object_id.hex()} is gone from its node's store: "
                    f"{reply.error}."
                ) from None
            try:
                return shm.map_object(reply.location)
            except ObjectLostError:
                if attempt == _RESTORE_ATTEMPTS - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def _map_copy(self, origin: p.ShmLocation) -> memoryview | bytes:
        """Map a copy here of an object stored on another node (pulled first if there is
        none), or its bytes when this process has no node.

        A copy is the first thing its node's store drops for room: under pressure it may go
        between its pull and its mapping. The original is still where it was, so the copy
        is pulled again, a bounded number of times.
        """
        for attempt in range(_PULL_ATTEMPTS):
            local = self.puller.local_location(origin, origin.owner_address)
            if isinstance(local, bytes):
                return local
            try:
                return self._map(local)
            except ObjectLostError:
                if attempt == _PULL_ATTEMPTS - 1:
                    raise
                self.puller.forget(origin.object_id)
        raise AssertionError("unreachable")

    def load(self, value: p.ObjectValue) -> Any:
        """Deserialize a value this process references; one mapping per shared object."""
        if value.shm is None:
            return load_value(value)
        with self.lock:
            entry = self.refs.get(value.object_id)
            mapping = entry.mapping if entry is not None else None
        if mapping is None:
            if value.shm.node_id != self.node_id or not self.node_id:
                local = self._map_copy(value.shm)
                if isinstance(local, bytes):
                    return deserialize(local)
                mapping = local
            else:
                mapping = self._map(value.shm)
            with self.lock:
                entry = self.refs.get(value.object_id)
                if entry is not None:
                    if entry.mapping is None:
                        entry.mapping = mapping
                    mapping = entry.mapping
        return deserialize(mapping)


def load_value(value: p.ObjectValue) -> Any:
    """Deserialize a value; shared-memory values come back as zero-copy views."""
    if value.shm is not None:
        return deserialize(shm.map_object(value.shm))
    assert value.inline is not None
    return deserialize(value.inline)
