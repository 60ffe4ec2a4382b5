"""Finding and reading log files: a worker's by actor, task or pid, a submitted job's driver
log, or any file by node and name. Files are read through their node's manager, so this
works from any machine that can reach the cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from nebula._state import records
from nebula._state.connection import StateConnection

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LogTarget:
    node_id: str
    filename: str


def job_log_name(submission_id: str) -> str:
    return f"job-driver-{submission_id}.log"


def resolve(
    conn: StateConnection,
    *,
    node_id: str | None = None,
    node_ip: str | None = None,
    filename: str | None = None,
    actor_id: str | None = None,
    task_id: str | None = None,
    pid: int | None = None,
    submission_id: str | None = None,
    attempt_number: int = 0,
    suffix: str = "out",
) -> LogTarget:
    """Which file on which node holds the log asked for; ValueError saying why not."""
    if suffix not in ("out", "err"):
        raise ValueError(f"suffix is 'out' or 'err', got {suffix!r}.")
    if node_ip is not None and node_id is None:
        matches = [n for n in records.nodes(conn) if n["node_ip"] == node_ip]
        if not matches:
            raise ValueError(f"no node has the address {node_ip!r}.")
        node_id = matches[0]["node_id"]
    if submission_id is not None:
        return LogTarget(records.head_node_id(conn), job_log_name(submission_id))
    if actor_id is not None:
        actor = next((a for a in records.actors(conn) if a["actor_id"] == actor_id), None)
        if actor is None:
            raise ValueError(f"there is no actor {actor_id!r}.")
        if not actor["pid"] or not actor["node_id"]:
            raise ValueError(f"actor {actor_id} has not been placed on a worker yet.")
        return LogTarget(actor["node_id"], f"worker-{actor['pid']}.{suffix}")
    if task_id is not None:
        attempts = records.task_attempts(conn, task_id)
        if not attempts:
            raise ValueError(f"there is no task {task_id!r} (or its record was dropped).")
        attempt = next((a for a in attempts if a["attempt_number"] == attempt_number), None)
        attempt = attempt or attempts[-1]
        if not attempt["worker_pid"] or not attempt["node_id"]:
            raise ValueError(f"task {task_id} has not run on a worker yet.")
        return LogTarget(attempt["node_id"], f"worker-{attempt['worker_pid']}.{suffix}")
    if pid is not None:
        if node_id is None:
            raise ValueError("a pid needs node_id= or node_ip= to say which machine.")
        return LogTarget(node_id, f"worker-{pid}.{suffix}")
    if filename is not None:
        if node_id is None:
            raise ValueError("a filename needs node_id= or node_ip= to say which machine.")
        return LogTarget(node_id, filename)
    raise ValueError(
        "say which log: actor_id=, task_id=, pid= with node_id=, submission_id=, or "
        "node_id= with filename=."
    )


def read_tail(conn: StateConnection, target: LogTarget, tail: int) -> tuple[list[str], int]:
    """The last ``tail`` lines (all of them when ``tail`` < 0), and the offset after them."""
    if tail < 0:
        lines: list[str] = []
        offset = 0
        while True:
            chunk = conn.read_log(target.node_id, target.filename, offset, _CHUNK)
            lines_text = chunk.data.decode(errors="replace")
            lines.append(lines_text)
            offset = chunk.end
            if not chunk.data or chunk.end >= chunk.size:
                return "".join(lines).splitlines(), offset
    window = max(64 * 1024, tail * 256)
    chunk = conn.read_log(target.node_id, target.filename, -window, window)
    text = chunk.data.decode(errors="replace")
    found = text.splitlines()
    if chunk.end - len(chunk.data) > 0 and found:
        found = found[1:]  # the first line was cut by the window
    return found[-tail:] if tail else [], chunk.end


def follow(
    conn: StateConnection, target: LogTarget, offset: int, interval_s: float = 0.5
) -> Iterator[str]:
    """Lines appended to the file from ``offset`` on, as they come (never ends by itself)."""
    partial = b""
    while True:
        chunk = conn.read_log(target.node_id, target.filename, offset, _CHUNK)
        if chunk.data:
            offset = chunk.end
            data = partial + chunk.data
            *complete, partial = data.split(b"\n")
            for line in complete:
                yield line.decode(errors="replace")
        else:
            time.sleep(interval_s)
