"""Entry point: ``python -m nebula._control_store``."""

from __future__ import annotations

import argparse
import os

from nebula._control_store.persistence import TableStore
from nebula._control_store.server import ControlStore
from nebula._process import (
    announce_ready,
    drain,
    exit_now,
    install_term_handler,
    parent_alive,
    require_token,
    setup_logging,
)
from nebula._transport import Endpoint, allow_many_peers


def main() -> None:
    parser = argparse.ArgumentParser(prog="nebula-control-store")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument(
        "--db", default="", help="SQLite file for the tables (default: in the session folder)"
    )
    args = parser.parse_args()
    setup_logging("control-store")
    allow_many_peers()
    endpoint = Endpoint(args.host, args.port, token=require_token())
    db_path = args.db or os.path.join(args.session_dir, "control_store.sqlite3")
    store = ControlStore(endpoint, args.session_dir, TableStore(db_path))
    stop = [False]
    signalled = install_term_handler(stop)
    announce_ready(endpoint.address)
    endpoint.serve(
        store.handle,
        should_stop=lambda: stop[0] or store.stopped or not parent_alive(args.parent_pid),
        on_tick=store.tick,
        tick_s=0.5,
        extra_fds=lambda: (signalled,),
        on_fd=drain,
    )
    endpoint.close()
    store.close()
    if args.parent_pid:
        exit_now()  # the driver waits for this in shutdown()


if __name__ == "__main__":
    main()
