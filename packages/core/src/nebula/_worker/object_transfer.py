"""Bringing an object from other nodes' stores into this one.

Bytes go straight from the nodes that hold the object to the reader's node: nothing passes
through the head. The reader asks the object's owner which nodes hold it (the node that made
it and every node that copied it since, least used first), then pulls a large object as
several ranges at once (``OBJECT_TRANSFER_STREAMS``), each from a different holder when
there are several, so that a broadcast is served by the copies it makes and not by the
origin alone. A range whose holder fails (gone, or it dropped its copy) is taken from the
next holder. Ranges take the node managers' bulk ports (``_object_store.bulk``: sendfile
there, received into this node's mapped file here) unless the cluster asks for encrypted
transfers, or no bulk port can be reached; then they come as messages, in chunks.
The copy is registered with the local node manager (so it is accounted
and cleaned up) and with the object's owner (so it is freed together with the object, and
offered to the next readers).
"""

from __future__ import annotations

import functools
import logging
import mmap
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from nebula import _config
from nebula import _protocol as p
from nebula._object_store import shm
from nebula._object_store.bulk import BulkClient, TransferError
from nebula._transport import host_of
from nebula._worker.holders import Holder
from nebula.exceptions import ObjectLostError

if TYPE_CHECKING:
    from nebula._worker.core_worker import CoreWorker

logger = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024
_MAX_CACHED = 1024
_PAGE = mmap.PAGESIZE
# A reader waits at most this long for a holder with room to serve it.
_MAX_WAIT_S = 60.0


def _pull_request(
    request_id: int, reply_to: str, *, object_id: bytes, offset: int, length: int
) -> p.PullObject:
    return p.PullObject(request_id, reply_to, object_id, offset, length)


def _ranges(size: int, count: int) -> list[tuple[int, int]]:
    """``size`` bytes cut into ``count`` page-aligned (offset, length) ranges."""
    step = -(-size // count // _PAGE) * _PAGE
    return [(offset, min(step, size - offset)) for offset in range(0, size, step)]


class ObjectPuller:
    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self._copies: OrderedDict[bytes, p.ShmLocation] = OrderedDict()
        # Idle bulk connections per source node manager; the sources that have none.
        self._idle: dict[str, list[BulkClient]] = {}
        self._ports: dict[str, int] = {}
        self._no_bulk: set[str] = set()
        self._bulk_lock = threading.Lock()

    def local_location(self, location: p.ShmLocation, owner: str) -> p.ShmLocation | bytes:
        """A location readable here: the original, a local copy, or the bytes themselves."""
        cw = self.cw
        if location.node_id == cw.node_id:
            return location
        cached = self._copies.get(location.object_id)
        if cached is not None and os.path.exists(cached.path):
            return cached
        origin = cw.node_manager_for(location.node_id)
        if origin is not None and location.size < _config.OBJECT_TRANSFER_SPLIT_BYTES:
            # Small: straight from the origin, without asking the owner (one round trip less).
            holders, use = [(location.node_id, origin)], 1
        else:
            holders, use = self.holders(location, owner, origin or "")
        if not holders:
            raise ObjectLostError(
                f"Object {location.object_id.hex()} lived on node {location.node_id.hex()[:12]}, "
                "which is no longer part of the cluster, and no other node holds a copy."
            )
        if not cw.node_id:
            return self._pull_into_memory(location, holders, use)
        return self._pull_into_store(location, holders, use, owner)

    def forget(self, object_id: bytes) -> None:
        """Stop offering this process's copy of ``object_id`` (its node's store dropped it)."""
        self._copies.pop(object_id, None)

    def holders(self, location: p.ShmLocation, owner: str, origin: str) -> tuple[list[Holder], int]:
        """The nodes to pull from, as the owner says: those to use, then the fallbacks,
        and how many of them are to use (ranges are spread over those).

        While every holder already serves as many readers as it should and copies are on
        their way, the owner says to wait, and the reader asks again (for at most
        ``_MAX_WAIT_S``, then it takes any holder). Without an answer: the origin alone.
        ``origin``: the origin node's manager, if it is alive as far as this process knows.
        """
        cw = self.cw
        found: tuple[Holder, ...] = ()
        use = 1
        deadline = time.monotonic() + _MAX_WAIT_S
        pause = 0.01
        while owner:
            if owner == cw.address:
                reply = cw.locate(location.object_id, cw.node_id)
            else:
                try:
                    answer = cw.call(
                        owner,
                        lambda rid, to: p.LocateObject(
                            rid, to, location.object_id, cw.node_id, origin
                        ),
                        timeout_s=10.0,
                    )
                except TimeoutError:
                    logger.warning("the owner of %s did not answer", location.object_id.hex())
                    break
                assert isinstance(answer, p.ObjectHolders)
                reply = answer
            found = reply.holders + reply.fallback
            use = max(1, len(reply.holders))
            if not reply.wait or time.monotonic() > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        holders = [h for h in found if h[0] != cw.node_id]
        if not holders and origin and location.node_id != cw.node_id:
            holders = [(location.node_id, origin)]
        return holders, min(use, max(1, len(holders)))

    # ------------------------------------------------------------- bulk connections

    def _acquire(self, source: str) -> BulkClient | None:
        with self._bulk_lock:
            if source in self._no_bulk:
                return None
            idle = self._idle.get(source)
            if idle:
                return idle.pop()
            port = self._ports.get(source)
        try:
            if port is None:
                reply = self.cw.call(source, p.BulkPortRequest, timeout_s=20.0)
                assert isinstance(reply, p.BulkPortReply)
                port = reply.port
                with self._bulk_lock:
                    self._ports[source] = port
            return BulkClient(host_of(source), port, self.cw.endpoint.bulk_key)
        except (OSError, TransferError, TimeoutError) as exc:
            logger.warning("objects from %s come as messages: no bulk port (%s)", source, exc)
            with self._bulk_lock:
                self._no_bulk.add(source)
            return None

    def _release(self, source: str, client: BulkClient) -> None:
        with self._bulk_lock:
            self._idle.setdefault(source, []).append(client)

    def close(self) -> None:
        with self._bulk_lock:
            for clients in self._idle.values():
                for client in clients:
                    client.close()
            self._idle.clear()

    def _read_range(
        self, object_id: bytes, holders: list[Holder], first: int, offset: int, target: memoryview
    ) -> str | None:
        """Fill ``target`` with the range from ``holders[first]``, else from the others.

        Returns None when done, else why no holder could serve it.
        """
        errors = []
        for node_id, source in [holders[first], *holders[:first], *holders[first + 1 :]]:
            client = self._acquire(source)
            if client is None:
                errors.append(f"node {node_id.hex()[:12]} has no bulk port")
                continue
            try:
                client.read_into(object_id, offset, target)
            except (OSError, TransferError) as exc:
                # A half-read stream cannot be resumed: drop the connection.
                client.close()
                errors.append(f"node {node_id.hex()[:12]}: {exc}")
                continue
            self._release(source, client)
            return None
        return "; ".join(errors) or "no node holds it"

    def _bulk_read(
        self,
        location: p.ShmLocation,
        holders: list[Holder],
        use: int,
        target: memoryview,
    ) -> bool:
        """Fill ``target`` over the holders' bulk ports; False when messages must do it."""
        if _config.ENCRYPT_OBJECT_TRANSFERS or location.size == 0:
            return False
        for _, source in holders[:use]:  # connect first: a node without a bulk port is
            client = self._acquire(source)  # served by messages instead
            if client is not None:
                self._release(source, client)
        with self._bulk_lock:
            if all(source in self._no_bulk for _, source in holders):
                return False
        streams = 1
        if location.size >= _config.OBJECT_TRANSFER_SPLIT_BYTES:
            streams = max(1, _config.OBJECT_TRANSFER_STREAMS)
        ranges = _ranges(location.size, streams)
        errors: list[str | None] = [None] * len(ranges)

        def read(index: int) -> None:
            offset, length = ranges[index]
            errors[index] = self._read_range(
                location.object_id, holders, index % use, offset, target[offset : offset + length]
            )

        threads = [
            threading.Thread(target=read, args=(i,), name="nebula-pull", daemon=True)
            for i in range(1, len(ranges))
        ]
        for thread in threads:
            thread.start()
        read(0)
        for thread in threads:
            thread.join()
        failed = [e for e in errors if e is not None]
        if failed:
            raise ObjectLostError(
                f"Object {location.object_id.hex()} could not be fetched: {failed[0]}."
            )
        return True

    # ------------------------------------------------------------------- messages

    def _chunks(
        self, location: p.ShmLocation, holders: list[Holder]
    ) -> Iterator[tuple[int, bytes]]:
        node_id, source = holders[0]
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
                    f"{node_id.hex()[:12]}: {reply.error or 'short read'}."
                )
            yield offset, reply.data

    # --------------------------------------------------------------------- pulls

    def _pull_into_memory(self, location: p.ShmLocation, holders: list[Holder], use: int) -> bytes:
        buffer = bytearray(location.size)
        if self._bulk_read(location, holders, use, memoryview(buffer)):
            return bytes(buffer)
        for offset, data in self._chunks(location, holders):
            buffer[offset : offset + len(data)] = data
        return bytes(buffer)

    def _pull_into_store(
        self, location: p.ShmLocation, holders: list[Holder], use: int, owner: str
    ) -> p.ShmLocation:
        cw = self.cw
        _reused, disk_path = cw.reserve_space(location.object_id, location.size)
        path = disk_path or shm.object_path(cw.session_tag, location.object_id, cw.node_id)
        # No O_TRUNC: the store may have put a freed file's pages there for reuse.
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, location.size)
            if not self._bulk_into_file(fd, location, holders, use):
                for offset, data in self._chunks(location, holders):
                    os.pwrite(fd, data, offset)
        except BaseException:
            os.close(fd)
            shm.delete_object(path)
            raise
        os.close(fd)
        copy = p.ShmLocation(location.object_id, cw.node_id, path, location.size)
        cw.send(cw.node_manager, p.ObjectSealed(copy, owner, is_copy=True))
        if owner:
            cw.send(owner, p.AddObjectCopy(location.object_id, cw.node_id, cw.node_manager))
        self._copies[location.object_id] = copy
        if len(self._copies) > _MAX_CACHED:
            self._copies.popitem(last=False)
        return copy

    def _bulk_into_file(
        self,
        fd: int,
        location: p.ShmLocation,
        holders: list[Holder],
        use: int,
    ) -> bool:
        if _config.ENCRYPT_OBJECT_TRANSFERS or location.size == 0:
            return False
        with mmap.mmap(fd, location.size) as mapped:
            view = memoryview(mapped)
            try:
                return self._bulk_read(location, holders, use, view)
            finally:
                view.release()
