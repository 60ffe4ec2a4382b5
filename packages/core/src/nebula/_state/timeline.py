"""Task attempts as a Chrome trace (the JSON Trace Event Format that Perfetto and
chrome://tracing load): one complete ("X") event per attempt that ran, on a track per
worker process, grouped by node."""

from __future__ import annotations

from typing import Any

from nebula._state import records
from nebula._state.connection import StateConnection


def chrome_trace(conn: StateConnection) -> list[dict[str, Any]]:
    attempts, _total, _dropped = records.tasks(conn, limit=1 << 30, detail=True)
    node_ips = {n["node_id"]: n["node_ip"] for n in records.nodes(conn)}
    node_numbers: dict[str, int] = {}
    events: list[dict[str, Any]] = []
    workers: set[tuple[int, int]] = set()
    for attempt in sorted(attempts, key=lambda a: a["start_time_ms"] or 0):
        start, end = attempt["start_time_ms"], attempt["end_time_ms"]
        node_id, pid = attempt["node_id"], attempt["worker_pid"]
        if start is None or end is None or node_id is None or pid is None:
            continue
        number = node_numbers.setdefault(node_id, len(node_numbers) + 1)
        workers.add((number, pid))
        events.append(
            {
                "name": attempt["name"],
                "cat": attempt["type"].lower(),
                "ph": "X",
                "ts": start * 1000,
                "dur": max(1, (end - start) * 1000),
                "pid": number,
                "tid": pid,
                "cname": "thread_state_running" if attempt["state"] == "FINISHED" else "bad",
                "args": {
                    "task_id": attempt["task_id"],
                    "attempt_number": attempt["attempt_number"],
                    "state": attempt["state"],
                    "job_id": attempt["job_id"],
                    "actor_id": attempt["actor_id"],
                    "error_type": attempt["error_type"],
                },
            }
        )
    metadata: list[dict[str, Any]] = []
    for node_id, number in node_numbers.items():
        name = f"Node {node_ips.get(node_id, '?')} {node_id[:8]}"
        metadata.append(
            {"name": "process_name", "ph": "M", "pid": number, "tid": 0, "args": {"name": name}}
        )
    for number, pid in sorted(workers):
        metadata.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": number,
                "tid": pid,
                "args": {"name": f"worker {pid}"},
            }
        )
    return metadata + events


def timeline(filename: str | None = None) -> list[dict[str, Any]] | None:
    """The cluster's task attempts as Chrome trace events; written to ``filename`` as JSON
    (load it in Perfetto or chrome://tracing) when one is given, else returned."""
    import json

    from nebula._state.connection import connect

    with connect() as conn:
        events = chrome_trace(conn)
    if filename is None:
        return events
    with open(filename, "w") as f:
        json.dump(events, f)
    return None
