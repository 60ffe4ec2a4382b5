"""Identifiers for tasks, objects, actors, workers, nodes and leases.

Ids are raw bytes on the wire and in tables; their hex form is what users see.
A process draws a random prefix once and counts up from it, so making an id costs no
system call on the hot path.
"""

from __future__ import annotations

import itertools
import os
import threading

TASK_ID_SIZE = 16
OBJECT_ID_SIZE = TASK_ID_SIZE + 4

_lock = threading.Lock()
_prefix = os.urandom(8)
_counter = itertools.count(1)
_pid = os.getpid()


def _next() -> bytes:
    global _prefix, _counter, _pid
    if os.getpid() != _pid:  # a forked child must not repeat its parent's ids
        with _lock:
            _prefix, _counter, _pid = os.urandom(8), itertools.count(1), os.getpid()
    return _prefix + next(_counter).to_bytes(8, "little")


def new_task_id() -> bytes:
    return _next()


def new_actor_id() -> bytes:
    return _next()


def new_lease_id() -> bytes:
    return _next()


def random_id(size: int = 16) -> bytes:
    return os.urandom(size)


def object_id_for_return(task_id: bytes, index: int) -> bytes:
    """The id of return value ``index`` (1-based) of ``task_id``; index 0 is for puts."""
    return task_id + index.to_bytes(4, "little")


def generator_item_id(task_id: bytes, index: int) -> bytes:
    """The object id of item ``index`` (0-based) of a generator task (return 1 is the count)."""
    return object_id_for_return(task_id, index + 2)


def new_put_id() -> bytes:
    return object_id_for_return(_next(), 0)


def task_id_of(object_id: bytes) -> bytes:
    return object_id[:TASK_ID_SIZE]
