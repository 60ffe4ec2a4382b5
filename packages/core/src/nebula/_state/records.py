"""The cluster's state as records (plain dicts), one function per kind.

Tasks and jobs come from the control store's tables, filtered there; actors, nodes and
placement groups from its other tables; workers and stored objects from every node
manager; object references from every live driver and worker. Records carry Ray's field
names so code and habits port.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nebula import _protocol as p
from nebula._control_store.task_events import select
from nebula._state.connection import Filter, StateConnection

HEAD_RESOURCE = "node:__internal_head__"

# Columns each kind shows without ``detail`` (Ray's defaults, with Nebula's names).
BASIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "actors": (
        "actor_id",
        "class_name",
        "state",
        "job_id",
        "name",
        "node_id",
        "pid",
        "namespace",
    ),
    "nodes": ("node_id", "node_ip", "is_head_node", "state", "resources_total", "labels"),
    "workers": ("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip", "pid"),
    "objects": (
        "object_id",
        "object_size",
        "task_status",
        "reference_type",
        "call_site",
        "type",
        "pid",
        "ip",
    ),
    "placement_groups": ("placement_group_id", "name", "creator_job_id", "state"),
}


def check_arguments(filters: Sequence[Filter] | None, limit: int) -> list[Filter]:
    checked = []
    for item in filters or ():
        if not (isinstance(item, (tuple, list)) and len(item) == 3 and item[1] in ("=", "!=")):
            raise ValueError(
                "a filter is (key, '=' or '!=', value), like ('state', '=', 'ALIVE'); "
                f"got {item!r}."
            )
        checked.append((str(item[0]), str(item[1]), item[2]))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}.")
    return checked


def pick(
    kind: str,
    records: Iterable[dict[str, Any]],
    filters: Sequence[Filter],
    limit: int,
    detail: bool,
) -> tuple[list[dict[str, Any]], int]:
    """Filter, cut to ``limit`` and (without ``detail``) keep the kind's basic columns."""
    columns = BASIC_COLUMNS.get(kind)
    selected: list[dict[str, Any]] = []
    total = 0
    for record in select(records, filters):
        total += 1
        if len(selected) < limit:
            keep = detail or columns is None
            selected.append(record if keep else {c: record.get(c) for c in columns})  # type: ignore[union-attr]
    return selected, total


# ---------------------------------------------------------------- control store


def actors(conn: StateConnection) -> list[dict[str, Any]]:
    reply = conn.call(conn.control_store, lambda rid, to: p.ListActors(rid, to))
    assert isinstance(reply, p.ActorListReply)
    return [dict(record) for record in reply.actors]


def nodes(conn: StateConnection) -> list[dict[str, Any]]:
    info = conn.cluster_info()
    return [
        {
            "node_id": node.node_id.hex(),
            "node_ip": node.ip,
            "is_head_node": HEAD_RESOURCE in node.resources,
            "state": "ALIVE" if node.alive else "DEAD",
            "node_name": node.ip,
            "resources_total": dict(node.resources),
            "resources_available": dict(info.available.get(node.node_id, {})),
            "labels": dict(node.labels),
            "object_store_memory": node.object_store_memory,
            "address": node.address,
        }
        for node in info.nodes
    ]


def placement_groups(conn: StateConnection) -> list[dict[str, Any]]:
    reply = conn.call(conn.control_store, lambda rid, to: p.GetPlacementGroup(rid, to))
    assert isinstance(reply, p.PlacementGroupReply)
    return [
        {
            "placement_group_id": gid.hex(),
            "name": name,
            "creator_job_id": None,
            "state": state,
            "strategy": strategy,
            "bundles": [
                {"bundle_id": i, "resources": dict(b), "node_id": nodes[i].hex() or None}
                for i, b in enumerate(bundles)
            ],
        }
        for gid, name, strategy, state, bundles, nodes in reply.groups
    ]


def jobs(
    conn: StateConnection, filters: Sequence[Filter] = (), limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    reply = conn.query("jobs", filters, limit)
    return [dict(r) for r in reply.records], reply.total


def drivers(conn: StateConnection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.query("drivers", limit=1 << 30).records]


def tasks(
    conn: StateConnection, filters: Sequence[Filter] = (), limit: int = 100, detail: bool = False
) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """Task attempts, newest first; and how many matched; and how many the table dropped."""
    reply = conn.query("tasks", filters, limit, detail)
    return [dict(r) for r in reply.records], reply.total, dict(reply.dropped)


def task_attempts(conn: StateConnection, task_id: str) -> list[dict[str, Any]]:
    records, _total, _dropped = tasks(conn, [("task_id", "=", task_id)], 1 << 30, True)
    return sorted(records, key=lambda r: r["attempt_number"])


def task_summary(conn: StateConnection) -> dict[str, Any]:
    reply = conn.query("task_summary", limit=1 << 30)
    summary: dict[str, Any] = {}
    totals = {"total_tasks": 0, "total_actor_tasks": 0, "total_actor_scheduled": 0}
    for group in reply.records:
        name = group["func_or_class_name"]
        entry = summary.setdefault(
            name, {"func_or_class_name": name, "type": group["type"], "state_counts": {}}
        )
        for state, count in group["state_counts"].items():
            entry["state_counts"][state] = entry["state_counts"].get(state, 0) + count
            if group["type"] == "ACTOR_TASK":
                totals["total_actor_tasks"] += count
            elif group["type"] == "ACTOR_CREATION_TASK":
                totals["total_actor_scheduled"] += count
            else:
                totals["total_tasks"] += count
    return {"cluster": {"summary": summary, **totals, "summary_by": "func_name"}}


def actor_summary(conn: StateConnection) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    every = actors(conn)
    for record in every:
        entry = summary.setdefault(
            record["class_name"], {"class_name": record["class_name"], "state_counts": {}}
        )
        counts = entry["state_counts"]
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    return {"cluster": {"summary": summary, "total_actors": len(every), "summary_by": "class"}}


# ------------------------------------------------------------ nodes, processes


def workers(conn: StateConnection) -> list[dict[str, Any]]:
    found = conn.ask_nodes("workers")
    for driver in drivers(conn):
        found.append(
            {
                "worker_id": None,
                "worker_type": "DRIVER",
                "is_alive": driver["alive"],
                "state": "DRIVER" if driver["alive"] else "DEAD",
                "node_id": None,
                "ip": driver["ip"],
                "pid": driver["pid"],
                "job_id": driver["job_id"],
                "actor_id": None,
                "worker_launch_time_ms": driver["start_time_ms"],
                "exit_type": None if driver["alive"] else "INTENDED_USER_EXIT",
                "exit_detail": None,
                "address": driver["address"],
            }
        )
    return found


def node_stores(conn: StateConnection) -> list[dict[str, Any]]:
    """Each live node's object store use and resources, as its node manager sees them now."""
    return conn.ask_nodes("store")


def objects(conn: StateConnection) -> list[dict[str, Any]]:
    """Every object some live process references, with where its bytes are.

    One record per (object, process that references it), as Ray lists them: an object held
    by its owner and two borrowers appears three times.
    """
    addresses = [w["address"] for w in workers(conn) if w["is_alive"] and w.get("address")]
    references = conn.ask_processes(addresses, "objects")
    stored = {o["object_id"]: o for o in conn.ask_nodes("objects")}
    for record in references:
        in_store = stored.get(record["object_id"])
        record["spilled"] = bool(in_store and in_store["spilled"])
        if in_store is not None:
            record["node_id"] = in_store["node_id"]
    return references


def object_summary(conn: StateConnection) -> dict[str, Any]:
    every = objects(conn)
    group: dict[str, Any] = {
        "total_objects": 0,
        "total_size_mb": 0.0,
        "total_num_workers": len({(o["ip"], o["pid"]) for o in every}),
        "total_num_nodes": len({o["node_id"] for o in every if o["node_id"]}),
        "task_state_counts": {},
        "ref_type_counts": {},
    }
    ids = set()
    for record in every:
        ids.add(record["object_id"])
        for key, value in (
            ("task_state_counts", record["task_status"]),
            ("ref_type_counts", record["reference_type"]),
        ):
            group[key][value] = group[key].get(value, 0) + 1
    sizes = {o["object_id"]: o["object_size"] or 0 for o in every}
    group["total_objects"] = len(ids)
    group["total_size_mb"] = round(sum(sizes.values()) / 2**20, 3)
    return {
        "cluster": {
            "summary": {"disabled": group} if every else {},
            "total_objects": len(ids),
            "total_size_mb": group["total_size_mb"],
            "callsite_enabled": False,
            "summary_by": "callsite",
        }
    }


def stacks(conn: StateConnection, node_ip: str | None = None) -> list[dict[str, Any]]:
    """The Python stacks of every live worker (and driver), optionally of one machine."""
    chosen = [
        w
        for w in workers(conn)
        if w["is_alive"] and w.get("address") and (node_ip is None or w["ip"] == node_ip)
    ]
    by_pid = {w["pid"]: w for w in chosen}
    found = conn.ask_processes([w["address"] for w in chosen], "stacks")
    for record in found:
        worker = by_pid.get(record["pid"], {})
        record["ip"] = worker.get("ip")
        record["node_id"] = worker.get("node_id")
    return found


def log_files(conn: StateConnection, node_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Log files by node id."""
    by_node: dict[str, list[dict[str, Any]]] = {}
    for record in conn.ask_nodes("logs"):
        if node_id is None or record["node_id"].startswith(node_id):
            by_node.setdefault(record["node_id"], []).append(record)
    return by_node


def head_node_id(conn: StateConnection) -> str:
    for node in nodes(conn):
        if node["is_head_node"] and node["state"] == "ALIVE":
            return str(node["node_id"])
    raise ValueError("the cluster has no live head node.")
