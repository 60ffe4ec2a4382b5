"""A connection for asking the cluster about its state.

Inside a driver or a worker it is the process's own core worker. Elsewhere (the CLI, the
dashboard) it is a core worker of its own that registers no job: looking at a cluster must
not add a job to what it shows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from nebula import _auth, _config
from nebula import _protocol as p
from nebula._worker.core_worker import CoreWorker

Filter = tuple[str, str, Any]
# A process answers from its I/O thread within milliseconds; one that has not answered by
# then is exiting (a worker listed alive a moment ago) or stuck in native code: left out.
PROCESS_TIMEOUT_S = 3.0


class StateError(RuntimeError):
    """The cluster could not answer a state query."""


class StateConnection:
    def __init__(self, cw: CoreWorker, *, timeout_s: float = 30.0) -> None:
        self.cw = cw
        self.timeout_s = timeout_s

    @property
    def control_store(self) -> str:
        return self.cw.control_store

    def call(self, address: str, make: Callable[[int, str], p.Message]) -> p.Message:
        try:
            return self.cw.call(address, make, self.timeout_s)
        except TimeoutError as exc:
            raise StateError(str(exc)) from None

    def query(
        self,
        kind: str,
        filters: Sequence[Filter] = (),
        limit: int = 100,
        detail: bool = False,
    ) -> p.StateReply:
        """One of the control store's tables (tasks, task_summary, jobs, drivers, metrics)."""
        wire = tuple((str(k), str(op), str(v)) for k, op, v in filters)
        reply = self.call(
            self.control_store,
            lambda rid, to: p.StateQuery(rid, to, kind, wire, limit, detail),
        )
        assert isinstance(reply, p.StateReply)
        if reply.error is not None:
            raise ValueError(reply.error)
        return reply

    def cluster_info(self) -> p.ClusterInfoReply:
        reply = self.call(self.control_store, lambda rid, to: p.GetClusterInfo(rid, to))
        assert isinstance(reply, p.ClusterInfoReply)
        return reply

    def ask_nodes(self, kind: str) -> list[dict[str, Any]]:
        """``kind`` records of every live node manager (a node that does not answer is
        skipped)."""
        nodes = [n for n in self.cluster_info().nodes if n.alive]
        replies = self.cw.call_many(
            [(n.address, lambda rid, to: p.NodeStateQuery(rid, to, kind)) for n in nodes],
            min(self.timeout_s, 10.0),
        )
        return [r for reply in replies if isinstance(reply, p.StateReply) for r in reply.records]

    def ask_processes(self, addresses: Sequence[str], kind: str) -> list[dict[str, Any]]:
        """``kind`` records of each process at ``addresses`` (one that does not answer in
        time is left out)."""
        replies = self.cw.call_many(
            [(a, lambda rid, to: p.ProcessStateQuery(rid, to, kind)) for a in addresses],
            min(self.timeout_s, PROCESS_TIMEOUT_S),
        )
        return [r for reply in replies if isinstance(reply, p.StateReply) for r in reply.records]

    def node_address(self, node_id: str) -> str:
        for node in self.cluster_info().nodes:
            if node.node_id.hex() == node_id or (
                len(node_id) >= 6 and node.node_id.hex().startswith(node_id)
            ):
                if not node.alive:
                    raise StateError(f"node {node_id} is dead; its logs are on its machine.")
                return node.address
        raise ValueError(f"there is no node {node_id!r} in this cluster.")

    def read_log(self, node_id: str, filename: str, offset: int, length: int) -> p.LogChunk:
        address = self.node_address(node_id)
        reply = self.call(address, lambda rid, to: p.ReadLog(rid, to, filename, offset, length))
        assert isinstance(reply, p.LogChunk)
        if reply.error is not None:
            raise StateError(reply.error)
        return reply

    def kv_get(self, key: str) -> bytes | None:
        reply = self.call(self.control_store, lambda rid, to: p.KvGet(rid, to, key))
        assert isinstance(reply, p.KvReply)
        return reply.value


def resolve_address(address: str | None) -> str:
    """HOST:PORT of the control store to ask: ``address``, ``NEBULA_ADDRESS``, or the
    cluster started on this machine (``"auto"``)."""
    address = address or os.environ.get("NEBULA_ADDRESS") or "auto"
    if address == "auto":
        from nebula._api import services

        info = services.read_address_file()
        if info is None:
            raise ConnectionError(
                "No running Nebula cluster was found on this machine; start one with "
                "`nebula start --head` or pass --address HOST:PORT."
            )
        address = str(info["address"])
    return address.removeprefix("tcp://").removeprefix("nebula://")


def open_core_worker(address: str, token: str | None = None) -> CoreWorker:
    """A core worker connected to the cluster at HOST:PORT that registers no job."""
    from nebula._api import services

    cs_address = f"tcp://{address}"
    token = token or _auth.token_from_environment(_config.TEMP_DIR, cs_address)
    if token is None:
        raise ConnectionError(
            f"No cluster token for {address}: set {_auth.TOKEN_ENV} to the token that "
            "`nebula start --head` printed (on the head machine it is read from its file)."
        )
    host = services.local_ip_towards(address.rsplit(":", 1)[0])
    cw = CoreWorker(
        token=token,
        is_driver=True,
        host=host,
        control_store=cs_address,
        node_manager="",
        node_id=b"",
        session_tag="",
    )
    try:
        cw.call(cs_address, lambda rid, to: p.Ping(rid, to), timeout_s=5.0)
    except TimeoutError:
        cw.shutdown()
        raise ConnectionError(
            f"Could not reach a Nebula cluster at {address}: no answer within 5 s (is it "
            f"running, and is {_auth.TOKEN_ENV} the token it printed at start?)."
        ) from None
    return cw


@contextlib.contextmanager
def connect(address: str | None = None, timeout_s: float = 30.0) -> Iterator[StateConnection]:
    """This process's connection if it has one (and ``address`` does not name another
    cluster), else a temporary one to ``address``."""
    from nebula._api import runtime

    cw = runtime.core_worker_or_none()
    if cw is not None and (address is None or address == "auto"):
        yield StateConnection(cw, timeout_s=timeout_s)
        return
    temporary = open_core_worker(resolve_address(address))
    try:
        yield StateConnection(temporary, timeout_s=timeout_s)
    finally:
        temporary.shutdown()
