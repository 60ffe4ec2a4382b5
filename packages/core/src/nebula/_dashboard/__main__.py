"""Entry point: ``python -m nebula._dashboard`` (started by ``init`` and ``nebula start``)."""

from __future__ import annotations

import argparse
import os
import socket
import threading

from nebula._process import announce_ready, parent_alive, require_token, setup_logging

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main() -> None:
    parser = argparse.ArgumentParser(prog="nebula-dashboard")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8265)
    parser.add_argument("--cluster-address", required=True, help="HOST:PORT of the control store")
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args()
    setup_logging("dashboard")
    token = require_token()

    import uvicorn
    from prometheus_client import CollectorRegistry, generate_latest

    from nebula._dashboard.api import Api
    from nebula._dashboard.app import build_app
    from nebula._dashboard.history import History
    from nebula._dashboard.jobs import JobManager
    from nebula._dashboard.launch import DASHBOARD_URL_KEY
    from nebula._dashboard.prometheus import ClusterCollector
    from nebula._state.connection import StateConnection, open_core_worker

    cw = open_core_worker(args.cluster_address, token)
    conn = StateConnection(cw)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    url = f"http://{args.host}:{port}"
    jobs = JobManager(
        conn, session_dir=args.session_dir, cluster_address=args.cluster_address, token=token
    )
    history = History(conn)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(conn))
    app = build_app(
        Api(conn, jobs, history),
        token=None if args.host in LOOPBACK else token,
        metrics=lambda: generate_latest(registry),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )

    def watch() -> None:
        # Published once serving: drivers read it for get_runtime_context().dashboard_url.
        while not server.started and not server.should_exit:
            threading.Event().wait(0.02)
        from nebula import _protocol as p

        cw.send(cw.control_store, p.KvPut(0, cw.address, DASHBOARD_URL_KEY, url.encode()))
        announce_ready(url)
        while not server.should_exit:
            if not parent_alive(args.parent_pid):
                server.should_exit = True
            threading.Event().wait(0.5)

    history.start()
    threading.Thread(target=watch, name="nebula-dashboard-watch", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        history.stop()
        jobs.shutdown()
        cw.shutdown()
    os._exit(0)


def _bind(host: str, port: int) -> socket.socket:
    """Listen on ``port``, or on a free port if another process holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.bind((host, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    main()
