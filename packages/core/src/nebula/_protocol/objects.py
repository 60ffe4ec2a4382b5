"""Values and the messages that create, find, move and free objects."""

from __future__ import annotations

from dataclasses import dataclass

from nebula._protocol._base import Message

# ----------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ShmLocation(Message):
    """Where a large object's bytes live: a file in a node's shared-memory directory."""

    object_id: bytes
    node_id: bytes
    path: str
    size: int
    owner_address: str = ""


@dataclass(frozen=True, slots=True)
class ObjectValue(Message):
    """A resolved object: inline bytes, a shared-memory location, or a serialized error."""

    object_id: bytes
    inline: bytes | None = None
    shm: ShmLocation | None = None
    is_error: bool = False
    # (object_id, owner_address) of refs serialized inside this value.
    contained: tuple[tuple[bytes, str], ...] = ()


# ---------------------------------------------------------------- references/objects


@dataclass(frozen=True, slots=True)
class GetObject(Message):
    """Ask an object's owner for its value; the owner answers once it is ready."""

    object_id: bytes
    reply_to: str


@dataclass(frozen=True, slots=True)
class AddBorrower(Message):
    object_id: bytes
    borrower: str


@dataclass(frozen=True, slots=True)
class RemoveBorrower(Message):
    object_id: bytes
    borrower: str


@dataclass(frozen=True, slots=True)
class ObjectSealed(Message):
    location: ShmLocation
    owner_address: str
    # A copy of an object whose primary lives on another node: evictable.
    is_copy: bool = False


@dataclass(frozen=True, slots=True)
class CreateObject(Message):
    """Reserve room in the node's store before writing an object of ``size`` bytes."""

    request_id: int
    reply_to: str
    object_id: bytes
    size: int
    # A file the writer kept from a freed object (KeepFreed) and now writes this one into.
    retained_path: str | None = None


@dataclass(frozen=True, slots=True)
class KeepFreed(Message):
    """Owner -> node manager: a freed object's file is kept (renamed to ``path``) by the
    owner for its next write; count it as used, delete it when room is needed."""

    object_id: bytes
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class CreateObjectReply(Message):
    request_id: int
    error: str | None = None
    # The store put a freed object's file (its pages already allocated) at the new object's
    # path: the writer overwrites it instead of creating the file.
    reused: bool = False
    # The object is larger than the whole store: the writer puts it in this file on disk
    # instead, and readers map it from there (through the page cache).
    disk_path: str | None = None


@dataclass(frozen=True, slots=True)
class RestoreObject(Message):
    """Bring a spilled object back into shared memory."""

    request_id: int
    reply_to: str
    object_id: bytes


@dataclass(frozen=True, slots=True)
class RestoreObjectReply(Message):
    request_id: int
    location: ShmLocation | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FreeObjects(Message):
    object_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PullObject(Message):
    """Ask the node manager holding an object for one chunk of its bytes."""

    request_id: int
    reply_to: str
    object_id: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class BulkPortRequest(Message):
    """Ask a node manager for the port it serves objects' bytes on (``_object_store.bulk``)."""

    request_id: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class BulkPortReply(Message):
    request_id: int
    port: int


@dataclass(frozen=True, slots=True)
class ObjectChunk(Message):
    request_id: int
    data: bytes
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LocateObject(Message):
    """Reader -> owner: which nodes hold this object's bytes (the origin and its copies)?"""

    request_id: int
    reply_to: str
    object_id: bytes
    # The reader's node (empty for a process without a store: it makes no copy).
    node_id: bytes = b""
    # The node manager of the object's origin node, as the reader knows it.
    origin: str = ""


@dataclass(frozen=True, slots=True)
class ObjectHolders(Message):
    """Where to pull from: (node id, node manager address) pairs.

    ``holders``: the nodes this reader is to use (its ranges spread over them);
    ``fallback``: other holders, for a range whose holder fails. Empty ``holders`` with
    ``wait``: every holder serves as many readers as it should, and copies are being
    made; ask again shortly.
    """

    request_id: int
    holders: tuple[tuple[bytes, str], ...]
    fallback: tuple[tuple[bytes, str], ...] = ()
    wait: bool = False


@dataclass(frozen=True, slots=True)
class AddObjectCopy(Message):
    """Reader -> owner: a copy now lives on ``node_id`` too; free it with the object."""

    object_id: bytes
    node_id: bytes
    node_manager: str
