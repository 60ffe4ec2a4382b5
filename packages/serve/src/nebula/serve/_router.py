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


_QUEUED, _CONNECTING, _SENT, _DONE = range(4)


class Call:
    """One request: its state, where it went and the future its answer resolves."""

    __slots__ = ("future", "on_chunk", "request", "slot", "state")

    def __init__(
        self,
        request: _wire.Request,
        on_chunk: Callable[[list[Any]], None] | None,
        future: asyncio.Future[Any],
    ):
        self.request = request
        self.on_chunk = on_chunk
        self.future = future
        self.slot: ReplicaSlot | None = None
        self.state = _QUEUED


class Router:
    """Routes calls without a task of its own per request.

    A call is sent from the code that submits it when a replica has room, and otherwise
    waits in a queue from which the callback that learns of free room (a reply arriving,
    the replica set changing) sends it at once. Replies that arrive together thus send the
    waiting requests together, in the same turn of the loop and the same write.
    """

    def __init__(self, key: DeploymentID, get_controller: Callable[[], Any]) -> None:
        self.key = key
        self._get_controller = get_controller
        self._loop = asyncio.get_running_loop()
        self._chooser = ReplicaChooser()
        self._connections: dict[str, _wire.FrameProtocol] = {}
        self._connecting: dict[str, list[Call]] = {}
        self._pending: dict[int, Call] = {}
        self._queue: deque[Call] = deque()
        self._queued = 0  # calls in the queue not cancelled
        self._recheck: asyncio.TimerHandle | None = None
        self._rids = itertools.count()
        self._token = b""
        self._max_queued = math.inf
        self._metrics_interval: float | None = None
        self._exists = True
        self._known = False  # heard from the controller at least once
        self._missing_reason = ""
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
        call = self.submit(
            method,
            args,
            kwargs,
            stream=stream,
            on_chunk=on_chunk,
            request_id=request_id,
            route=route,
        )
        try:
            return await call.future
        except asyncio.CancelledError:
            self.cancel(call)
            raise

    def submit(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        stream: bool = False,
        on_chunk: Callable[[list[Any]], None] | None = None,
        request_id: str = "",
        route: str = "",
    ) -> Call:
        """Send a request now or queue it; its result (or error) resolves ``call.future``.

        Call :meth:`cancel` to withdraw it; cancelling the future itself is not enough.
        """
        request = _wire.Request(next(self._rids), method, args, kwargs, stream, request_id, route)
        call = Call(request, on_chunk, self._loop.create_future())
        if not self._known:
            self._enqueue(call)  # the first replica set is on its way
        elif not self._exists:
            call.state = _DONE
            call.future.set_exception(DeploymentUnavailableError(self._missing_reason))
        elif self._queue:
            # Requests already waiting go first.
            self._enqueue_bounded(call)
        else:
            slot = self._chooser.choose()
            if slot is None:
                self._enqueue_bounded(call)
            else:
                slot.ongoing += 1
                self._send_to(slot, call)
        return call

    def cancel(self, call: Call) -> None:
        """Withdraw a call: unsent, it leaves the queue; sent, its handler is cancelled."""
        state = call.state
        call.state = _DONE
        if state == _QUEUED:
            self._queued -= 1
        elif state == _CONNECTING:
            assert call.slot is not None
            self._finished(call.slot)
        elif state == _SENT:
            rid = call.request.rid
            self._pending.pop(rid, None)
            assert call.slot is not None
            self._finished(call.slot)
            connection = self._connections.get(call.slot.replica_id)
            if connection is not None:
                connection.send(_wire.Cancel(rid))
        if not call.future.done():
            call.future.cancel()

    def _enqueue_bounded(self, call: Call) -> None:
        if self._queued >= self._max_queued:
            call.state = _DONE
            call.future.set_exception(
                BackPressureError(
                    f"Request dropped: {self._queued} requests already wait for deployment "
                    f"{self.key.name!r} (max_queued_requests={int(self._max_queued)})."
                )
            )
            return
        self._enqueue(call)

    def _enqueue(self, call: Call, *, first: bool = False) -> None:
        call.state = _QUEUED
        call.slot = None
        self._queued += 1
        if first:
            self._queue.appendleft(call)
        else:
            self._queue.append(call)
        if len(self._chooser) == 0 and self._metrics_interval is not None:
            self._push_load()  # scale up from zero now, not at the next report
        self._schedule_recheck()

    def _hand_over(self) -> None:
        """Send waiting requests, oldest first, to the replicas with room.

        Runs whenever room may have appeared: a request finished, the replica set changed,
        or a replica that turned a request away has waited out its pause.
        """
        queue = self._queue
        while queue:
            call = queue[0]
            if call.state != _QUEUED:
                queue.popleft()
                continue
            slot = self._chooser.choose()
            if slot is None:
                self._schedule_recheck()
                return
            queue.popleft()
            self._queued -= 1
            slot.ongoing += 1
            self._send_to(slot, call)

    def _schedule_recheck(self) -> None:
        # A replica that turned a request away is skipped for a moment, and no request of
        # ours finishing there need wake the waiters then: look again when the pause ends.
        # Room freed by our own requests sends the waiting ones through _finished.
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
        if self._queue:
            self._hand_over()

    def _fail_queued(self, error: BaseException) -> None:
        while self._queue:
            call = self._queue.popleft()
            if call.state == _QUEUED:
                self._queued -= 1
                call.state = _DONE
                if not call.future.done():
                    call.future.set_exception(error)

    # -------------------------------------------------------------- connections

    def _send_to(self, slot: ReplicaSlot, call: Call) -> None:
        """Send ``call`` to the replica of ``slot`` (whose room is already counted)."""
        call.slot = slot
        connection = self._connections.get(slot.replica_id)
        if connection is None or connection.closed:
            call.state = _CONNECTING
            waiting = self._connecting.get(slot.replica_id)
            if waiting is None:
                self._connecting[slot.replica_id] = [call]
                self._loop.create_task(self._connect(slot))
            else:
                waiting.append(call)
            return
        call.state = _SENT
        self._pending[call.request.rid] = call
        connection.send(call.request)

    async def _connect(self, slot: ReplicaSlot) -> None:
        replica_id = slot.replica_id
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
        except OSError:
            calls = self._connecting.pop(replica_id, [])
            for call in reversed(calls):
                if call.state == _CONNECTING:
                    slot.ongoing -= 1
                    self._enqueue(call, first=True)
            self._lost(replica_id)
            return
        calls = self._connecting.pop(replica_id, [])
        if self._closed:
            protocol.close()
            return
        self._connections[replica_id] = protocol
        for call in calls:
            if call.state == _CONNECTING:
                call.state = _SENT
                self._pending[call.request.rid] = call
                protocol.send(call.request)

    def _on_message(self, message: Any) -> None:
        kind = type(message)
        if kind is _wire.Chunk:
            call = self._pending.get(message.rid)
            if call is not None and call.on_chunk is not None:
                call.on_chunk(message.items)
            return
        call = self._pending.pop(message.rid, None)
        if call is None:
            return
        slot = call.slot
        assert slot is not None
        if kind is _wire.Rejected:
            # Turned away unstarted: it goes first in line, for another replica or later.
            self._chooser.mark_full(slot.replica_id)
            slot.ongoing -= 1
            self._enqueue(call, first=True)
            self._hand_over()
            return
        call.state = _DONE
        self._finished(slot)
        if call.future.done():
            return
        if kind is _wire.Result:
            call.future.set_result(message.value)
        elif kind is _wire.Failure:
            call.future.set_exception(_remote_error(message))

    def _lost(self, replica_id: str) -> None:
        """A replica's connection closed: fail what it was running, stop sending to it."""
        connection = self._connections.pop(replica_id, None)
        was_known = replica_id in self._chooser.slots
        self._chooser.remove(replica_id)
        for rid, call in list(self._pending.items()):
            if call.slot is not None and call.slot.replica_id == replica_id:
                del self._pending[rid]
                call.state = _DONE
                if not call.future.done():
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

    def _wake_all(self) -> None:
        """The replica set changed: send what waits (or fail it if the deployment is gone)."""
        if not self._exists:
            self._fail_queued(DeploymentUnavailableError(self._missing_reason))
            return
        self._hand_over()

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
                if not self._known:
                    # Nothing to route with: fail what waits. Once a replica set is known,
                    # requests keep flowing to it while the controller is away (a
                    # restarting controller picks up the same replicas).
                    self._fail_queued(
                        DeploymentUnavailableError(f"The serve controller is not reachable: {exc}")
                    )
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
        self._known = True
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
            if not call.future.done():
                call.future.set_exception(RequestCancelledError("serve was shut down"))
        self._pending.clear()
        self._fail_queued(RequestCancelledError("serve was shut down"))


def _remote_error(message: _wire.Failure) -> BaseException:
    error = message.error
    if error is None:
        return ServeError(message.error_text)
    as_cause = getattr(error, "as_instanceof_cause", None)
    return as_cause() if as_cause is not None else error
