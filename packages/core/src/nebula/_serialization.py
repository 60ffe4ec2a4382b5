"""Turning values into bytes and back, with pickle-5 out-of-band buffers.

A serialized value is one contiguous frame::

    u32 buffer count | u64 pickle size | u64 size of each buffer | pickle | buffers...

Each buffer starts on a 64-byte boundary so that numpy arrays read from shared memory are
aligned. Deserializing hands pickle memoryview slices of the frame, so arrays come back as
views of the frame (read-only when the frame is), never as copies.
"""

from __future__ import annotations

import contextlib
import gc
import io
import pickle
import struct
import threading
from collections import ChainMap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle

_ALIGN = 64
_COUNT = struct.Struct("<IQ")
_SIZE = struct.Struct("<Q")

_local = threading.local()

# Frames at least this large are read with the cyclic garbage collector paused.
_GC_PAUSE_MIN_BYTES = 1 << 20


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while pickle builds or walks many containers.

    Unpickling 10,000 lists makes the collector run over and over on a growing heap,
    which doubles the time; none of what pickle builds is garbage yet.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(slots=True)
class Serialized:
    """A pickled value waiting to be written inline or into shared memory."""

    pickle_bytes: bytes
    buffers: list[pickle.PickleBuffer]
    contained_refs: list[Any]
    total_size: int

    def to_bytes(self) -> bytes:
        if not self.buffers:  # small values: the header and the pickle, one copy
            return _COUNT.pack(0, len(self.pickle_bytes)) + self.pickle_bytes
        out = bytearray(self.total_size)
        self.write_into(memoryview(out))
        return bytes(out)

    def write_into(
        self,
        target: memoryview,
        copy: Callable[[memoryview, memoryview], None] | None = None,
    ) -> None:
        """Lay the value out in ``target``; ``copy(dest, src)`` moves each buffer's bytes."""
        sizes = [memoryview(b).nbytes for b in self.buffers]
        _COUNT.pack_into(target, 0, len(sizes), len(self.pickle_bytes))
        offset = _COUNT.size
        for size in sizes:
            _SIZE.pack_into(target, offset, size)
            offset += _SIZE.size
        target[offset : offset + len(self.pickle_bytes)] = self.pickle_bytes
        offset += len(self.pickle_bytes)
        for buf, size in zip(self.buffers, sizes):
            offset = _aligned(offset)
            raw = buf.raw()
            if copy is None:
                target[offset : offset + size] = raw
            else:
                copy(target[offset : offset + size], raw)
            offset += size


def _aligned(offset: int) -> int:
    return (offset + _ALIGN - 1) // _ALIGN * _ALIGN


class _RefCollector:
    def __init__(self) -> None:
        self.refs: list[Any] = []


def record_serialized_ref(ref: Any) -> None:
    """Called by ObjectRef/ActorHandle ``__reduce__`` so the container knows what it holds."""
    collector: _RefCollector | None = getattr(_local, "collector", None)
    if collector is not None:
        collector.refs.append(ref)


# Types with a serializer of the user's (``nebula.util.register_serializer``): pickled as
# the deserializer (by value) and what the serializer made of the instance, so a process
# that receives one needs no registration of its own.
_CUSTOM_REDUCERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


class _CustomPickler(cloudpickle.CloudPickler):
    dispatch_table = ChainMap(_CUSTOM_REDUCERS, cloudpickle.CloudPickler.dispatch_table)


def _rebuild(deserializer: Callable[[Any], Any], state: Any) -> Any:
    return deserializer(state)


def register_serializer(
    cls: type, *, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
) -> None:
    """Send instances of ``cls`` as ``serializer(instance)``, rebuilt by
    ``deserializer(...)`` on the receiving side (it must itself be picklable)."""
    if not isinstance(cls, type):
        raise TypeError(f"register_serializer() takes a class, got {cls!r}.")
    if not callable(serializer) or not callable(deserializer):
        raise TypeError("serializer and deserializer must both be callables.")

    def reduce(obj: Any) -> tuple[Any, ...]:
        return _rebuild, (deserializer, serializer(obj))

    _CUSTOM_REDUCERS[cls] = reduce


def deregister_serializer(cls: type) -> None:
    """Forget the serializer registered for ``cls`` (a KeyError if there is none)."""
    if cls not in _CUSTOM_REDUCERS:
        raise KeyError(f"no serializer is registered for {cls!r}.")
    del _CUSTOM_REDUCERS[cls]


def _dumps(value: Any, buffer_callback: Callable[[Any], Any] | None = None) -> bytes:
    if not _CUSTOM_REDUCERS:
        return cloudpickle.dumps(value, protocol=5, buffer_callback=buffer_callback)
    out = io.BytesIO()
    _CustomPickler(out, protocol=5, buffer_callback=buffer_callback).dump(value)
    return out.getvalue()


def serialize(value: Any) -> Serialized:
    buffers: list[pickle.PickleBuffer] = []
    collector = _RefCollector()
    previous = getattr(_local, "collector", None)
    _local.collector = collector
    try:
        with _gc_paused():
            data = _dumps(value, buffers.append)
    except Exception as exc:
        raise TypeError(
            f"Could not serialize a value of type {type(value).__name__}: {exc}. "
            "Values sent to tasks and actors must be picklable."
        ) from exc
    finally:
        _local.collector = previous
    # Small out-of-band buffers cost more to frame than to copy in-band.
    if buffers and all(memoryview(b).nbytes < 4096 for b in buffers):
        buffers = []
        data = _dumps(value)
    total = _COUNT.size + _SIZE.size * len(buffers) + len(data)
    for buf in buffers:
        total = _aligned(total) + memoryview(buf).nbytes
    return Serialized(data, buffers, collector.refs, total)


def deserialize(frame: bytes | memoryview) -> Any:
    view = memoryview(frame)
    count, pickle_size = _COUNT.unpack_from(view, 0)
    offset = _COUNT.size
    sizes: Sequence[int] = [
        _SIZE.unpack_from(view, offset + i * _SIZE.size)[0] for i in range(count)
    ]
    offset += _SIZE.size * count
    data = view[offset : offset + pickle_size]
    offset += pickle_size
    buffers = []
    for size in sizes:
        offset = _aligned(offset)
        buffers.append(view[offset : offset + size])
        offset += size
    if view.nbytes >= _GC_PAUSE_MIN_BYTES:
        with _gc_paused():
            return pickle.loads(data, buffers=buffers)
    return pickle.loads(data, buffers=buffers)


def dumps_function(fn: Any) -> bytes:
    try:
        return cloudpickle.dumps(fn, protocol=5)
    except Exception as exc:
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"Could not serialize {name}: {exc}. A remote function or actor class must be "
            "picklable, including every global it uses."
        ) from exc


def loads_function(data: bytes) -> Any:
    return pickle.loads(data)
