"""What the cluster is running, as records: tasks, actors, objects, jobs, workers, nodes,
placement groups, and their logs.

As Ray's ``ray.util.state``: each ``list_*`` takes ``filters`` (``[("state", "=",
"RUNNING")]``; predicates ``=`` and ``!=``, compared as strings), a ``limit`` (100) and
``detail`` (every field, not only the main columns); ``get_*`` look one thing up by id;
``summarize_*`` count by function, class or reference type; ``get_log`` yields a worker's,
actor's, task's or submitted job's log lines (``follow=True`` keeps streaming). Inside a
driver or a task they use its connection; elsewhere they connect to ``address`` (default:
``NEBULA_ADDRESS``, else the cluster started on this machine) without starting a job.

A record reads both ways: ``task["state"]`` and ``task.state``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from nebula._state import logs as _logs
from nebula._state import records as _records
from nebula._state.connection import StateError, connect

Filter = tuple[str, str, Any]
DEFAULT_LIMIT = 100
DEFAULT_TIMEOUT = 30


class StateRecord(dict[str, Any]):
    """A dict whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(records: Sequence[dict[str, Any]]) -> list[StateRecord]:
    return [StateRecord(r) for r in records]


def _list(
    kind: str,
    address: str | None,
    filters: Sequence[Filter] | None,
    limit: int,
    timeout: int,
    detail: bool,
) -> list[StateRecord]:
    checked = _records.check_arguments(filters, limit)
    with connect(address, timeout) as conn:
        if kind == "tasks":
            found, _total, _dropped = _records.tasks(conn, checked, limit, detail)
            return _wrap(found)
        if kind == "jobs":
            found, _total = _records.jobs(conn, checked, limit)
            return _wrap(found)
        gather = {
            "actors": _records.actors,
            "nodes": _records.nodes,
            "placement_groups": _records.placement_groups,
            "workers": _records.workers,
            "objects": _records.objects,
        }[kind]
        picked, _total = _records.pick(kind, gather(conn), checked, limit, detail)
        return _wrap(picked)


def list_tasks(
    address: str | None = None,
    filters: Sequence[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[StateRecord]:
    """Task attempts, newest first: task_id, attempt_number, name, state, job_id, actor_id,
    type, func_or_class_name, parent_task_id, node_id, worker_id, worker_pid, error_type;
    with ``detail`` also error_message (the traceback), required_resources, events and the
    creation, start and end times in milliseconds."""
    return _list("tasks", address, filters, limit, timeout, detail)


def list_actors(
    address: str | None = None,
    filters: Sequence[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[StateRecord]:
    """Actors, dead ones included: actor_id, class_name, state (PENDING, ALIVE,
    RESTARTING, DEAD), job_id, name, node_id, pid, namespace; with ``detail`` also
    death_cause, restarts and is_detached."""
    return _list("actors", address, filters, limit, timeout, detail)


def list_objects(
    address: str | None = None,
    filters: Sequence[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[StateRecord]:
    """Object references held by live processes: object_id, object_size, task_status,
    reference_type (LOCAL_REFERENCE, USED_BY_PENDING_TASK, CAPTURED_IN_OBJECT,
    PINNED_IN_MEMORY, ACTOR_HANDLE, BORROWED), type (DRIVER or WORKER), pid, ip; with
    ``detail`` also spilled, in_shared_memory, is_owner, node_id and the reference counts."""
    return _list("objects", address, filters, limit, timeout, detail)


def list_jobs(
    address: str | None = None,
    filters: Sequence[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[StateRecord]:
    """Jobs, newest first: submitted ones (type SUBMISSION, with submission_id, status,
    entrypoint, message) and drivers started by hand (type DRIVER)."""
    return _list("jobs", address, filters, limit, timeout, detail)


def list_workers(
    address: str | None = None,
    filters: Sequence[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[StateRecord]:
    """Worker processes (and drivers), recently exited ones included: worker_id, is_alive,
    worker_type, exit_type, node_id, ip, pid; with ``detail`` also state (IDLE, LEASED,
    ACTOR, STARTING, DEAD), job_id, actor_id, exit_detail and launch time."""
    return _list("workers", address, filters, limit, timeout, detail)


def list_nodes(
    address: str | None = None,
    filters: Sequence[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[StateRecord]:
    """Nodes: node_id, node_ip, is_head_node, state (ALIVE, DEAD), resources_total,
    labels; with ``detail`` also resources_available and object_store_memory."""
    return _list("nodes", address, filters, limit, timeout, detail)


def list_placement_groups(
    address: str | None = None,
    filters: Sequence[Filter] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[StateRecord]:
    """Placement groups: placement_group_id, name, creator_job_id, state; with ``detail``
    also strategy and bundles (resources and node of each)."""
    return _list("placement_groups", address, filters, limit, timeout, detail)


def _get_one(kind: str, key: str, value: str, address: str | None, timeout: int) -> Any:
    found = _list(kind, address, [(key, "=", value)], 1, timeout, True)
    return found[0] if found else None


def get_task(
    id: Any, address: str | None = None, timeout: int = DEFAULT_TIMEOUT, _explain: bool = False
) -> list[StateRecord] | None:
    """Every attempt of a task (by id, or by an ObjectRef it returned), first attempt
    first; None if the cluster has no record of it."""
    task_id = _task_id_of(id)
    with connect(address, timeout) as conn:
        attempts = _records.task_attempts(conn, task_id)
    return _wrap(attempts) or None


def _task_id_of(id: Any) -> str:
    from nebula._api.object_ref import ObjectRef
    from nebula._ids import task_id_of

    if isinstance(id, ObjectRef):
        return task_id_of(id.object_id).hex()
    if not isinstance(id, str):
        raise TypeError(f"get_task() takes a task id or an ObjectRef, got {type(id).__name__}.")
    return id


def get_actor(
    id: str, address: str | None = None, timeout: int = DEFAULT_TIMEOUT, _explain: bool = False
) -> StateRecord | None:
    return _get_one("actors", "actor_id", id, address, timeout)  # type: ignore[no-any-return]


def get_node(
    id: str, address: str | None = None, timeout: int = DEFAULT_TIMEOUT, _explain: bool = False
) -> StateRecord | None:
    return _get_one("nodes", "node_id", id, address, timeout)  # type: ignore[no-any-return]


def get_worker(
    id: str, address: str | None = None, timeout: int = DEFAULT_TIMEOUT, _explain: bool = False
) -> StateRecord | None:
    return _get_one("workers", "worker_id", id, address, timeout)  # type: ignore[no-any-return]


def get_placement_group(
    id: str, address: str | None = None, timeout: int = DEFAULT_TIMEOUT, _explain: bool = False
) -> StateRecord | None:
    found = _get_one("placement_groups", "placement_group_id", id, address, timeout)
    return found  # type: ignore[no-any-return]


def get_job(
    id: str, address: str | None = None, timeout: int = DEFAULT_TIMEOUT, _explain: bool = False
) -> StateRecord | None:
    """A job by its job id or its submission id."""
    for key in ("submission_id", "job_id"):
        found = _get_one("jobs", key, id, address, timeout)
        if found is not None:
            return found  # type: ignore[no-any-return]
    return None


def get_objects(
    id: str, address: str | None = None, timeout: int = DEFAULT_TIMEOUT, _explain: bool = False
) -> list[StateRecord]:
    """Every process's reference to one object."""
    return _list("objects", address, [("object_id", "=", id)], 1 << 30, timeout, True)


def summarize_tasks(
    address: str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> dict[str, Any]:
    """Task attempts counted by function (or actor method) and state:
    ``{"cluster": {"summary": {name: {"func_or_class_name", "type", "state_counts"}},
    "total_tasks", "total_actor_tasks", "total_actor_scheduled", "summary_by"}}``."""
    with connect(address, timeout) as conn:
        return _records.task_summary(conn)


def summarize_actors(
    address: str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> dict[str, Any]:
    """Actors counted by class and state: ``{"cluster": {"summary": {class: {"class_name",
    "state_counts"}}, "total_actors", "summary_by"}}``."""
    with connect(address, timeout) as conn:
        return _records.actor_summary(conn)


def summarize_objects(
    address: str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> dict[str, Any]:
    """Objects counted by reference type and task status, with their total size (Ray's
    shape; call sites are not recorded, so everything is under ``"disabled"``)."""
    with connect(address, timeout) as conn:
        return _records.object_summary(conn)


def list_logs(
    address: str | None = None,
    node_id: str | None = None,
    node_ip: str | None = None,
    glob_filter: str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
) -> dict[str, list[str]]:
    """Log file names by node id."""
    import fnmatch

    with connect(address, timeout) as conn:
        if node_ip is not None and node_id is None:
            node_id = next(
                (n["node_id"] for n in _records.nodes(conn) if n["node_ip"] == node_ip), "-"
            )
        by_node = _records.log_files(conn, node_id)
    return {
        node: [
            f["filename"]
            for f in files
            if glob_filter is None or fnmatch.fnmatch(f["filename"], glob_filter)
        ]
        for node, files in by_node.items()
    }


def get_log(
    address: str | None = None,
    node_id: str | None = None,
    node_ip: str | None = None,
    filename: str | None = None,
    actor_id: str | None = None,
    task_id: str | None = None,
    pid: int | None = None,
    follow: bool = False,
    tail: int = 1000,
    timeout: int = DEFAULT_TIMEOUT,
    suffix: str = "out",
    encoding: str | None = "utf-8",
    errors: str | None = "strict",
    submission_id: str | None = None,
    attempt_number: int = 0,
    _interval: float | None = None,
) -> Iterator[str]:
    """Lines of a log: an actor's or a task's worker (``suffix="err"`` for stderr), a
    worker by ``pid`` and node, a submitted job's driver (``submission_id=``), or any file
    by ``node_id`` and ``filename``. The last ``tail`` lines (-1: all), then, with
    ``follow``, new lines as they are written."""
    with connect(address, timeout) as conn:
        target = _logs.resolve(
            conn,
            node_id=node_id,
            node_ip=node_ip,
            filename=filename,
            actor_id=actor_id,
            task_id=task_id,
            pid=pid,
            submission_id=submission_id,
            attempt_number=attempt_number,
            suffix=suffix,
        )
        lines, offset = _logs.read_tail(conn, target, tail)
        yield from lines
        if follow:
            yield from _logs.follow(conn, target, offset, _interval or 0.5)


__all__ = [
    "StateError",
    "StateRecord",
    "get_actor",
    "get_job",
    "get_log",
    "get_node",
    "get_objects",
    "get_placement_group",
    "get_task",
    "get_worker",
    "list_actors",
    "list_jobs",
    "list_logs",
    "list_nodes",
    "list_objects",
    "list_placement_groups",
    "list_tasks",
    "list_workers",
    "summarize_actors",
    "summarize_objects",
    "summarize_tasks",
]
