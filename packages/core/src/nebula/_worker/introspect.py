"""What a process tells about itself when asked (``ProcessStateQuery``): the objects it
references, by reference type, and the Python stack of each of its threads.

Answered on the I/O thread, so a process busy in user code still answers (the interpreter
switches threads every few milliseconds).
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

from nebula._transport import host_of

if TYPE_CHECKING:
    from nebula._worker.core_worker import CoreWorker
    from nebula._worker.references import Entry


def describe_process(cw: CoreWorker, kind: str) -> tuple[tuple[dict[str, Any], ...], str | None]:
    if kind == "objects":
        with cw.lock:
            return tuple(_objects(cw)), None
    if kind == "stacks":
        return (_stacks(cw),), None
    return (), f"unknown process state kind {kind!r}"


def _objects(cw: CoreWorker) -> list[dict[str, Any]]:
    pending_args = {
        ref.object_id
        for task in cw.submitter.tasks.values()
        if not task.finished
        for ref in task.arg_refs
    }
    common = {
        "type": "DRIVER" if cw.is_driver else "WORKER",
        "pid": os.getpid(),
        "ip": host_of(cw.address),
        "node_id": cw.node_id.hex() if cw.node_id else None,
    }
    return [
        {
            "object_id": entry.object_id.hex(),
            "object_size": _size(entry),
            "reference_type": _reference_type(entry, pending_args),
            "task_status": "FINISHED" if entry.value is not None or entry.is_actor else "PENDING",
            "is_owner": entry.owned,
            "owner_address": entry.owner,
            "local_ref_count": entry.local_refs,
            "pinned_count": entry.pins,
            "borrower_count": len(entry.borrowers),
            "in_shared_memory": entry.value is not None and entry.value.shm is not None,
            "is_error": bool(entry.value is not None and entry.value.is_error),
            "call_site": "disabled",
            **common,
        }
        for entry in cw.refs.entries.values()
    ]


def _size(entry: Entry) -> int | None:
    value = entry.value
    if value is None:
        return None
    if value.shm is not None:
        return value.shm.size
    return len(value.inline or b"")


def _reference_type(entry: Entry, pending_args: set[bytes]) -> str:
    """Ray's reference types, and BORROWED for an owned value only others still use."""
    if entry.is_actor:
        return "ACTOR_HANDLE"
    if entry.object_id in pending_args:
        return "USED_BY_PENDING_TASK"
    if entry.local_refs > 0:
        return "LOCAL_REFERENCE"
    if entry.pins > 0:
        return "CAPTURED_IN_OBJECT"
    if entry.mapping is not None:
        return "PINNED_IN_MEMORY"
    if entry.borrowers:
        return "BORROWED"
    return "UNKNOWN_STATUS"


def _stacks(cw: CoreWorker) -> dict[str, Any]:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    chunks = []
    for ident, frame in sys._current_frames().items():
        header = f'Thread {ident} "{names.get(ident, "?")}"'
        chunks.append(header + "\n" + "".join(traceback.format_stack(frame)))
    return {
        "pid": os.getpid(),
        "type": "DRIVER" if cw.is_driver else "WORKER",
        "worker_id": (cw.worker_id or b"").hex(),
        "stacks": "\n".join(chunks),
    }
