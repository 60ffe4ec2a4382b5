"""A caller's router for one deployment: replica set, connections, queue and in-flight calls.

One router per deployment per event loop of a process (the proxy's loop, a replica's loop,
or the background loop that serves synchronous callers). It follows the controller's replica
set with a long poll, sends each request to the replica :class:`ReplicaChooser` picks, queues
requests while every replica is busy (up to ``max_queued_requests``), retries elsewhere a
request a replica turned away, and reports its load to the controller for autoscaling.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from nebula.serve import _wire
from nebula.serve._common import DeploymentID, ReplicaSetUpdate
from nebula.serve._routing import ReplicaChooser, ReplicaSlot
from nebula.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaDiedError,
    RequestCancelledError,
    ServeError,
)

logger = logging.getLogger("nebula.serve")


class _Retry(Exception):
    """The replica turned the request away; send it again."""


class Call:
    """One request in flight: where it went and how its answer is delivered."""

    __slots__ = ("future", "on_chunk", "request", "slot")

    def __init__(self, request: _wire.Request, on_chunk: Callable[[list[Any]], None] | None):
        self.request = request
        self.on_chunk = on_chunk
        self.slot: ReplicaSlot | None = None
        self.future: asyncio.Future[Any] | None = None


class Router:
    def __init__(self, key: DeploymentID, get_controller: Callable[[], Any]) -> None:
        self.key = key
        self._get_controller = get_controller
        self._loop = asyncio.get_running_loop()
        self._chooser = ReplicaChooser()
        self._connections: dict[str, _wire.FrameProtocol] = {}
        self._connecting: dict[str, asyncio.Future[_wire.FrameProtocol]] = {}
        self._pending: dict[int, Call] = {}
        self._waiters: deque[asyncio.Future[ReplicaSlot | None]] = deque()
        self._recheck: asyncio.TimerHandle | None = None
        self._rids = itertools.count()
        self._token = b""
        self._max_queued = math.inf
        self._metrics_interval: float | None = None
        self._queued = 0
        self._exists = True
        self._missing_reason = ""
        self._first_update = asyncio.Event()
        self._router_id = uuid.uuid4().hex
        self._last_reported = 0
        self._closed = False
        self._tasks = [
            self._loop.create_task(self._follow_replicas()),
            self._loop.create_task(self._report_load()),
        ]

    # ------------------------------------------------------------------ calling

    async def call(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        stream: bool = False,
        on_chunk: Callable[[list[Any]], None] | None = None,
        request_id: str = "",
        route: str = "",
    ) -> Any:
        """Send a request and wait for its result (raising what the replica raised)."""
        request = _wire.Request(next(self._rids), method, args, kwargs, stream, request_id, route)
        call = Call(request, on_chunk)
        if not self._first_update.is_set():
            await self._first_update.wait()
        while True:
            await self._send(call)
            try:
                assert call.future is not None
                return await call.future
            except _Retry:
                continue
            except asyncio.CancelledError:
                self._cancel(call)
                raise

    def _cancel(self, call: Call) -> None:
        rid = call.request.rid
        if self._pending.pop(rid, None) is None or call.slot is None:
            return
        self._finished(call.slot)
        connection = self._connections.get(call.slot.replica_id)
        if connection is not None:
            connection.send(_wire.Cancel(rid))

    async def _send(self, call: Call) -> None:
        while True:
            if not self._exists:
                raise DeploymentUnavailableError(self._missing_reason)
            # Requests already waiting go first: a new one takes a replica directly only
            # when nobody waits.
            slot = None if self._waiters else self._chooser.choose()
            if slot is None:
                if self._queued >= self._max_queued:
                    raise BackPressureError(
                        f"Request dropped: {self._queued} requests already wait for deployment "
                        f"{self.key.name!r} (max_queued_requests={int(self._max_queued)})."
                    )
                slot = await self._wait_for_room()
                if slot is None:
                    continue
            else:
                slot.ongoing += 1
            connection = self._connections.get(slot.replica_id)
            if connection is None or connection.closed:
                try:
                    connection = await self._connect(slot)
                except OSError:
                    slot.ongoing -= 1
                    self._lost(slot.replica_id)
                    continue
            call.slot = slot
            call.future = self._loop.create_future()
            self._pending[call.request.rid] = call
            connection.send(call.request)
            return

    async def _wait_for_room(self) -> ReplicaSlot | None:
        """Wait in line; returns a replica slot already reserved for the caller, or None
        when the replica set changed and the caller should look again."""
        waiter: asyncio.Future[ReplicaSlot | None] = self._loop.create_future()
        self._waiters.append(waiter)
        self._queued += 1
        if len(self._chooser) == 0 and self._metrics_interval is not None:
            self._push_load()  # scale up from zero now, not at the next report
        self._hand_over()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                slot = waiter.result()
                assert slot is not None
                self._finished(slot)
            raise
        finally:
            self._queued -= 1
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def _hand_over(self) -> None:
        """Give free replica capacity to the requests waiting, oldest first.

        Runs whenever capacity may have appeared: a request finished, the replica set
        changed, or a replica that turned a request away has waited out its pause.
        """
        while self._waiters:
            waiter = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            slot = self._chooser.choose()
            if slot is None:
                self._schedule_recheck()
                return
            self._waiters.popleft()
            slot.ongoing += 1
            waiter.set_result(slot)

    def _schedule_recheck(self) -> None:
        # A replica that turned a request away is skipped for a moment, and no request of
        # ours finishing there need wake the waiters then: look again when the pause ends.
        # Capacity freed by our own requests wakes them through _finished, with no timer.
        if self._recheck is not None:
            return
        ends = self._chooser.backoff_ends()
        if ends is not None:
            self._recheck = self._loop.call_at(ends, self._on_recheck)

    def _on_recheck(self) -> None:
        self._recheck = None
        self._hand_over()

    def _finished(self, slot: ReplicaSlot) -> None:
        slot.ongoing -= 1
        if self._waiters:
            self._hand_over()

    def _wake_all(self) -> None:
        """The replica set changed: waiting requests look again (raising if it is gone)."""
        if not self._exists:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
            return
        self._hand_over()

    # -------------------------------------------------------------- connections

    async def _connect(self, slot: ReplicaSlot) -> _wire.FrameProtocol:
        replica_id = slot.replica_id
        pending = self._connecting.get(replica_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_wire.FrameProtocol] = self._loop.create_future()
        self._connecting[replica_id] = future
        try:
            _, protocol = await self._loop.create_connection(
                lambda: _wire.FrameProtocol(
                    self._on_message,
                    send_token=self._token,
                    on_lost=lambda exc: self._lost(replica_id),
                ),
                slot.info.host,
                slot.info.port,
            )
            self._connections[replica_id] = protocol
            future.set_result(protocol)
            return protocol
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: other waiters may not exist
            raise
        finally:
            del self._connecting[replica_id]

    def _on_message(self, message: Any) -> None:
        kind = type(message)
        if kind is _wire.Chunk:
            call = self._pending.get(message.rid)
            if call is not None and call.on_chunk is not None:
                call.on_chunk(message.items)
            return
        call = self._pending.pop(message.rid, None)
        if call is None or call.slot is None or call.future is None:
            return
        if kind is _wire.Rejected:
            self._chooser.mark_full(call.slot.replica_id)
        self._finished(call.slot)
        if call.future.done():
            return
        if kind is _wire.Result:
            call.future.set_result(message.value)
        elif kind is _wire.Failure:
            call.future.set_exception(_remote_error(message))
        elif kind is _wire.Rejected:
            call.future.set_exception(_Retry())

    def _lost(self, replica_id: str) -> None:
        """A replica's connection closed: fail what it was running, stop sending to it."""
        connection = self._connections.pop(replica_id, None)
        was_known = replica_id in self._chooser.slots
        self._chooser.remove(replica_id)
        for rid, call in list(self._pending.items()):
            if call.slot is not None and call.slot.replica_id == replica_id:
                del self._pending[rid]
                if call.future is not None and not call.future.done():
                    call.future.set_exception(
                        ReplicaDiedError(
                            f"The replica {replica_id} of deployment {self.key.name!r} "
                            "stopped while handling the request."
                        )
                    )
        self._wake_all()
        if was_known and connection is not None and not self._closed:
            try:
                self._get_controller().report_replica_lost.remote(self.key, replica_id)
            except Exception:
                pass

    # --------------------------------------------------------- control traffic

    async def _follow_replicas(self) -> None:
        version = -1
        while not self._closed:
            try:
                controller = self._get_controller()
                update: ReplicaSetUpdate = await controller.listen_for_replicas.remote(
                    self.key, version
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._exists = False
                self._missing_reason = f"The serve controller is not reachable: {exc}"
                self._first_update.set()
                self._wake_all()
                await asyncio.sleep(0.5)
                continue
            version = update.version
            self._apply(update)

    def _apply(self, update: ReplicaSetUpdate) -> None:
        self._exists = update.exists
        self._missing_reason = (
            f"Deployment {self.key.name!r} of application {self.key.app!r} does not exist."
        )
        self._token = update.token
        self._max_queued = (
            math.inf if update.max_queued_requests < 0 else update.max_queued_requests
        )
        self._metrics_interval = update.metrics_interval_s
        for replica_id in self._chooser.update(update.replicas):
            connection = self._connections.pop(replica_id, None)
            if connection is not None and not any(
                c.slot is not None and c.slot.replica_id == replica_id
                for c in self._pending.values()
            ):
                connection.close()
        self._first_update.set()
        self._wake_all()

    @property
    def queued(self) -> int:
        """Requests waiting here for a replica with room."""
        return self._queued

    def _load(self) -> int:
        return self._queued + self._chooser.in_flight

    def _push_load(self) -> None:
        load = self._load()
        self._last_reported = load
        try:
            self._get_controller().record_handle_load.remote(
                self.key, self._router_id, load, time.time()
            )
        except Exception:
            pass

    async def _report_load(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._metrics_interval or 1.0)
            if self._metrics_interval is None:
                continue
            if self._load() or self._last_reported:
                self._push_load()

    def close(self) -> None:
        self._closed = True
        if self._recheck is not None:
            self._recheck.cancel()
        for task in self._tasks:
            task.cancel()
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
        for call in self._pending.values():
            if call.future is not None and not call.future.done():
                call.future.set_exception(RequestCancelledError("serve was shut down"))
        self._pending.clear()


def _remote_error(message: _wire.Failure) -> BaseException:
    error = message.error
    if error is None:
        return ServeError(message.error_text)
    as_cause = getattr(error, "as_instanceof_cause", None)
    return as_cause() if as_cause is not None else error
