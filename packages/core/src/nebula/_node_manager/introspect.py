"""What a node manager tells about its node: workers, stored objects, log files.

Answers to ``NodeStateQuery`` and ``ReadLog``, kept out of the server so that it stays about
leases. Log files are served by name from the node's log folder only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from nebula import _protocol as p

if TYPE_CHECKING:
    from nebula._node_manager.server import NodeManager
    from nebula._node_manager.worker_pool import WorkerProcess


def worker_record(manager: NodeManager, worker: WorkerProcess, *, alive: bool) -> dict[str, Any]:
    if not worker.registered:
        state = "STARTING"
    elif worker.actor_id is not None:
        state = "ACTOR"
    elif worker.lease_id is not None:
        state = "LEASED"
    else:
        state = "IDLE"
    return {
        "worker_id": worker.worker_id.hex(),
        "worker_type": "WORKER",
        "is_alive": alive,
        "state": state if alive else "DEAD",
        "node_id": manager.node_id.hex(),
        "ip": manager.endpoint.host,
        "pid": worker.pid,
        "job_id": f"{worker.job_id:08x}" if worker.job_id is not None else None,
        "actor_id": worker.actor_id.hex() if worker.actor_id else None,
        "worker_launch_time_ms": int(worker.launched_at * 1000),
        "exit_type": None,
        "exit_detail": None,
        "address": worker.address,
    }


def _workers(manager: NodeManager) -> list[dict[str, Any]]:
    alive = [worker_record(manager, w, alive=True) for w in manager.pool.workers.values()]
    return alive + list(manager.dead_workers)


def _objects(manager: NodeManager) -> list[dict[str, Any]]:
    return [
        {
            "object_id": object_id.hex(),
            "object_size": stored.location.size,
            "owner_address": stored.location.owner_address,
            "spilled": not stored.in_memory,
            "is_copy": stored.is_copy,
            "node_id": manager.node_id.hex(),
        }
        for object_id, stored in manager.store.objects.items()
    ]


def _store_stats(manager: NodeManager) -> list[dict[str, Any]]:
    store = manager.store
    spilled = [s.location.size for s in store.objects.values() if not s.in_memory]
    return [
        {
            "node_id": manager.node_id.hex(),
            "capacity": store.capacity,
            "used": store.used,
            "available": store.available_bytes(),
            "objects": len(store.objects),
            "spilled_objects": len(spilled),
            "spilled_bytes": sum(spilled),
            "total": dict(manager.total),
            "available_resources": dict(manager.available),
            "workers": len(manager.pool.workers),
            **_host_load(),
        }
    ]


def _host_load() -> dict[str, Any]:
    import psutil

    memory = psutil.virtual_memory()
    return {
        # Since the previous call: the dashboard samples every few seconds.
        "host_cpu_percent": psutil.cpu_percent(interval=None),
        "host_memory_percent": memory.percent,
        "host_memory_total": memory.total,
    }


def _logs(manager: NodeManager) -> list[dict[str, Any]]:
    """This node's log files: its workers' (alive or not), its own, and the head's."""
    mine = {f"worker-{w.pid}" for w in manager.pool.workers.values()}
    mine |= {f"worker-{record['pid']}" for record in manager.dead_workers}
    own = f"node_manager-{manager.node_id.hex()[:8]}"
    head = "node:__internal_head__" in manager.total
    found = []
    try:
        names = sorted(os.listdir(manager.log_dir))
    except OSError:
        names = []
    for name in names:
        stem = name.rsplit(".", 1)[0]
        if stem in mine or stem == own or (head and not stem.startswith(("worker-", "node_"))):
            path = os.path.join(manager.log_dir, name)
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            found.append({"node_id": manager.node_id.hex(), "filename": name, "size": size})
    return found


_KINDS = {"workers": _workers, "objects": _objects, "logs": _logs, "store": _store_stats}


def answer(manager: NodeManager, msg: p.NodeStateQuery) -> p.StateReply:
    handler = _KINDS.get(msg.kind)
    if handler is None:
        return p.StateReply(msg.request_id, (), error=f"unknown node state kind {msg.kind!r}")
    records = tuple(handler(manager))
    return p.StateReply(msg.request_id, records, len(records))


def read_log(log_dir: str, msg: p.ReadLog) -> p.LogChunk:
    name = msg.filename
    if not name or name != os.path.basename(name) or name.startswith("."):
        return p.LogChunk(msg.request_id, b"", error=f"{name!r} is not a log file's name")
    path = os.path.join(log_dir, name)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size + msg.offset) if msg.offset < 0 else min(msg.offset, size)
            f.seek(start)
            data = f.read(max(0, min(msg.length, 8 << 20)))
    except OSError as exc:
        return p.LogChunk(msg.request_id, b"", error=f"cannot read {name}: {exc.strerror}")
    return p.LogChunk(msg.request_id, data, start + len(data), size)
