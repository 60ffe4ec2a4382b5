"""Entry point: ``python -m nebula._node_manager``."""

from __future__ import annotations

import argparse
import json
import os
import threading

from nebula import _config
from nebula import _protocol as p
from nebula._node_manager.server import NodeManager
from nebula._node_manager.zygote import Zygote
from nebula._process import (
    announce_ready,
    drain,
    exit_now,
    install_term_handler,
    parent_alive,
    require_token,
    setup_logging,
)
from nebula._transport import Endpoint, allow_many_peers, sweep_stale_ipc_paths

HEAD_NODE_RESOURCE = "node:__internal_head__"


def detect_resources(args: argparse.Namespace) -> dict[str, float]:
    """The node's resources: what plugins detect, overridden by explicit flags."""
    from nebula._plugins.manager import resource_registry

    resources = {k: float(v) for k, v in resource_registry().detect_all().items()}
    if args.num_cpus is not None:
        resources["CPU"] = float(args.num_cpus)
    if args.num_gpus is not None:
        resources["GPU"] = float(args.num_gpus)
    if args.resources:
        resources.update({k: float(v) for k, v in json.loads(args.resources).items()})
    # As Ray's nodes do: ``resources={f"node:{ip}": 0.01}`` pins work to a machine.
    resources[f"node:{args.host}"] = 1.0
    if args.head:
        resources[HEAD_NODE_RESOURCE] = 1.0
    return {k: v for k, v in resources.items() if v > 0 or k in ("CPU", "GPU")}


def main() -> None:
    parser = argparse.ArgumentParser(prog="nebula-node-manager")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-store", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--session-tag", required=True)
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--num-cpus", type=float)
    parser.add_argument("--num-gpus", type=float)
    parser.add_argument("--resources", default="")
    parser.add_argument("--object-store-memory", type=int, default=0)
    parser.add_argument("--prestart", type=int, default=-1)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--head", action="store_true", help="the head machine's node")
    args = parser.parse_args()
    setup_logging("node-manager")
    token = require_token()
    # Forked once the plugins are imported (every worker needs them), but before they
    # probe devices for resources and before the endpoint starts ZeroMQ's threads.
    zygote = _start_zygote(args) if _config.FORK_WORKERS else None
    resources = detect_resources(args)
    allow_many_peers()
    endpoint = Endpoint(args.host, args.port, token=token)
    # Socket files of processes killed on this host before: off the start-up path.
    threading.Thread(target=sweep_stale_ipc_paths, name="nebula-sweep", daemon=True).start()
    log_dir = os.path.join(args.session_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    store_memory = args.object_store_memory or _default_store_memory()
    prestart = args.prestart if args.prestart >= 0 else int(resources.get("CPU", 1))
    manager = NodeManager(
        endpoint,
        node_id=bytes.fromhex(args.node_id),
        control_store=args.control_store,
        resources=resources,
        object_store_memory=store_memory,
        session_tag=args.session_tag,
        log_dir=log_dir,
        prestart_workers=prestart,
        spill_dir=os.path.join(args.session_dir, "spill", args.node_id[:8]),
        zygote=zygote,
    )
    node_info = p.NodeInfoMsg(
        manager.node_id, endpoint.address, args.host, resources, object_store_memory=store_memory
    )
    endpoint.send(args.control_store, p.RegisterNode(node_info))
    _notify_plugins(node_info)
    stop = [False]
    signalled = install_term_handler(stop)

    def on_fd(fd: int) -> None:
        if fd == signalled:
            drain(fd)
        elif fd == manager.store.io.ready_fd:
            manager.on_store_io()
        else:
            manager.on_output(fd)

    announce_ready(endpoint.address)
    # After the ready line: the driver registers its job while the workers start.
    manager.prestart()
    try:
        endpoint.serve(
            manager.handle,
            should_stop=lambda: stop[0] or manager.stopped or not parent_alive(args.parent_pid),
            on_tick=manager.tick,
            tick_s=0.05,
            extra_fds=lambda: [signalled, manager.store.io.ready_fd, *manager.pool.output_fds()],
            on_fd=on_fd,
        )
    finally:
        endpoint.send(args.control_store, p.UnregisterNode(manager.node_id))
        manager.close()
        endpoint.close()
    if args.parent_pid:
        exit_now()  # the driver waits for this in shutdown()


def _start_zygote(args: argparse.Namespace) -> Zygote | None:
    from nebula._plugins.manager import get_plugin_manager

    get_plugin_manager()
    return Zygote.start(
        control_store=args.control_store,
        node_id=args.node_id,
        session_tag=args.session_tag,
        host=args.host,
    )


def _default_store_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total * _config.OBJECT_STORE_MEMORY_FRACTION)


def _notify_plugins(node: p.NodeInfoMsg) -> None:
    from nebula._plugins.lifecycle import NodeInfo
    from nebula._plugins.manager import get_plugin_manager

    get_plugin_manager().hook.nebula_node_started(
        node=NodeInfo(node_id=node.node_id.hex(), address=node.address, resources=node.resources)
    )


if __name__ == "__main__":
    main()
