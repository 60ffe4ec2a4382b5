"""Large objects as files in the node's shared-memory directory.

One file per object, named after the session and the object id, so the node manager can
account for every byte, free an object by unlinking it and remove whatever a crashed
process left behind with one glob. A reader maps the file read-only: values come back as
zero-copy, read-only views, and stay valid after the file is unlinked.
"""

from __future__ import annotations

import fcntl
import glob
import mmap
import os

from nebula import _config
from nebula._protocol import ShmLocation
from nebula._serialization import Serialized, _aligned
from nebula.exceptions import ObjectStoreFullError


def object_path(session_tag: str, object_id: bytes, node_id: bytes) -> str:
    """Where a node keeps an object; named by node too, as test nodes share a machine."""
    return os.path.join(
        _config.SHM_DIR, f"nebula-{session_tag}-{object_id.hex()}-{node_id.hex()[:8]}"
    )


def node_glob(session_tag: str, node_id: bytes) -> str:
    return os.path.join(_config.SHM_DIR, f"nebula-{session_tag}-*-{node_id.hex()[:8]}")


def session_glob(session_tag: str) -> str:
    return os.path.join(_config.SHM_DIR, f"nebula-{session_tag}-*")


def pool_path(session_tag: str, node_id: bytes, number: int) -> str:
    """Where a freed object's file waits to be reused (matched by the node's glob)."""
    return os.path.join(_config.SHM_DIR, f"nebula-{session_tag}-free{number:x}-{node_id.hex()[:8]}")


def mapped_elsewhere(path: str) -> bool:
    """Whether any other process has the file open or mapped (a view of it may be alive).

    A write lease is granted only when no other open file description exists, and every
    mapping holds one: this is how a freed object's pages are known to be unobserved.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True
    try:
        return not unobserved(fd)
    finally:
        os.close(fd)


def unobserved(fd: int) -> bool:
    """Whether no open file description of ``fd``'s file exists but ``fd``'s own."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except OSError:  # EAGAIN: someone has it; EINVAL: no leases on this filesystem
        return False
    return True


def write_object(
    session_tag: str,
    node_id: bytes,
    object_id: bytes,
    value: Serialized,
    owner: str = "",
    *,
    reuse: bool = False,
    path: str | None = None,
) -> ShmLocation:
    """Write ``value`` into the object's shared-memory file: the one copy a put makes.

    With ``reuse`` the store has already placed a freed object's file there: overwriting
    pages that exist is several times faster than having the kernel allocate fresh ones.
    ``path``: where to write instead of shared memory (an object larger than the store).
    """
    path = path or object_path(session_tag, object_id, node_id)
    flags = os.O_RDWR if reuse else os.O_CREAT | os.O_EXCL | os.O_RDWR
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        try:
            os.ftruncate(fd, value.total_size)
            header = bytearray(_header_size(value))
            value_view = memoryview(header)
            _write_header(value, value_view)
            _pwrite_all(fd, header, 0)
            offset = len(header)
            for buf in value.buffers:
                offset = _aligned(offset)
                raw = buf.raw()
                _pwrite_all(fd, raw, offset)
                offset += raw.nbytes
        except OSError as exc:
            os.unlink(path)
            raise ObjectStoreFullError(
                f"Could not write a {value.total_size}-byte object to shared memory in "
                f"{_config.SHM_DIR}: {exc.strerror}. Free objects or give the store more room."
            ) from exc
    finally:
        os.close(fd)
    return ShmLocation(object_id, node_id, path, value.total_size, owner)


def _header_size(value: Serialized) -> int:
    from nebula._serialization import _COUNT, _SIZE

    return _COUNT.size + _SIZE.size * len(value.buffers) + len(value.pickle_bytes)


def _write_header(value: Serialized, target: memoryview) -> None:
    from nebula._serialization import _COUNT, _SIZE

    _COUNT.pack_into(target, 0, len(value.buffers), len(value.pickle_bytes))
    offset = _COUNT.size
    for buf in value.buffers:
        _SIZE.pack_into(target, offset, buf.raw().nbytes)
        offset += _SIZE.size
    target[offset:] = value.pickle_bytes


def _pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view.nbytes:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def map_object(location: ShmLocation) -> memoryview:
    """Map an object's file read-only; the view keeps the mapping alive."""
    try:
        fd = os.open(location.path, os.O_RDONLY)
    except FileNotFoundError:
        from nebula.exceptions import ObjectLostError

        raise ObjectLostError(
            f"Object {location.object_id.hex()} is no longer in the object store "
            f"({location.path} is gone): it was freed or its node lost it."
        ) from None
    try:
        if os.fstat(fd).st_size < location.size:
            # Spilled and its file being restored or reused at this moment: not readable
            # here now (the caller restores it again).
            from nebula.exceptions import ObjectLostError

            raise ObjectLostError(
                f"Object {location.object_id.hex()} is being moved in the object store "
                f"({location.path} is shorter than the object)."
            )
        mapping = mmap.mmap(fd, location.size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    return memoryview(mapping)


def delete_object(path: str) -> int:
    try:
        size = os.stat(path).st_size
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return size


def delete_session_objects(session_tag: str) -> int:
    removed = 0
    for path in glob.glob(session_glob(session_tag)):
        if delete_object(path):
            removed += 1
    return removed
