"""The owner's side of streaming generator tasks.

A generator task sends each item it yields to the process that submitted it (the owner)
as a ``StreamedItem``, before the task ends; the task's one return is the number of items.
The owner keeps every item that arrived, pinned, until its ``ObjectRefGenerator`` hands it
out as an ``ObjectRef`` (which then holds it) or is dropped (which frees what is left).
Items are numbered, so a retried task's repeats are recognised and freed.

Every method runs with the core worker's lock held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nebula import _protocol as p

if TYPE_CHECKING:
    from nebula._worker.core_worker import CoreWorker


@dataclass
class Stream:
    # index -> object id of the items that arrived and are not handed out yet
    arrived: dict[int, bytes] = field(default_factory=dict)
    handed_out: int = 0  # items 0 .. handed_out - 1 went to the consumer


class Streams:
    def __init__(self, cw: CoreWorker) -> None:
        self._cw = cw
        self._streams: dict[bytes, Stream] = {}

    def open(self, task_id: bytes) -> None:
        """Expect items of ``task_id`` (before it is submitted, so none is missed)."""
        self._streams[task_id] = Stream()

    def on_item(self, msg: p.StreamedItem) -> None:
        cw = self._cw
        stream = self._streams.get(msg.task_id)
        fresh = (
            stream is not None
            and msg.index >= stream.handed_out
            and msg.index not in stream.arrived
        )
        if not fresh:
            cw.set_value(msg.value)  # a repeat, or nobody wants it: freed there
            return
        assert stream is not None
        entry = cw.refs.owned(msg.value.object_id)
        entry.pins += 1  # held for the generator until it hands the item out
        stream.arrived[msg.index] = msg.value.object_id
        cw.set_value(msg.value)  # wakes whoever waits, the generator's consumer among them

    def has(self, task_id: bytes, index: int) -> bool:
        stream = self._streams.get(task_id)
        return stream is not None and index in stream.arrived

    def take(self, task_id: bytes, index: int) -> bytes | None:
        """Item ``index``'s object id if it arrived; the caller makes its ObjectRef and
        then calls ``release``."""
        stream = self._streams.get(task_id)
        if stream is None or index not in stream.arrived:
            return None
        stream.handed_out = index + 1
        return stream.arrived.pop(index)

    def release(self, object_id: bytes) -> None:
        """Drop the stream's hold on a handed-out item (its ObjectRef holds it now)."""
        self._cw.unpin(object_id)

    def close(self, task_id: bytes) -> None:
        """The generator is gone: free the items it never handed out."""
        stream = self._streams.pop(task_id, None)
        if stream is None:
            return
        for object_id in stream.arrived.values():
            self._cw.unpin(object_id)
