"""``nebula start``, ``stop``, ``status`` and ``get-auth-token``: the cluster's processes."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import time
from typing import Any

_PROCESS_MARKERS = (
    "nebula._control_store",
    "nebula._node_manager",
    "nebula._worker",
    "nebula._dashboard",
)


def configure_start(start: argparse.ArgumentParser) -> None:
    role = start.add_mutually_exclusive_group(required=True)
    role.add_argument("--head", action="store_true", help="start a new cluster's head node")
    role.add_argument("--address", help="HOST:PORT of the head node to join")
    start.add_argument("--port", type=int, default=None, help="head node port (default 6380)")
    start.add_argument("--node-ip-address", default="127.0.0.1", help="interface to bind")
    start.add_argument("--num-cpus", type=float)
    start.add_argument("--num-gpus", type=float)
    start.add_argument("--resources", default="", help="JSON, e.g. '{\"tpu\": 4}'")
    start.add_argument("--object-store-memory", type=int)
    start.add_argument(
        "--include-dashboard",
        type=lambda text: text.lower() in ("1", "true", "yes"),
        default=True,
        metavar="BOOL",
        help="serve the dashboard from the head (default: true, when it is installed)",
    )
    start.add_argument(
        "--dashboard-host",
        default="127.0.0.1",
        help="interface the dashboard listens on; beyond loopback it asks for the cluster "
        "token (default 127.0.0.1)",
    )
    start.add_argument("--dashboard-port", type=int, default=8265)


def configure_stop(stop: argparse.ArgumentParser) -> None:
    stop.add_argument("--grace-period", type=float, default=5.0)
    stop.add_argument(
        "--all",
        action="store_true",
        help="also stop the clusters running programs started for themselves (nebula.init())",
    )


def configure_status(status: argparse.ArgumentParser) -> None:
    status.add_argument("--address", default="auto")


def run_start(args: argparse.Namespace) -> int:
    from nebula import _auth, _config
    from nebula._api import services

    _parse_resources(args.resources)  # refuse bad JSON before starting anything
    host = args.node_ip_address
    if args.head:
        port = args.port or _config.DEFAULT_HEAD_PORT
        previous = _recoverable_head(f"{host}:{port}")
        if previous is not None:
            # The head's control store died: bring it back on the same session and tables.
            session_dir, pids = previous
            token = _auth.token_from_environment(_config.TEMP_DIR) or _auth.new_token()
            print(f"Recovering the cluster of {session_dir} (its control store had stopped).")
        else:
            session_dir, _tag = services.new_session()
            token = os.environ.get(_auth.TOKEN_ENV) or _auth.new_token()
            pids = []
        token_path = _auth.write_token_file(_config.TEMP_DIR, token)
        cs, cs_address = services.start_control_store(
            session_dir, host=host, port=port, detached=True, token=token
        )
        pids = [cs.pid, *pids[1:]]
        head_alive = len(pids) > 1 and _alive(pids[1])
        if head_alive:
            node_text = f"node manager pid {pids[1]} kept"
        else:
            nm, node_id = _start_node(args, session_dir, cs_address, token)
            pids = [cs.pid, nm.pid]
            node_text = f"node {node_id.hex()[:12]}"
        address = cs_address.removeprefix("tcp://")
        kept = previous is not None and len(pids) > 2 and _alive(pids[2])
        if kept:  # the old dashboard reconnects to the recovered control store by itself
            info = services.read_address_file() or {}
            kept_url = info.get("dashboard_url")
            dashboard_url = str(kept_url) if kept_url else None
            dashboard_text = ""
        else:
            pids = pids[:2]
            dashboard_url, dashboard_text = _start_dashboard(args, session_dir, address, token)
            if dashboard_url is not None:
                pids.append(int(dashboard_text))
        services.write_address_file(address, session_dir, pids, dashboard_url=dashboard_url)
        print(f"Nebula head node started at {address} ({node_text}).")
        if dashboard_url is not None:
            print(f"Dashboard:              {dashboard_url}")
            print(f"Submit a job with:      nebula job submit --address {dashboard_url} \\")
            print("                            --working-dir . -- python run.py")
        elif dashboard_text:
            print(f"No dashboard: {dashboard_text}.")
        print('Connect a driver with:  nebula.init(address="auto")  or')
        print(f'                        nebula.init(address="{address}")')
        print(f"Join another node with: nebula start --address {address}")
        print(f"The cluster token is in {token_path} (readable by you only); on other")
        print(f"machines set {_auth.TOKEN_ENV} to its content before joining or connecting.")
        print("Stop it with:           nebula stop")
        return 0
    cs_address = "tcp://" + args.address.removeprefix("tcp://")
    join_token = _auth.token_from_environment(_config.TEMP_DIR, cs_address)
    if join_token is None:
        raise ConnectionError(
            f"no cluster token: set {_auth.TOKEN_ENV} to the token the head node printed"
        )
    try:
        reply = services.probe_cluster(cs_address, host=host, token=join_token, timeout_s=10)
    except TimeoutError:
        raise ConnectionError(
            f"no Nebula head node answers at {args.address}, or it rejected this "
            f"cluster token ({_auth.TOKEN_ENV})"
        ) from None
    os.makedirs(os.path.join(reply.session_dir, "logs"), exist_ok=True)
    nm, node_id = _start_node(args, reply.session_dir, cs_address, join_token)
    print(f"Node {node_id.hex()[:12]} joined the cluster at {args.address} (pid {nm.pid}).")
    return 0


def _start_dashboard(
    args: argparse.Namespace, session_dir: str, address: str, token: str
) -> tuple[str | None, str]:
    """Start the head's dashboard: (its URL, its pid) or (None, why there is none)."""
    from nebula._api import services
    from nebula._auth import TOKEN_ENV
    from nebula._dashboard import launch

    if not args.include_dashboard:
        return None, ""
    if not launch.available():
        return None, launch.UNAVAILABLE
    port = launch.choose_port(args.dashboard_host, args.dashboard_port)
    command = launch.command(
        host=args.dashboard_host, port=port, cluster_address=address, session_dir=session_dir
    )
    process, url = services.launch_process(
        command[2:],
        detached=True,
        log_path=os.path.join(session_dir, "logs", "dashboard.err"),
        env={TOKEN_ENV: token},
    )
    return url, str(process.pid)


def _start_node(
    args: argparse.Namespace, session_dir: str, cs_address: str, token: str
) -> tuple[subprocess.Popen[bytes], bytes]:
    from nebula._api import services

    process, _address, node_id = services.start_node_manager(
        session_dir,
        control_store=cs_address,
        host=args.node_ip_address,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        resources=_parse_resources(args.resources),
        object_store_memory=args.object_store_memory,
        detached=True,
        token=token,
        head=bool(args.head),
    )
    return process, node_id


def _parse_resources(text: str) -> dict[str, float] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and v >= 0 for k, v in value.items()
    ):
        raise ValueError(
            f"--resources must be a JSON object of names to non-negative amounts, like "
            f"'{{\"ssd\": 1}}', got {text!r}"
        )
    return {k: float(v) for k, v in value.items()}


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _recoverable_head(address: str) -> tuple[str, list[int]] | None:
    """The session of a head at ``address`` whose control store is gone but whose tables
    remain, so starting the head again recovers it instead of starting afresh."""
    from nebula._api import services

    info = services.read_address_file()
    if info is None or info.get("address") != address:
        return None
    session_dir = str(info.get("session_dir", ""))
    pids = [int(p) for p in info.get("pids", [])]  # type: ignore[attr-defined]
    if not pids or _alive(pids[0]):
        return None
    if not os.path.exists(os.path.join(session_dir, "control_store.sqlite3")):
        return None
    return session_dir, pids


def nebula_processes(*, include_owned: bool = True) -> list[Any]:
    """This user's Nebula processes on this machine.

    ``include_owned=False`` keeps only the clusters started with ``nebula start`` (their
    control stores and node managers have no owning driver) and what those started:
    a cluster a running program started for itself with ``nebula.init()`` is that
    program's, and stops with it.
    """
    import psutil

    found: list[Any] = []
    uid = os.getuid()
    for proc in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            if proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            cmdline = proc.info["cmdline"] or []
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        text = " ".join(cmdline)
        if proc.pid != os.getpid() and any(m in text for m in _PROCESS_MARKERS):
            found.append(proc)
    if include_owned:
        return found
    roots = [p for p in found if _is_detached_service(p)]
    chosen = {p.pid: p for p in roots}
    for root in roots:
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                chosen.setdefault(child.pid, child)
    return list(chosen.values())


def _is_detached_service(proc: Any) -> bool:
    """A control store, node manager or dashboard that no driver owns (``nebula start``)."""
    import psutil

    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        return False
    text = " ".join(cmdline)
    service = any(
        m in text for m in ("nebula._control_store", "nebula._node_manager", "nebula._dashboard")
    )
    return service and "--parent-pid" not in cmdline


def run_stop(args: argparse.Namespace) -> int:
    import psutil

    from nebula import _auth, _config
    from nebula._api import services
    from nebula._object_store import shm

    procs = nebula_processes(include_owned=args.all)
    tags = set()
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            cmd = proc.cmdline()
            if "--session-tag" in cmd:
                tags.add(cmd[cmd.index("--session-tag") + 1])
            proc.send_signal(signal.SIGTERM)
    _gone, alive = psutil.wait_procs(procs, timeout=args.grace_period)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    info = services.read_address_file()
    if info is not None:
        tags.add(services.session_tag_of(str(info.get("session_dir", ""))))
        _auth.remove_token_file(_config.TEMP_DIR, str(info.get("address", "")))
        with contextlib.suppress(OSError):
            os.unlink(services.address_file())
    for tag in tags:
        if tag:
            shm.delete_session_objects(tag)
    print(f"Stopped {len(procs)} Nebula process(es).")
    return 0


def run_status(args: argparse.Namespace) -> int:
    import nebula

    nebula.init(address=args.address, log_to_driver=False)
    try:
        nodes = nebula.nodes()
        available = nebula.available_resources()
        total = nebula.cluster_resources()
    finally:
        nebula.shutdown()
    alive = [n for n in nodes if n["Alive"]]
    print(f"Nodes: {len(alive)} alive, {len(nodes) - len(alive)} dead")
    for node in nodes:
        state = "alive" if node["Alive"] else "dead"
        res = ", ".join(f"{k}={_fmt(v, k)}" for k, v in sorted(node["Resources"].items()))
        print(f"  {node['NodeID'][:12]}  {node['NodeManagerAddress']:<15} {state:<5}  {res}")
    print("Resources (used / total):")
    for name, amount in sorted(total.items()):
        used = amount - available.get(name, 0.0)
        print(f"  {name}: {_fmt(used, name)} / {_fmt(amount, name)}")
    time.sleep(0)
    return 0


def _fmt(value: float, name: str) -> str:
    if name == "memory":
        return f"{value / 2**30:.1f}GiB"
    return f"{value:g}"


def configure_get_auth_token(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help="HOST:PORT of the cluster (default: NEBULA_ADDRESS, else this machine's)",
    )


def run_get_auth_token(args: argparse.Namespace) -> int:
    """Print the cluster token: the bearer token the dashboard and job API ask for when
    they listen beyond this machine, and what other machines need to join."""
    from nebula import _auth, _config
    from nebula._state.connection import resolve_address

    address = resolve_address(args.address)
    token = _auth.token_from_environment(_config.TEMP_DIR, f"tcp://{address}")
    if token is None:
        raise ConnectionError(
            f"no token for the cluster at {address} is kept on this machine for this user; "
            "run this where the cluster was started, as the user who started it"
        )
    print(token)
    return 0
