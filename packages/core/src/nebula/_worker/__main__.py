"""Entry point of a worker process: ``python -m nebula._worker``.

A node manager usually forks its workers from a zygote instead (see
``nebula._node_manager.zygote``), which calls :func:`run` in the forked child.
"""

from __future__ import annotations

import argparse
import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nebula import _protocol as p
from nebula import _runtime_env
from nebula._process import die_with_parent, setup_logging

if TYPE_CHECKING:
    from nebula._worker.core_worker import CoreWorker


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker is told at start: whom it works for and who it is."""

    node_manager: str
    control_store: str
    node_id: str
    worker_id: str
    session_tag: str
    host: str = "127.0.0.1"

    def argv(self) -> list[str]:
        """The command-line arguments that start this worker with ``python -m``."""
        return [
            "--node-manager",
            self.node_manager,
            "--control-store",
            self.control_store,
            "--node-id",
            self.node_id,
            "--worker-id",
            self.worker_id,
            "--session-tag",
            self.session_tag,
            "--host",
            self.host,
        ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="nebula-worker")
    parser.add_argument("--node-manager", required=True)
    parser.add_argument("--control-store", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--session-tag", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    run(
        WorkerSettings(
            node_manager=args.node_manager,
            control_store=args.control_store,
            node_id=args.node_id,
            worker_id=args.worker_id,
            session_tag=args.session_tag,
            host=args.host,
        )
    )


def run(settings: WorkerSettings) -> None:
    """Serve as a worker until told to stop; never returns (the process exits)."""
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent or parent == 1:
        # The node manager died before we could ask to follow it: do not linger.
        os._exit(1)
    setup_logging("worker")
    from nebula._process import require_token
    from nebula._worker.core_worker import CoreWorker, set_process_worker
    from nebula._worker.executor import Executor

    worker_id = bytes.fromhex(settings.worker_id)
    cw = CoreWorker(
        token=require_token(),
        is_driver=False,
        host=settings.host,
        control_store=settings.control_store,
        node_manager=settings.node_manager,
        node_id=bytes.fromhex(settings.node_id),
        session_tag=settings.session_tag,
        worker_id=worker_id,
    )
    executor = Executor(cw, settings.host)
    set_process_worker(cw)
    _runtime_env.set_package_fetcher(functools.partial(_fetch_package, cw))
    cw.send(settings.node_manager, p.RegisterWorker(worker_id, cw.address, os.getpid()))
    _notify_plugins(settings.worker_id, settings.node_id)
    try:
        executor.run_forever()
    finally:
        os._exit(0)


def _fetch_package(cw: CoreWorker, name: str) -> bytes | None:
    """A package the runtime_env names, from the control store's key-value table."""
    key = _runtime_env.PACKAGE_KV_PREFIX + name
    reply = cw.call(cw.control_store, lambda rid, to: p.KvGet(rid, to, key), timeout_s=60.0)
    assert isinstance(reply, p.KvReply)
    return reply.value


def _notify_plugins(worker_id: str, node_id: str) -> None:
    from nebula._plugins.lifecycle import WorkerInfo
    from nebula._plugins.manager import get_plugin_manager

    get_plugin_manager().hook.nebula_worker_started(
        worker=WorkerInfo(worker_id=worker_id, pid=os.getpid(), node_id=node_id)
    )


if __name__ == "__main__":
    main()
