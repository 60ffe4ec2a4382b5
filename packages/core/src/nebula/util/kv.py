"""A small key-value table kept by the cluster's control store, for libraries' own state.

A library that must find its state again after one of its processes restarts (serve's
controller, say) keeps it here: the table lives with the cluster, is persisted with the
control store, and so outlives the process that wrote it and a restart of the head. Values
are bytes; keep them small (kilobytes to a few megabytes) and prefix keys with the library's
name.
"""

from __future__ import annotations

from nebula import _protocol as p
from nebula._api.runtime import require_core_worker

__all__ = ["get", "put"]


def put(key: str, value: bytes, *, overwrite: bool = True) -> bool:
    """Store ``value`` under ``key``; with ``overwrite=False`` an existing value is kept.

    Returns whether the value was stored.
    """
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"kv.put stores bytes, got {type(value).__name__}; pickle it first.")
    cw = require_core_worker()
    reply = cw.call(
        cw.control_store, lambda rid, to: p.KvPut(rid, to, key, bytes(value), overwrite)
    )
    assert isinstance(reply, p.KvReply)
    return reply.ok


def get(key: str) -> bytes | None:
    """The value stored under ``key``, or None."""
    cw = require_core_worker()
    reply = cw.call(cw.control_store, lambda rid, to: p.KvGet(rid, to, key))
    assert isinstance(reply, p.KvReply)
    return reply.value
