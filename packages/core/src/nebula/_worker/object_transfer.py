"""Bringing an object from another node's store into this one, in chunks.

Bytes go straight from the node that holds the object to the reader's node: nothing passes
through the head. They take the node manager's bulk port (``_object_store.bulk``: sendfile
there, received into this node's mapped file here) unless the cluster asks for encrypted
transfers, or the bulk port cannot be reached; then they come as messages, in chunks.
The copy is registered with the local node manager (so it is accounted
and cleaned up) and with the object's owner (so it is freed together with the object).
"""

from __future__ import annotations

import functools
import logging
import mmap
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from nebula import _config
from nebula import _protocol as p
from nebula._object_store import shm
from nebula._object_store.bulk import BulkClient, TransferError
from nebula._transport import host_of
from nebula.exceptions import ObjectLostError

if TYPE_CHECKING:
    from nebula._worker.core_worker import CoreWorker

logger = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024
_MAX_CACHED = 1024


def _pull_request(
    request_id: int, reply_to: str, *, object_id: bytes, offset: int, length: int
) -> p.PullObject:
    return p.PullObject(request_id, reply_to, object_id, offset, length)


class ObjectPuller:
    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self._copies: OrderedDict[bytes, p.ShmLocation] = OrderedDict()
        # One bulk connection per source node manager (None: not reachable, use messages).
        self._bulk: dict[str, BulkClient | None] = {}
        self._bulk_lock = threading.Lock()

    def local_location(self, location: p.ShmLocation, owner: str) -> p.ShmLocation | bytes:
        """A location readable here: the original, a local copy, or the bytes themselves."""
        cw = self.cw
        if location.node_id == cw.node_id:
            return location
        cached = self._copies.get(location.object_id)
        if cached is not None and os.path.exists(cached.path):
            return cached
        source = cw.node_manager_for(location.node_id)
        if source is None:
            raise ObjectLostError(
                f"Object {location.object_id.hex()} lived on node {location.node_id.hex()[:12]}, "
                "which is no longer part of the cluster."
            )
        if not cw.node_id:
            return self._pull_into_memory(location, source)
        return self._pull_into_store(location, source, owner)

    def _chunks(self, location: p.ShmLocation, source: str):  # type: ignore[no-untyped-def]
        for offset in range(0, location.size, CHUNK_BYTES):
            length = min(CHUNK_BYTES, location.size - offset)
            request = functools.partial(
                _pull_request, object_id=location.object_id, offset=offset, length=length
            )
            reply = self.cw.call(source, request, timeout_s=20.0)
            assert isinstance(reply, p.ObjectChunk)
            if reply.error is not None or len(reply.data) != length:
                raise ObjectLostError(
                    f"Object {location.object_id.hex()} could not be fetched from node "
                    f"{location.node_id.hex()[:12]}: {reply.error or 'short read'}."
                )
            yield offset, reply.data

    def _bulk_read(self, location: p.ShmLocation, source: str, target: memoryview) -> bool:
        """Fill ``target`` over the source's bulk port; False when messages must do it."""
        if _config.ENCRYPT_OBJECT_TRANSFERS:
            return False
        with self._bulk_lock:
            if source not in self._bulk:
                self._bulk[source] = self._connect_bulk(source)
            client = self._bulk[source]
            if client is None:
                return False
            try:
                client.read_into(location.object_id, 0, target)
                return True
            except (OSError, TransferError) as exc:
                # A half-read stream cannot be resumed: drop the connection, and let the
                # next pull connect again.
                client.close()
                del self._bulk[source]
                raise ObjectLostError(
                    f"Object {location.object_id.hex()} could not be fetched from node "
                    f"{location.node_id.hex()[:12]}: {exc}."
                ) from None

    def _connect_bulk(self, source: str) -> BulkClient | None:
        try:
            reply = self.cw.call(source, p.BulkPortRequest, timeout_s=20.0)
            assert isinstance(reply, p.BulkPortReply)
            return BulkClient(host_of(source), reply.port, self.cw.endpoint.bulk_key)
        except (OSError, TransferError, TimeoutError) as exc:
            logger.warning("objects from %s come as messages: no bulk port (%s)", source, exc)
            return None

    def close(self) -> None:
        with self._bulk_lock:
            for client in self._bulk.values():
                if client is not None:
                    client.close()
            self._bulk.clear()

    def _pull_into_memory(self, location: p.ShmLocation, source: str) -> bytes:
        buffer = bytearray(location.size)
        if self._bulk_read(location, source, memoryview(buffer)):
            return bytes(buffer)
        for offset, data in self._chunks(location, source):
            buffer[offset : offset + len(data)] = data
        return bytes(buffer)

    def _pull_into_store(self, location: p.ShmLocation, source: str, owner: str) -> p.ShmLocation:
        cw = self.cw
        _, disk_path = cw.reserve_space(location.object_id, location.size)
        path = disk_path or shm.object_path(cw.session_tag, location.object_id, cw.node_id)
        # No O_TRUNC: the store may have put a freed file's pages there for reuse.
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, location.size)
            if not self._bulk_into_file(fd, location, source):
                for offset, data in self._chunks(location, source):
                    os.pwrite(fd, data, offset)
        except BaseException:
            os.close(fd)
            shm.delete_object(path)
            raise
        os.close(fd)
        copy = p.ShmLocation(location.object_id, cw.node_id, path, location.size)
        cw.send(cw.node_manager, p.ObjectSealed(copy, owner, is_copy=True))
        cw.send(owner, p.AddObjectCopy(location.object_id, cw.node_id, cw.node_manager))
        self._copies[location.object_id] = copy
        if len(self._copies) > _MAX_CACHED:
            self._copies.popitem(last=False)
        return copy

    def _bulk_into_file(self, fd: int, location: p.ShmLocation, source: str) -> bool:
        if _config.ENCRYPT_OBJECT_TRANSFERS or location.size == 0:
            return False
        with mmap.mmap(fd, location.size) as mapped:
            view = memoryview(mapped)
            try:
                return self._bulk_read(location, source, view)
            finally:
                view.release()
