"""Entry point of a worker process: ``python -m nebula._worker``."""

from __future__ import annotations

import argparse
import os

from nebula import _protocol as p
from nebula._process import die_with_parent, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="nebula-worker")
    parser.add_argument("--node-manager", required=True)
    parser.add_argument("--control-store", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--session-tag", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent or parent == 1:
        # The node manager died before we could ask to follow it: do not linger.
        os._exit(1)
    setup_logging("worker")
    from nebula._api import runtime
    from nebula._worker.core_worker import CoreWorker
    from nebula._worker.executor import Executor

    worker_id = bytes.fromhex(args.worker_id)
    from nebula._process import require_token

    cw = CoreWorker(
        token=require_token(),
        is_driver=False,
        host=args.host,
        control_store=args.control_store,
        node_manager=args.node_manager,
        node_id=bytes.fromhex(args.node_id),
        session_tag=args.session_tag,
        worker_id=worker_id,
    )
    executor = Executor(cw, args.host)
    runtime.attach_worker(cw)
    cw.send(args.node_manager, p.RegisterWorker(worker_id, cw.address, os.getpid()))
    _notify_plugins(args.worker_id, args.node_id)
    try:
        executor.run_forever()
    finally:
        os._exit(0)


def _notify_plugins(worker_id: str, node_id: str) -> None:
    from nebula._plugins.lifecycle import WorkerInfo
    from nebula._plugins.manager import get_plugin_manager

    get_plugin_manager().hook.nebula_worker_started(
        worker=WorkerInfo(worker_id=worker_id, pid=os.getpid(), node_id=node_id)
    )


if __name__ == "__main__":
    main()
