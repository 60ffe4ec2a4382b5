"""``nebula list|summary|memory|timeline|logs|stack``: the cluster's state on the terminal.

Each reads through ``nebula.util.state`` (the records the dashboard's JSON API serves too),
connecting to ``--address`` (default: ``NEBULA_ADDRESS``, else this machine's cluster)
without starting a job.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from typing import Any

from nebula._cli.format import fmt_bytes, print_json, print_table

# kind -> (state function, columns shown, columns shown with --detail)
_LISTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "actors": (
        "list_actors",
        ("actor_id", "class_name", "state", "name", "pid", "node_id"),
        ("actor_id", "class_name", "state", "name", "pid", "restarts", "death_cause"),
    ),
    "tasks": (
        "list_tasks",
        ("task_id", "attempt_number", "name", "state", "type", "worker_pid", "error_type"),
        ("task_id", "name", "state", "worker_pid", "duration_ms", "error_type", "node_id"),
    ),
    "objects": (
        "list_objects",
        ("object_id", "object_size", "reference_type", "task_status", "type", "pid", "ip"),
        ("object_id", "object_size", "reference_type", "type", "pid", "spilled", "node_id"),
    ),
    "jobs": (
        "list_jobs",
        ("job_id", "submission_id", "type", "status", "entrypoint"),
        ("job_id", "submission_id", "type", "status", "entrypoint", "message"),
    ),
    "workers": (
        "list_workers",
        ("worker_id", "worker_type", "is_alive", "pid", "ip", "node_id"),
        ("worker_id", "worker_type", "state", "pid", "job_id", "actor_id", "exit_detail"),
    ),
    "nodes": (
        "list_nodes",
        ("node_id", "node_ip", "is_head_node", "state", "resources_total"),
        ("node_id", "node_ip", "is_head_node", "state", "resources_total"),
    ),
    "placement-groups": (
        "list_placement_groups",
        ("placement_group_id", "name", "state"),
        ("placement_group_id", "name", "state", "strategy"),
    ),
}


def _address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help="HOST:PORT of the cluster (default: NEBULA_ADDRESS, else this machine's)",
    )


def parse_filter(text: str) -> tuple[str, str, str]:
    for predicate in ("!=", "="):
        key, found, value = text.partition(predicate)
        if found and key:
            return key.strip(), predicate, value.strip()
    raise ValueError(f"--filter takes KEY=VALUE or KEY!=VALUE, got {text!r}.")


# ------------------------------------------------------------------------ list


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=sorted(_LISTS))
    _address(parser)
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep records whose KEY is VALUE (KEY!=VALUE: is not); repeatable",
    )
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--detail", action="store_true", help="every field of each record")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run_list(args: argparse.Namespace) -> int:
    from nebula.util import state

    function_name, columns, detail_columns = _LISTS[args.kind]
    filters = [parse_filter(text) for text in args.filter]
    records = getattr(state, function_name)(
        address=args.address, filters=filters, limit=args.limit, detail=args.detail
    )
    if args.format == "json":
        print_json([dict(r) for r in records])
        return 0
    print_table(records, detail_columns if args.detail else columns)
    print(f"({len(records)} {args.kind})")
    return 0


# --------------------------------------------------------------------- summary


def configure_summary(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("tasks", "actors", "objects"))
    _address(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run_summary(args: argparse.Namespace) -> int:
    from nebula.util import state

    function = {
        "tasks": state.summarize_tasks,
        "actors": state.summarize_actors,
        "objects": state.summarize_objects,
    }[args.kind]
    summary = function(address=args.address)
    if args.format == "json":
        print_json(summary)
        return 0
    cluster = summary["cluster"]
    if args.kind == "objects":
        print(f"{cluster['total_objects']} objects, {cluster['total_size_mb']} MiB")
        for group in cluster["summary"].values():
            print("by reference type: " + _counts(group["ref_type_counts"]))
            print("by task status:    " + _counts(group["task_state_counts"]))
        return 0
    rows = []
    for name, group in sorted(cluster["summary"].items()):
        counts = group["state_counts"]
        rows.append(
            {
                "name": name,
                "type": group.get("type", "ACTOR"),
                "total": sum(counts.values()),
                "states": _counts(counts),
            }
        )
    print_table(rows, ("name", "type", "total", "states"))
    if args.kind == "tasks":
        print(
            f"({cluster['total_tasks']} tasks, {cluster['total_actor_tasks']} actor tasks, "
            f"{cluster['total_actor_scheduled']} actors scheduled)"
        )
    else:
        print(f"({cluster['total_actors']} actors)")
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{state}: {count}" for state, count in sorted(counts.items()))


# ---------------------------------------------------------------------- memory


def configure_memory(parser: argparse.ArgumentParser) -> None:
    _address(parser)
    parser.add_argument("--sort-by", choices=("size", "reference_type", "pid"), default="size")
    parser.add_argument("--limit", type=int, default=100, help="objects listed per node")


def run_memory(args: argparse.Namespace) -> int:
    from nebula._state import records
    from nebula._state.connection import connect

    with connect(args.address) as conn:
        objects = records.objects(conn)
        stores = {s["node_id"]: s for s in records.node_stores(conn)}
    by_node: dict[str, list[dict[str, Any]]] = {}
    for record in objects:
        by_node.setdefault(record["node_id"] or "-", []).append(record)
    for node_id in sorted(set(stores) | set(by_node)):
        store = stores.get(node_id)
        print(f"--- node {node_id} ---")
        if store is not None:
            print(
                f"object store: {fmt_bytes(store['used'])} used of "
                f"{fmt_bytes(store['capacity'])}, {store['objects']} objects, "
                f"{store['spilled_objects']} spilled ({fmt_bytes(store['spilled_bytes'])})"
            )
        found = by_node.get(node_id, [])
        rows = [
            {
                **record,
                "size": fmt_bytes(record["object_size"]),
                "owner": f"{record['type']} pid={record['pid']}"
                if record["is_owner"]
                else "borrower",
                "where": "spilled"
                if record["spilled"]
                else ("shared memory" if record["in_shared_memory"] else "inline"),
            }
            for record in sorted(found, key=_order(args.sort_by))[: args.limit]
        ]
        if rows:
            print_table(rows, ("object_id", "size", "owner", "reference_type", "where", "ip"))
        print()
    total = sum(o["object_size"] or 0 for o in objects if o["is_owner"])
    print(
        f"{len(objects)} references to {len({o['object_id'] for o in objects})} objects; "
        f"{fmt_bytes(total)} owned in all"
    )
    return 0


def _order(key: str) -> Any:
    def order(record: dict[str, Any]) -> Any:
        return -(record["object_size"] or 0) if key == "size" else str(record[key])

    return order


# -------------------------------------------------------------------- timeline


def configure_timeline(parser: argparse.ArgumentParser) -> None:
    _address(parser)
    parser.add_argument(
        "-o", "--output", default="timeline.json", help="file to write (default: timeline.json)"
    )


def run_timeline(args: argparse.Namespace) -> int:
    from nebula._state.connection import connect
    from nebula._state.timeline import chrome_trace

    with connect(args.address) as conn:
        events = chrome_trace(conn)
    with open(args.output, "w") as f:
        json.dump(events, f)
    spans = sum(1 for e in events if e.get("ph") == "X")
    print(
        f"Wrote {spans} task spans to {args.output}; open it in https://ui.perfetto.dev "
        "or chrome://tracing."
    )
    return 0


# ------------------------------------------------------------------------ logs


def configure_logs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("filename", nargs="?", help="a log file's name (with --node-id)")
    _address(parser)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--actor-id")
    target.add_argument("--task-id")
    target.add_argument("--job-id", help="a submitted job's submission id (or job id)")
    target.add_argument("--pid", type=int, help="a worker's pid (with --node-id)")
    parser.add_argument("--node-id", help="the node (a prefix of its id is enough)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    parser.add_argument("--tail", type=int, default=1000, help="last lines to print (-1: all)")
    parser.add_argument("--err", action="store_true", help="the worker's stderr, not stdout")


def run_logs(args: argparse.Namespace) -> int:
    from nebula.util import state

    targeted = args.actor_id or args.task_id or args.job_id or args.pid or args.filename
    if not targeted:
        for node_id, names in sorted(
            state.list_logs(address=args.address, node_id=args.node_id).items()
        ):
            print(f"--- node {node_id} ---")
            for name in names:
                print(name)
        return 0
    submission_id = _submission_id(args.address, args.job_id) if args.job_id else None
    lines = state.get_log(
        address=args.address,
        node_id=_full_node_id(args.address, args.node_id),
        filename=args.filename,
        actor_id=args.actor_id,
        task_id=args.task_id,
        pid=args.pid,
        submission_id=submission_id,
        follow=args.follow,
        tail=args.tail,
        suffix="err" if args.err else "out",
    )
    for line in lines:
        print(line, flush=args.follow)
    return 0


def _submission_id(address: str | None, job_id: str) -> str:
    from nebula.util import state

    job = state.get_job(job_id, address=address)
    if job is None:
        raise ValueError(f"there is no job {job_id!r}.")
    if not job.get("submission_id"):
        raise ValueError(
            f"job {job_id} was not submitted with `nebula job submit`: its driver's output "
            "went to the terminal that ran it, not to a log file."
        )
    return str(job["submission_id"])


def _full_node_id(address: str | None, prefix: str | None) -> str | None:
    if prefix is None:
        return None
    from nebula.util import state

    matches = [n.node_id for n in state.list_nodes(address=address) if n.node_id.startswith(prefix)]
    if len(matches) != 1:
        raise ValueError(f"--node-id {prefix!r} matches {len(matches)} nodes; give more of it.")
    return str(matches[0])


# ----------------------------------------------------------------------- stack


def configure_stack(parser: argparse.ArgumentParser) -> None:
    _address(parser)
    parser.add_argument(
        "--native", action="store_true", help="with py-spy: native frames too (--native)"
    )


def run_stack(args: argparse.Namespace) -> int:
    """Every live worker's Python stacks on this machine: py-spy's dump when py-spy is
    installed and allowed to attach, else each process's own account of its threads."""
    from nebula._state import records
    from nebula._state.connection import connect

    with connect(args.address) as conn:
        local_ips = {n["node_ip"] for n in records.nodes(conn) if n["state"] == "ALIVE"}
        workers = [w for w in records.workers(conn) if w["is_alive"] and w.get("address")]
        py_spy = shutil.which("py-spy")
        dumped: set[int] = set()
        if py_spy is not None:
            for worker in workers:
                if _is_local(worker["ip"], local_ips) and _py_spy_dump(py_spy, worker, args.native):
                    dumped.add(worker["pid"])
        rest = [w for w in workers if w["pid"] not in dumped]
        if rest:
            if py_spy is None:
                print(
                    "(py-spy is not installed: `pip install py-spy` for native frames and "
                    "stacks of processes stuck outside Python; asking each process instead)\n"
                )
            by_pid = {w["pid"]: w for w in rest}
            for record in conn.ask_processes([w["address"] for w in rest], "stacks"):
                worker = by_pid.get(record["pid"], {})
                print(
                    f"=== {record['type'].lower()} pid {record['pid']} "
                    f"(node {str(worker.get('node_id') or '-')[:12]}) ==="
                )
                print(record["stacks"])
    return 0


def _is_local(ip: str, node_ips: set[str]) -> bool:
    from nebula._api import services

    return ip in ("127.0.0.1", "localhost") or ip == services.local_ip_towards(ip)


def _py_spy_dump(py_spy: str, worker: dict[str, Any], native: bool) -> bool:
    command = [py_spy, "dump", "--pid", str(worker["pid"])] + (["--native"] if native else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        return False
    print(f"=== {worker['worker_type'].lower()} pid {worker['pid']} (py-spy) ===")
    sys.stdout.write(done.stdout)
    return True
