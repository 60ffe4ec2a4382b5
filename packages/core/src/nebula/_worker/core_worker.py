"""The core worker: the runtime inside the driver and inside every worker process.

It owns the objects this process creates, submits tasks and actor calls, and answers other
processes about its objects. One I/O thread reads the process's inbox; every other thread
sends directly (no hop) and waits on a condition for values to arrive. All state sits
behind one lock.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from nebula import _config
from nebula import _protocol as p
from nebula._ids import TASK_ID_SIZE
from nebula._serialization import serialize
from nebula._transport import Endpoint
from nebula._worker.references import Entry, ReferenceTable, Release
from nebula._worker.store_client import StoreClient
from nebula._worker.streams import Streams
from nebula.exceptions import GetTimeoutError, ObjectLostError

logger = logging.getLogger(__name__)


class CoreWorker(StoreClient):
    def __init__(
        self,
        *,
        is_driver: bool,
        host: str,
        control_store: str,
        node_manager: str,
        node_id: bytes,
        session_tag: str,
        job_id: int = 0,
        worker_id: bytes | None = None,
        namespace: str = "",
        token: str | None,
    ) -> None:
        self.is_driver = is_driver
        self.endpoint = Endpoint(host, token=token)
        self.token = token
        self.address = self.endpoint.address
        self.control_store = control_store
        self.node_manager = node_manager
        self.node_id = node_id
        self.session_tag = session_tag
        self.job_id = job_id
        self.worker_id = worker_id
        self.namespace = namespace
        self.job_sys_path: tuple[str, ...] = ()
        # The runtime_env tasks submitted from here inherit (the job's, or the running task's).
        self.runtime_env: dict[str, Any] | None = None
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        self.refs = ReferenceTable(self.address)
        self._released: deque[bytes] = deque()
        self._released_streams: deque[bytes] = deque()
        # Owners sent an AddBorrower since the last confirm_borrows().
        self._borrowed_from: set[str] = set()
        # Borrowed objects asked of their owners and not yet received (for the owner probe).
        self.awaiting_borrowed: set[bytes] = set()
        self._rpc_ids = itertools.count(1)
        self._rpc_replies: dict[int, list[p.Message]] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {}
        self._stopping = False
        self._blocked_depth = 0
        self.log_sink: Callable[[p.LogLines], None] | None = None
        # Returns why the cluster is gone (None while it is fine); polled from the I/O loop.
        self.health_check: Callable[[], str | None] | None = None
        self.dead_reason: str | None = None
        self._last_health_check = 0.0
        from nebula._worker.owner_probe import OwnerProbe

        self.owner_probe = OwnerProbe(self)
        from nebula._worker.object_transfer import ObjectPuller
        from nebula._worker.submitter import Submitter

        self.node_managers: dict[bytes, str] = {node_id: node_manager} if node_id else {}
        # Nodes known to have died (their object locations are no longer sources).
        self.dead: set[bytes] = set()
        self.puller = ObjectPuller(self)
        from nebula._worker.write_cache import WriteCache

        self.write_cache = WriteCache(session_tag, node_id)
        from nebula._worker.task_events import TaskEventBuffer

        self.task_events = TaskEventBuffer(
            enabled=_config.TASK_EVENTS_ENABLED, max_buffered=_config.TASK_EVENTS_MAX_BUFFERED
        )
        # Called from the I/O loop's tick, outside the lock (user metrics' reports, say),
        # with final=True once more at shutdown.
        self.periodic: list[Callable[[bool], None]] = []
        self.submitter = Submitter(self)
        self.streams = Streams(self)
        self._register_handlers()
        from nebula._worker.inbox import InboxTurns

        self.inbox = InboxTurns(
            self.endpoint, self._dispatch, self._tick, lambda: self._stopping, self.lock
        )
        self._io_thread = threading.Thread(target=self._io_loop, name="nebula-io", daemon=True)
        self._io_thread.start()
        if is_driver:
            # Not from the I/O loop: its turns take the worker's lock, which a driver
            # submitting a million tasks in a loop can hold for longer than the control
            # store waits before it ends a silent driver's job.
            threading.Thread(
                target=self._heartbeat_loop, name="nebula-heartbeat", daemon=True
            ).start()

    # ------------------------------------------------------------------ plumbing

    def on(self, message_type: type, handler: Callable[[Any], None]) -> None:
        self._handlers[message_type] = handler

    def _register_handlers(self) -> None:
        self.on(p.GetObject, self._on_get_object)
        self.on(p.ObjectValue, self._on_object_value)
        self.on(p.AddBorrower, self._on_add_borrower)
        self.on(p.RemoveBorrower, self._on_remove_borrower)
        self.on(p.AddObjectCopy, self._on_add_object_copy)
        self.on(
            p.LocateObject,
            lambda msg: self.send(
                msg.reply_to,
                dataclasses.replace(
                    self.locate(msg.object_id, msg.node_id, msg.origin),
                    request_id=msg.request_id,
                ),
            ),
        )
        self.on(p.PlacementGroupReady, lambda msg: self.set_value(msg.value))
        self.on(p.LogLines, self._on_log_lines)
        self.on(p.Ping, lambda msg: self.send(msg.reply_to, p.Pong(msg.request_id)))
        self.on(p.StreamedItem, self.streams.on_item)
        self.on(p.ProcessStateQuery, self._on_process_state_query)
        for reply in (
            p.JobRegistered,
            p.CreateActorReply,
            p.NamedActorReply,
            p.ActorListReply,
            p.ClusterInfoReply,
            p.KvReply,
            p.NodeResourcesReply,
            p.Pong,
            p.ObjectChunk,
            p.BulkPortReply,
            p.ObjectHolders,
            p.PlacementGroupReply,
            p.CreateObjectReply,
            p.RestoreObjectReply,
            p.StateReply,
            p.LogChunk,
        ):
            self.on(reply, self._on_rpc_reply)
        self.submitter.register_handlers()

    def _io_loop(self) -> None:
        self.inbox.io_thread_loop()

    def _dispatch(self, msg: p.Message) -> None:
        handler = self._handlers.get(type(msg))
        if handler is None:
            logger.warning("ignored an unexpected %s", type(msg).__name__)
            return
        with self.lock:
            handler(msg)

    def _tick(self) -> None:
        with self.lock:
            self._process_released()
            self.submitter.tick()
            self.owner_probe.tick()
            self.write_cache.prune()
        now = time.monotonic()
        if self.health_check is not None and now - self._last_health_check > 0.25:
            self._last_health_check = now
            reason = self.health_check()
            if reason is not None and self.dead_reason is None:
                self.fail_everything(reason)
        self.flush_task_events()
        self._run_periodic(final=False)

    def _heartbeat_loop(self) -> None:
        while not self._stopping:
            time.sleep(_config.DRIVER_HEARTBEAT_S)
            if self.job_id and not self._stopping:
                self.send(self.control_store, p.JobHeartbeat(self.job_id))

    def _run_periodic(self, *, final: bool) -> None:
        for callback in list(self.periodic):
            try:
                callback(final)
            except Exception:
                logger.exception("a periodic callback failed")

    def flush_task_events(self, *, force: bool = False) -> None:
        """Send the task events recorded since the last flush (at most once a period)."""
        rows = self.task_events.take(force=force, period_s=_config.TASK_EVENTS_FLUSH_S)
        if rows is None or not self.control_store:
            return
        self.send(
            self.control_store,
            p.TaskEvents(
                tuple(rows),
                self.node_id,
                self.worker_id or b"",
                os.getpid(),
                self.job_id,
                self.task_events.take_dropped(),
            ),
        )

    def _on_process_state_query(self, msg: p.ProcessStateQuery) -> None:
        from nebula._worker.introspect import describe_process

        records, error = describe_process(self, msg.kind)
        self.send(msg.reply_to, p.StateReply(msg.request_id, records, len(records), error=error))

    def fail_everything(self, reason: str) -> None:
        """The cluster is gone: every pending value becomes an error instead of a hang."""
        from nebula.exceptions import NodeDiedError

        error = _serialize_error(NodeDiedError(reason))
        with self.lock:
            self.dead_reason = reason
            self.submitter.fail_all(error)
            for entry in list(self.refs.entries.values()):
                if entry.value is None and not entry.is_actor:
                    self.set_value(p.ObjectValue(entry.object_id, inline=error, is_error=True))
            self.cv.notify_all()

    def on_node_died(self, msg: p.NodeDied) -> None:
        """Values whose only copy lived on the dead node are lost."""
        from nebula.exceptions import ObjectLostError

        self.node_managers.pop(msg.node_id, None)
        self.dead.add(msg.node_id)
        rerun: dict[bytes, Any] = {}
        for entry in self.refs.entries.values():
            value = entry.value
            if value is None or value.shm is None:
                continue
            if entry.copies:
                entry.copies.pop(msg.node_id, None)
            if entry.pulls:
                entry.pulls.pop(msg.node_id, None)
            if value.shm.node_id != msg.node_id:
                continue
            if entry.copies:
                continue  # another node has a copy: it becomes the one to read
            task = entry.lineage
            if entry.owned and task is not None and task.retries_left != 0:
                # Rebuild it by running the task that made it again (lineage).
                entry.value = None
                entry.mapping = None
                rerun[task.task_id] = task
                continue
            if entry.object_id[TASK_ID_SIZE:] == bytes(4):
                why = "it was made by nebula.put(), which cannot be re-run; keep important "
                why += "values on a node that stays up, or recompute them in a task"
            else:
                why = "the task that made it has no retries left (max_retries) to rebuild it"
            error = ObjectLostError(
                f"Object {entry.object_id.hex()} was lost when its node died ({msg.reason}): {why}."
            )
            entry.value = p.ObjectValue(
                entry.object_id, inline=_serialize_error(error), is_error=True
            )
            self.cv.notify_all()
        for task in rerun.values():
            self.submitter.reconstruct(task)

    def check_alive(self) -> None:
        if self.dead_reason is not None:
            from nebula.exceptions import NodeDiedError

            raise NodeDiedError(self.dead_reason)

    def send(self, address: str, msg: p.Message) -> None:
        self.endpoint.send(address, msg)

    def call(
        self, address: str, make: Callable[[int, str], p.Message], timeout_s: float = 30.0
    ) -> p.Message:
        """Send a request and wait for the reply that carries its request id."""
        request_id = next(self._rpc_ids)
        with self.lock:
            self._rpc_replies[request_id] = []
        self.send(address, make(request_id, self.address))
        deadline = time.monotonic() + timeout_s
        replies = self._rpc_replies[request_id]
        self.inbox.read_until(lambda: bool(replies), deadline)
        with self.cv:
            while not replies:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    del self._rpc_replies[request_id]
                    raise TimeoutError(
                        f"no reply from {address} within {timeout_s:.0f}s; is the cluster up?"
                    )
                self.cv.wait(remaining)
            return self._rpc_replies.pop(request_id)[0]

    def call_many(
        self,
        requests: Sequence[tuple[str, Callable[[int, str], p.Message]]],
        timeout_s: float = 10.0,
    ) -> list[p.Message | None]:
        """Send several requests at once and wait for their replies (None: no reply in time).

        For asking every node or process of a cluster something: one slow peer costs the
        timeout once, not once per peer.
        """
        ids = [next(self._rpc_ids) for _ in requests]
        with self.lock:
            for request_id in ids:
                self._rpc_replies[request_id] = []
        for request_id, (address, make) in zip(ids, requests):
            self.send(address, make(request_id, self.address))
        deadline = time.monotonic() + timeout_s

        def all_answered() -> bool:
            return all(self._rpc_replies[i] for i in ids)

        try:
            self.wait_until(all_answered, deadline)
        finally:
            with self.lock:
                replies = [self._rpc_replies.pop(i) for i in ids]
        return [found[0] if found else None for found in replies]

    def _on_rpc_reply(self, msg: Any) -> None:
        if isinstance(msg, p.Pong) and msg.request_id < 0:
            self.owner_probe.on_pong(msg)
            return
        waiting = self._rpc_replies.get(msg.request_id)
        if waiting is not None:
            waiting.append(msg)
            self.cv.notify_all()

    def _on_log_lines(self, msg: p.LogLines) -> None:
        if self.log_sink is not None:
            self.log_sink(msg)

    def shutdown(self) -> None:
        self.flush_task_events(force=True)
        self._run_periodic(final=True)
        with self.lock:
            self._process_released()
            self.submitter.shutdown()
            self._stopping = True
            self.cv.notify_all()
        self.endpoint.wake()
        self._io_thread.join(timeout=2.0)
        self.endpoint.close()
        self.puller.close()
        with self.lock:
            self.write_cache.close()

    # ------------------------------------------------------------- references

    def add_local_ref(self, object_id: bytes, owner: str, is_actor: bool = False) -> None:
        with self.lock:
            if self.refs.add_local_ref(object_id, owner, is_actor=is_actor):
                self.send(owner, p.AddBorrower(object_id, self.address))
                self._borrowed_from.add(owner)

    def confirm_borrows(self, timeout_s: float = 5.0) -> None:
        """Wait until every owner told of a new borrow since the last call has heard it.

        A reply that travels another way (an actor's creation notice goes through the
        control store) could otherwise reach an owner first and let it free what this
        process now holds. A ping follows the AddBorrower on the same connection, so its
        answer means the borrow is registered. Owners that do not answer are dead anyway.
        """
        with self.lock:
            owners, self._borrowed_from = self._borrowed_from, set()
        for owner in owners:
            try:
                self.call(owner, lambda rid, to: p.Ping(rid, to), timeout_s=timeout_s)
            except TimeoutError:
                pass

    def release_local_ref(self, object_id: bytes) -> None:
        # Runs from __del__, possibly inside a locked section of this very thread:
        # defer the bookkeeping to the I/O thread.
        self._released.append(object_id)

    def release_stream(self, task_id: bytes) -> None:
        """A generator task's ObjectRefGenerator is gone (deferred as ``release_local_ref``)."""
        self._released_streams.append(task_id)

    def _process_released(self) -> None:
        while self._released:
            self._carry_out(self.refs.drop_local_ref(self._released.popleft()))
        while self._released_streams:
            self.streams.close(self._released_streams.popleft())

    def pin(self, object_id: bytes, owner: str) -> None:
        self.refs.pin(object_id, owner)

    def unpin(self, object_id: bytes) -> None:
        self._carry_out(self.refs.unpin(object_id))

    def maybe_free(self, entry: Entry) -> None:
        self._carry_out(self.refs.collect(entry))

    def _carry_out(self, released: tuple[Entry, Release] | None) -> None:
        """Act on an entry the reference table released."""
        if released is None:
            return
        entry, release = released
        if release is Release.ACTOR_OUT_OF_SCOPE:
            self.submitter.actor_out_of_scope(entry.object_id)
        elif release is Release.FREE_VALUE:
            self._free_value(entry)
        else:
            self.awaiting_borrowed.discard(entry.object_id)
            if release is Release.RETURN_BORROW:
                self.send(entry.owner, p.RemoveBorrower(entry.object_id, self.address))
            if entry.is_actor:
                self.submitter.forget_actor(entry.object_id)

    def _free_value(self, entry: Entry) -> None:
        value = entry.value
        entry.keep_alive.clear()
        entry.mapping = None  # ours no longer counts as a reader (user views still do)
        for object_id, _owner in entry.contained:
            self.unpin(object_id)
        if value is not None and value.shm is not None:
            self._free_at(value.shm, entry.object_id)
            for address in entry.copies.values():
                self.send(address, p.FreeObjects((entry.object_id,)))

    def _free_at(self, location: p.ShmLocation, object_id: bytes) -> None:
        address = self.node_managers.get(location.node_id)
        if address is None:
            return
        kept = self.write_cache.keep_freed(location) if address == self.node_manager else None
        if kept is not None:
            self.send(address, p.KeepFreed(object_id, kept, location.size))
        else:
            self.send(address, p.FreeObjects((object_id,)))

    def _on_add_borrower(self, msg: p.AddBorrower) -> None:
        self.refs.add_borrower(msg.object_id, msg.borrower)

    def _on_add_object_copy(self, msg: p.AddObjectCopy) -> None:
        entry = self.refs.get(msg.object_id)
        if entry is not None and entry.owned:
            entry.copies[msg.node_id] = msg.node_manager
            self.node_managers.setdefault(msg.node_id, msg.node_manager)
        else:  # already freed: drop the copy at once
            self.send(msg.node_manager, p.FreeObjects((msg.object_id,)))

    def locate(self, object_id: bytes, reader: bytes, origin: str = "") -> p.ObjectHolders:
        """Where the reader on node ``reader`` pulls an owned object from (``holders``).

        ``origin``: the address of the origin node's manager as the reader knows it.
        """
        from nebula._worker.holders import choose_holders

        with self.lock:
            entry = self.refs.get(object_id)
            if entry is None or not entry.owned or entry.value is None or entry.value.shm is None:
                return p.ObjectHolders(0, ())
            origin_id = entry.value.shm.node_id
            if origin and origin_id not in self.node_managers and origin_id not in self.dead:
                self.node_managers[origin_id] = origin
            holders, fallback, wait = choose_holders(
                entry,
                self.node_managers,
                reader,
                time.monotonic(),
                streams=_config.OBJECT_TRANSFER_STREAMS,
                per_holder=_config.OBJECT_TRANSFER_PULLS_PER_HOLDER,
            )
            return p.ObjectHolders(0, holders, fallback, wait)

    def node_manager_for(self, node_id: bytes) -> str | None:
        """The address of a node's manager; asks the control store on first use."""
        with self.lock:
            known = self.node_managers.get(node_id)
        if known is not None:
            return known
        reply = self.call(self.control_store, lambda rid, to: p.GetClusterInfo(rid, to))
        assert isinstance(reply, p.ClusterInfoReply)
        with self.lock:
            for node in reply.nodes:
                if node.alive:
                    self.node_managers[node.node_id] = node.address
            return self.node_managers.get(node_id)

    def _on_remove_borrower(self, msg: p.RemoveBorrower) -> None:
        self._carry_out(self.refs.remove_borrower(msg.object_id, msg.borrower))

    # ----------------------------------------------------------------- values

    def set_value(self, value: p.ObjectValue, *, pin_contained: bool = True) -> None:
        """Record an owned or fetched value and wake whoever waits for it."""
        entry = self.refs.get(value.object_id)
        if entry is None or entry.value is not None:
            # Nobody references it any more, or a re-run produced it again: release it.
            if value.shm is not None:
                self._free_at(value.shm, value.object_id)
            for object_id, owner in value.contained:
                if pin_contained and owner != self.address:
                    self.send(owner, p.RemoveBorrower(object_id, self.address))
            return
        if pin_contained and entry.owned:
            for object_id, owner in value.contained:
                self.pin(object_id, owner)
            entry.contained = value.contained
        entry.value = value
        self.awaiting_borrowed.discard(value.object_id)
        callbacks, entry.callbacks = entry.callbacks, []
        for callback in callbacks:
            callback(value)
        for address in entry.waiters:
            self.send(address, value)
        entry.waiters.clear()
        self.cv.notify_all()
        self.maybe_free(entry)

    def _on_get_object(self, msg: p.GetObject) -> None:
        entry = self.refs.get(msg.object_id)
        if entry is None or not entry.owned:
            error = ObjectLostError(
                f"Object {msg.object_id.hex()} was already freed by its owner; it can no "
                "longer be read."
            )
            self.send(
                msg.reply_to,
                p.ObjectValue(msg.object_id, inline=_serialize_error(error), is_error=True),
            )
        elif entry.value is not None:
            self.send(msg.reply_to, entry.value)
        else:
            entry.waiters.append(msg.reply_to)

    def _on_object_value(self, msg: p.ObjectValue) -> None:
        entry = self.refs.get(msg.object_id)
        if entry is not None and not entry.owned:
            self.set_value(msg, pin_contained=False)

    def when_ready(self, entry: Entry, callback: Callable[[p.ObjectValue], None]) -> None:
        """Run ``callback(value)`` (under the lock) once the entry has a value."""
        if entry.value is not None:
            callback(entry.value)
            return
        entry.callbacks.append(callback)
        self._request(entry)

    def _request(self, entry: Entry) -> None:
        if not entry.owned and not entry.requested and entry.value is None:
            entry.requested = True
            self.awaiting_borrowed.add(entry.object_id)
            self.send(entry.owner, p.GetObject(entry.object_id, self.address))

    # -------------------------------------------------------------- get/wait

    def get_values(self, refs: Sequence[Any], timeout: float | None) -> list[p.ObjectValue]:
        deadline = None if timeout is None else time.monotonic() + timeout
        entries: list[Entry] = []
        with self.lock:
            for ref in refs:
                entry = self.refs.reference(ref.object_id, ref.owner_address)
                self._request(entry)
                entries.append(entry)
        pending = [e for e in entries if e.value is None]
        if pending:
            self._wait_for(pending, len(pending), deadline)
            if any(e.value is None for e in entries):
                raise GetTimeoutError(
                    f"Get timed out: {sum(e.value is None for e in entries)} of "
                    f"{len(entries)} objects were not ready within {timeout} s."
                )
        return [e.value for e in entries]  # type: ignore[misc]

    def wait(
        self, refs: Sequence[Any], num_returns: int, timeout: float | None
    ) -> tuple[list[Any], list[Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        ready, not_ready = self._split_ready(refs, num_returns)
        if len(ready) == num_returns:
            return ready, not_ready
        with self.lock:
            known = self.refs.entries
            entries = []
            for ref in refs:
                entry = known.get(ref.object_id)
                if entry is None or not entry.owned:
                    entry = self.refs.reference(ref.object_id, ref.owner_address)
                    self._request(entry)
                entries.append(entry)
        self._wait_for(entries, num_returns, deadline)
        return self._split_ready(refs, num_returns)

    def _split_ready(self, refs: Sequence[Any], num_returns: int) -> tuple[list[Any], list[Any]]:
        """The first (at most) ``num_returns`` refs with values, in order, and the rest.

        Callers poll ``wait`` on long lists of which many are done: the scan stops once it
        has found enough, and the rest is sliced rather than walked.
        """
        entries = self.refs.entries
        picked: list[int] = []
        for index, ref in enumerate(refs):
            entry = entries.get(ref.object_id)
            if entry is not None and entry.value is not None:
                picked.append(index)
                if len(picked) == num_returns:
                    break
        if len(picked) == 1:
            index = picked[0]
            return [refs[index]], [*refs[:index], *refs[index + 1 :]]
        chosen = set(picked)
        return (
            [refs[i] for i in picked],
            [ref for i, ref in enumerate(refs) if i not in chosen],
        )

    def _wait_for(self, entries: list[Entry], count: int, deadline: float | None) -> None:
        """Wait (lock not held) until ``count`` entries have values or the deadline passes."""

        def enough() -> bool:
            # Checked after every message: stop counting as soon as there are enough.
            found = 0
            for entry in entries:
                if entry.value is not None:
                    found += 1
                    if found >= count:
                        return True
            return False

        self.wait_until(enough, deadline)

    def wait_until(self, enough: Callable[[], bool], deadline: float | None) -> None:
        """Wait (lock not held) until ``enough()`` or the deadline passes.

        The main thread reads the inbox itself meanwhile (see ``inbox``); other threads wait
        to be notified by whichever thread reads it (handlers that change what ``enough``
        reads notify ``cv``).
        """
        if enough():
            return
        self._set_blocked(True)
        try:
            while not enough():
                if self._stopping:
                    raise RuntimeError("Nebula is shutting down.")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                if self.inbox.read_until(enough, deadline):
                    continue
                with self.cv:
                    if not enough() and not self._stopping:
                        self.cv.wait(1.0 if remaining is None else min(remaining, 1.0))
        finally:
            self._set_blocked(False)

    def _set_blocked(self, blocked: bool) -> None:
        # A task blocked in get() lends its CPU back so the tasks it waits on can run.
        if self.is_driver or self.worker_id is None:
            return
        if threading.current_thread() is self._io_thread:
            return
        with self.lock:
            if blocked:
                self._blocked_depth += 1
                if self._blocked_depth == 1:
                    self.send(self.node_manager, p.WorkerBlocked(self.worker_id))
            else:
                self._blocked_depth -= 1
                if self._blocked_depth == 0:
                    self.send(self.node_manager, p.WorkerUnblocked(self.worker_id))

    def on_ready_async(self, ref: Any, callback: Callable[[], None]) -> None:
        with self.lock:
            entry = self.refs.reference(ref.object_id, ref.owner_address)
            self.when_ready(entry, lambda _value: callback())


def _serialize_error(error: BaseException) -> bytes:
    return serialize(error).to_bytes()


def print_log_lines(msg: p.LogLines) -> None:
    stream = sys.stderr if msg.is_stderr else sys.stdout
    prefix = f"(pid={msg.pid}) " if msg.pid else ""
    stream.write("".join(f"{prefix}{line}\n" for line in msg.lines))
    stream.flush()


_process_worker: CoreWorker | None = None


def set_process_worker(cw: CoreWorker) -> None:
    """Inside a worker process: ``cw`` serves this process's tasks and API calls."""
    global _process_worker
    _process_worker = cw


def process_worker() -> CoreWorker | None:
    """The worker process's core worker (None in a driver, which connects through init)."""
    return _process_worker
