"""Submitting tasks and actor calls from their owner.

Normal tasks: once a task's arguments are ready it joins the queue of its *scheduling
class* (its resource shape); the submitter leases workers from the node manager for that
class and pushes tasks to them directly, reusing each lease while the queue has work and
giving it back after a short idle time. Actor calls go straight to the actor's process in
submission order. Every method runs with the core worker's lock held.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nebula import _config
from nebula import _protocol as p
from nebula._ids import new_lease_id, task_id_of
from nebula._serialization import serialize
from nebula._transport import MessageTooLarge
from nebula._worker import task_events as ev
from nebula._worker.executor import current_task
from nebula.exceptions import (
    ActorDiedError,
    NodeDiedError,
    TaskCancelledError,
    WorkerCrashedError,
)

if TYPE_CHECKING:
    from nebula._worker.core_worker import CoreWorker

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class PendingTask:
    spec: p.TaskSpec
    return_ids: tuple[bytes, ...]
    arg_refs: list[Any]
    held: list[Any]
    function_bytes: bytes | None
    resources: dict[str, float] = field(default_factory=dict)
    strategy: Any = None
    resolved: list[p.ObjectValue | None] = field(default_factory=list)
    unresolved: int = 0
    retries_left: int = 0
    cancelled: bool = False
    finished: bool = False
    lease_id: bytes | None = None
    worker_address: str | None = None
    # The task that submitted this one (b"": the driver), found when first recorded.
    parent_task_id: bytes | None = None
    # Return values the running attempt sent ahead of its TaskDone (TaskReturnsPart).
    returns_parts: tuple[p.ObjectValue, ...] = ()

    @property
    def task_id(self) -> bytes:
        return self.spec.task_id


@dataclass(eq=False)
class _Lease:
    lease_id: bytes
    key: tuple[Any, ...]
    worker_address: str
    worker_id: bytes
    node_id: bytes
    node_manager: str
    gpu_ids: tuple[int, ...] = ()
    pid: int = 0
    busy: PendingTask | None = None
    idle_since: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Class:
    resources: dict[str, float]
    strategy: Any
    queue: deque[PendingTask] = field(default_factory=deque)
    leases: dict[bytes, _Lease] = field(default_factory=dict)
    requests: set[bytes] = field(default_factory=set)
    warned: bool = False
    # Since when its queued tasks have waited for a lease (None: not waiting).
    waiting_since: float | None = None


@dataclass(eq=False)
class ActorClient:
    actor_id: bytes
    state: str = "PENDING"
    address: str | None = None
    death_cause: str | None = None
    queue: deque[PendingTask] = field(default_factory=deque)
    inflight: dict[bytes, PendingTask] = field(default_factory=dict)
    sequence_no: int = 0
    out_of_scope: bool = False
    # Refs and handles inside the constructor's arguments, kept until __init__ has run.
    creation_pins: list[Any] = field(default_factory=list)


class Submitter:
    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self.tasks: dict[bytes, PendingTask] = {}
        self.classes: dict[tuple[Any, ...], _Class] = {}
        self.leases: dict[bytes, _Lease] = {}
        self.lease_requests: dict[bytes, tuple[Any, ...]] = {}
        # Which node manager each outstanding lease request currently waits at.
        self.request_node_manager: dict[bytes, str] = {}
        self.dead_nodes: set[bytes] = set()
        self.functions_sent: set[tuple[str, bytes]] = set()
        self.actors: dict[bytes, ActorClient] = {}

    def register_handlers(self) -> None:
        cw = self.cw
        cw.on(p.TaskDone, self._on_task_done)
        cw.on(p.TaskReturnsPart, self._on_task_returns_part)
        cw.on(p.LeaseGranted, self._on_lease_granted)
        cw.on(p.LeaseSpillback, self._on_lease_spillback)
        cw.on(p.NodeDied, self._on_node_died)
        cw.on(p.LeaseInfeasible, self._on_lease_infeasible)
        cw.on(p.LeasedWorkerDied, self._on_leased_worker_died)
        cw.on(p.ActorUpdate, self._on_actor_update)

    def pending_actor_calls(self, actor_id: bytes) -> int:
        """Calls from this process to the actor that have not finished yet."""
        client = self.actors.get(actor_id)
        return 0 if client is None else len(client.queue) + len(client.inflight)

    # ----------------------------------------------------------------- submit

    def submit(self, task: PendingTask) -> None:
        self.tasks[task.task_id] = task
        for object_id in task.return_ids:
            self.cw.refs.owned(object_id)
        task.resolved = [None] * len(task.arg_refs)
        task.unresolved = len(task.arg_refs)
        self._record_submitted(task)
        if task.spec.actor_id is not None:
            self._actor_client(task.spec.actor_id).queue.append(task)
        if not task.arg_refs:
            self._on_resolved(task)
            return
        # The last argument to become ready (maybe right here) queues the task.
        for index, ref in enumerate(task.arg_refs):
            entry = self.cw.refs.reference(ref.object_id, ref.owner_address)
            self.cw.when_ready(entry, functools.partial(self._arg_ready, task, index))

    def _record_submitted(self, task: PendingTask) -> None:
        events = self.cw.task_events
        if not events.enabled:
            return
        spec = task.spec
        if task.unresolved:
            state = ev.PENDING_ARGS_AVAIL
        elif spec.actor_id is not None:
            state = ev.PENDING_ACTOR_TASK
        else:
            state = ev.PENDING_NODE_ASSIGNMENT
        kind = ev.NORMAL_TASK if spec.actor_id is None else ev.ACTOR_TASK
        if task.parent_task_id is None:
            parent = current_task()
            task.parent_task_id = parent.task_id if parent is not None else b""
        events.submitted(spec, state, kind, task.resources or None, task.parent_task_id or None)

    def _arg_ready(self, task: PendingTask, index: int, value: p.ObjectValue) -> None:
        task.resolved[index] = value
        task.unresolved -= 1
        if task.unresolved == 0:
            self._on_resolved(task)

    def _on_resolved(self, task: PendingTask) -> None:
        if task.finished:
            return
        error = next((v for v in task.resolved if v is not None and v.is_error), None)
        if error is not None:
            # A failed argument fails the task with the same error, without running it.
            self._finish_with_error_bytes(task, error.inline or b"")
            if task.spec.actor_id is not None:
                self._pump_actor(self._actor_client(task.spec.actor_id))
            return
        if task.arg_refs:
            self.cw.task_events.state(
                task.spec,
                ev.PENDING_ACTOR_TASK if task.spec.actor_id else ev.PENDING_NODE_ASSIGNMENT,
            )
        if task.spec.actor_id is not None:
            self._pump_actor(self._actor_client(task.spec.actor_id))
            return
        key = _class_key(task)
        cls = self.classes.get(key)
        if cls is None:
            cls = self.classes[key] = _Class(task.resources, task.strategy)
        cls.queue.append(task)
        self._pump(key)

    def _final_spec(self, task: PendingTask, worker_address: str) -> p.TaskSpec:
        sent_key = (worker_address, task.spec.function_id)
        function_bytes = None
        if sent_key not in self.functions_sent:
            self.functions_sent.add(sent_key)
            function_bytes = task.function_bytes
        if not task.resolved and function_bytes is task.spec.function_bytes:
            return task.spec  # nothing to fill in (an actor call without ObjectRef args)
        return dataclasses.replace(
            task.spec,
            ref_args=tuple(v for v in task.resolved if v is not None),
            function_bytes=function_bytes,
        )

    # ------------------------------------------------------------ normal tasks

    def _pump(self, key: tuple[Any, ...]) -> None:
        cls = self.classes[key]
        for lease in cls.leases.values():
            if not cls.queue:
                break
            if lease.busy is None:
                self._dispatch(cls.queue.popleft(), lease)
        if not cls.queue:
            cls.waiting_since = None
        elif cls.waiting_since is None:
            cls.waiting_since = time.monotonic()
        wanted = len(cls.queue) - len(cls.requests)
        while wanted > 0 and len(cls.requests) < _config.MAX_PENDING_LEASES_PER_CLASS:
            lease_id = new_lease_id()
            cls.requests.add(lease_id)
            self.lease_requests[lease_id] = key
            self._request_lease(lease_id, cls, self.cw.node_manager, 0)
            wanted -= 1

    def _request_lease(
        self, lease_id: bytes, cls: _Class, node_manager: str, spill_count: int
    ) -> None:
        self.request_node_manager[lease_id] = node_manager
        self.cw.send(
            node_manager,
            p.RequestLease(
                lease_id,
                self.cw.job_id,
                cls.resources,
                self.cw.address,
                strategy=cls.strategy,
                spill_count=spill_count,
            ),
        )

    def _on_lease_spillback(self, msg: p.LeaseSpillback) -> None:
        key = self.lease_requests.get(msg.lease_id)
        cls = self.classes.get(key) if key is not None else None
        if cls is None:
            self.request_node_manager.pop(msg.lease_id, None)
            return
        if msg.node_id in self.dead_nodes:
            # Sent there on a stale view: ask our own node again, which knows better by now.
            self._request_lease(msg.lease_id, cls, self.cw.node_manager, 0)
            return
        self._request_lease(msg.lease_id, cls, msg.node_manager, msg.spill_count)

    def _cancel_request(self, lease_id: bytes) -> None:
        self.lease_requests.pop(lease_id, None)
        node_manager = self.request_node_manager.pop(lease_id, self.cw.node_manager)
        self.cw.send(node_manager, p.CancelLeaseRequest(lease_id))

    def _dispatch(self, task: PendingTask, lease: _Lease) -> None:
        lease.busy = task
        task.returns_parts = ()  # what an earlier attempt sent before it died
        task.lease_id = lease.lease_id
        task.worker_address = lease.worker_address
        spec = self._final_spec(task, lease.worker_address)
        self.cw.task_events.dispatched(spec, lease.node_id, lease.worker_id, lease.pid)
        try:
            self.cw.send(lease.worker_address, p.PushTask(spec, lease.lease_id, lease.gpu_ids))
        except MessageTooLarge as exc:
            # Its ObjectRef arguments' values, inline, make a message no peer accepts.
            lease.busy = None
            lease.idle_since = time.monotonic()
            task.lease_id = task.worker_address = None
            self._finish_with_error(
                task,
                ValueError(
                    f"{task.spec.name}() was called with {len(task.arg_refs):,} ObjectRef "
                    f"arguments whose values take {exc.size:,} bytes in one message, more "
                    f"than the limit of {_config.MAX_MESSAGE_BYTES:,}; pass fewer of them "
                    "per call, or one ref to a list of them."
                ),
            )

    def _on_lease_granted(self, msg: p.LeaseGranted) -> None:
        key = self.lease_requests.pop(msg.lease_id, None)
        self.request_node_manager.pop(msg.lease_id, None)
        cls = self.classes.get(key) if key is not None else None
        node_manager = msg.node_manager or self.cw.node_manager
        if cls is None or key is None:
            self.cw.send(node_manager, p.ReturnLease(msg.lease_id))
            return
        cls.requests.discard(msg.lease_id)
        lease = _Lease(
            msg.lease_id,
            key,
            msg.worker_address,
            msg.worker_id,
            msg.node_id,
            node_manager,
            msg.gpu_ids,
            msg.pid,
        )
        cls.leases[msg.lease_id] = lease
        self.leases[msg.lease_id] = lease
        cls.waiting_since = None
        if cls.queue:
            self._dispatch(cls.queue.popleft(), lease)

    def _on_lease_infeasible(self, msg: p.LeaseInfeasible) -> None:
        key = self.lease_requests.get(msg.lease_id)
        cls = self.classes.get(key) if key is not None else None
        if cls is not None and cls.warned:
            return
        if cls is not None:
            cls.warned = True
        sys.stderr.write(f"Warning: {msg.message}\n")
        sys.stderr.flush()

    def _on_node_died(self, msg: p.NodeDied) -> None:
        self.dead_nodes.add(msg.node_id)
        for lease in [x for x in self.leases.values() if x.node_id == msg.node_id]:
            self._lease_lost(lease, lease.pid, f"its node died: {msg.reason}", node_lost=True)
        # Requests waiting at the dead node's manager will never be answered: ask again here.
        for lease_id, address in list(self.request_node_manager.items()):
            key = self.lease_requests.get(lease_id)
            cls = self.classes.get(key) if key is not None else None
            if address == msg.node_manager and cls is not None:
                self._request_lease(lease_id, cls, self.cw.node_manager, 0)
        self.cw.on_node_died(msg)

    def _on_leased_worker_died(self, msg: p.LeasedWorkerDied) -> None:
        lease = self.leases.get(msg.lease_id)
        if lease is not None:
            self._lease_lost(lease, msg.pid, msg.reason, node_lost=False)

    def _lease_lost(self, lease: _Lease, pid: int, reason: str, *, node_lost: bool) -> None:
        self.leases.pop(lease.lease_id, None)
        cls = self.classes.get(lease.key)
        if cls is not None:
            cls.leases.pop(lease.lease_id, None)
        self.cw.endpoint.disconnect(lease.worker_address)
        task = lease.busy
        if task is not None and not task.finished:
            if task.cancelled:
                self._finish_with_error(task, TaskCancelledError(_cancelled_text(task)))
            elif task.retries_left != 0:
                lost = "NODE_DIED" if node_lost else "WORKER_DIED"
                self.cw.task_events.failed(task.spec, lost, f"the worker died: {reason}")
                self._retry(task)
                if cls is not None:
                    cls.queue.appendleft(task)
            else:
                error_type = NodeDiedError if node_lost else WorkerCrashedError
                self._finish_with_error(
                    task,
                    error_type(
                        f"The worker running {task.spec.name}() (pid {pid}) died: "
                        f"{reason}. The task was tried {task.spec.attempt + 1} time(s)."
                    ),
                )
        if cls is not None:
            self._pump(lease.key)

    def tick(self) -> None:
        now = time.monotonic()
        # Tasks of one class waiting for a lease while this process holds idle leases of
        # others: those workers may be the ones the waiting class needs (a pipeline's
        # next step, with another resource shape or strategy), so they go back now.
        reclaim = any(
            cls.requests
            and cls.waiting_since is not None
            and now - cls.waiting_since > _config.LEASE_RECLAIM_S
            for cls in self.classes.values()
        )
        idle_timeout = 0.0 if reclaim else _config.LEASE_IDLE_TIMEOUT_S
        for key, cls in self.classes.items():
            if cls.queue:
                continue
            for lease in list(cls.leases.values()):
                if lease.busy is None and now - lease.idle_since > idle_timeout:
                    self._return_lease(cls, lease)
            for lease_id in list(cls.requests):
                cls.requests.discard(lease_id)
                self._cancel_request(lease_id)
            del key

    def _retire_lease(self, lease: _Lease) -> None:
        """Give back a lease whose worker reached a function's max_calls, to be stopped."""
        cls = self.classes.get(lease.key)
        if cls is not None:
            cls.leases.pop(lease.lease_id, None)
        self.leases.pop(lease.lease_id, None)
        self.cw.send(lease.node_manager, p.ReturnLease(lease.lease_id, True))

    def _return_lease(self, cls: _Class, lease: _Lease) -> None:
        cls.leases.pop(lease.lease_id, None)
        self.leases.pop(lease.lease_id, None)
        self.cw.send(lease.node_manager, p.ReturnLease(lease.lease_id))

    # ------------------------------------------------------------------ replies

    def _on_task_returns_part(self, msg: p.TaskReturnsPart) -> None:
        task = self.tasks.get(msg.task_id)
        if task is None:
            for value in msg.returns:
                self.cw.set_value(value)
            return
        task.returns_parts += msg.returns

    def _on_task_done(self, msg: p.TaskDone) -> None:
        task = self.tasks.get(msg.task_id)
        if task is None:
            for value in msg.returns:
                self.cw.set_value(value)
            return
        if task.returns_parts:
            if msg.error is None:
                msg = dataclasses.replace(msg, returns=task.returns_parts + msg.returns)
            task.returns_parts = ()
        if task.spec.actor_id is not None:
            client = self.actors.get(task.spec.actor_id)
            if client is not None:
                client.inflight.pop(task.task_id, None)
        elif task.lease_id is not None:
            lease = self.leases.get(task.lease_id)
            if lease is not None and lease.busy is task:
                lease.busy = None
                lease.idle_since = time.monotonic()
                if msg.worker_retiring:
                    self._retire_lease(lease)
        retry = (
            msg.error is not None
            and msg.retryable_error
            and task.retries_left != 0
            and not task.cancelled
        )
        if retry:
            self._retry(task)
            if task.spec.actor_id is None:
                self.classes[_class_key(task)].queue.appendleft(task)
        else:
            # The worker records a failure too; the owner's record survives the worker
            # being stopped before its next flush (at the end of a job, say).
            if msg.error is None:
                self.cw.task_events.state(task.spec, ev.FINISHED)
            elif self.cw.task_events.enabled:
                self.cw.task_events.failed(task.spec, *ev.describe_error_bytes(msg.error))
            self._complete(task, msg.returns)
        if task.spec.actor_id is None and task.lease_id is not None:
            key = _class_key(task)
            if key in self.classes:
                self._pump(key)
        else:
            client = self.actors.get(task.spec.actor_id or b"")
            if client is not None:
                if retry:
                    client.queue.appendleft(task)
                self._pump_actor(client)

    def _retry(self, task: PendingTask) -> None:
        """Start the task's next attempt (the failed one was recorded where it failed)."""
        task.retries_left -= 1
        task.spec = dataclasses.replace(task.spec, attempt=task.spec.attempt + 1)
        self._record_submitted(task)

    def _complete(self, task: PendingTask, returns: tuple[p.ObjectValue, ...]) -> None:
        task.finished = True
        self.tasks.pop(task.task_id, None)
        # A result in shared memory dies with its node; keeping the finished task (and so
        # its arguments) lets the owner run it again to rebuild the value.
        keep_lineage = (
            task.spec.actor_id is None
            and task.retries_left != 0
            and not task.cancelled
            and any(v.shm is not None and not v.is_error for v in returns)
        )
        if keep_lineage:
            for object_id in task.return_ids:
                entry = self.cw.refs.get(object_id)
                if entry is not None:
                    entry.lineage = task
        for value in returns:
            self.cw.set_value(value)
        if not keep_lineage:
            task.held.clear()
            task.arg_refs.clear()

    def reconstruct(self, task: PendingTask) -> None:
        """Run a finished task again because a value it returned was lost."""
        if task.retries_left > 0:
            task.retries_left -= 1
        task.finished = False
        task.lease_id = None
        task.worker_address = None
        task.spec = dataclasses.replace(task.spec, attempt=task.spec.attempt + 1)
        self.submit(task)  # records the new attempt

    def _finish_with_error(self, task: PendingTask, error: BaseException) -> None:
        self.cw.task_events.failed(task.spec, *ev.error_fields(error))
        self._finish_with_error_bytes(task, serialize(error).to_bytes(), recorded=True)

    def _finish_with_error_bytes(
        self, task: PendingTask, error: bytes, *, recorded: bool = False
    ) -> None:
        if not recorded and self.cw.task_events.enabled:
            self.cw.task_events.failed(task.spec, *ev.describe_error_bytes(error))
        returns = tuple(
            p.ObjectValue(object_id, inline=error, is_error=True) for object_id in task.return_ids
        )
        self._complete(task, returns)

    # ------------------------------------------------------------------ cancel

    def cancel(self, object_id: bytes, force: bool) -> None:
        task = self.tasks.get(task_id_of(object_id))
        if task is None or task.finished:
            return
        task.cancelled = True
        client = self.actors.get(task.spec.actor_id) if task.spec.actor_id else None
        queue = client.queue if client is not None else None
        if queue is None and task.lease_id is None:
            cls = self.classes.get(_class_key(task))
            queue = cls.queue if cls is not None else None
        if queue is not None and task in queue:
            queue.remove(task)
            self._finish_with_error(task, TaskCancelledError(_cancelled_text(task)))
            return
        if task.worker_address is not None and (client is None or not force):
            self.cw.send(task.worker_address, p.CancelTask(task.task_id, force))
        elif task.unresolved:
            self._finish_with_error(task, TaskCancelledError(_cancelled_text(task)))

    # ------------------------------------------------------------------ actors

    def _actor_client(self, actor_id: bytes) -> ActorClient:
        client = self.actors.get(actor_id)
        if client is None:
            client = self.actors[actor_id] = ActorClient(actor_id)
            self.cw.send(self.cw.control_store, p.SubscribeActor(actor_id, self.cw.address))
        return client

    def next_sequence_no(self, actor_id: bytes) -> int:
        client = self._actor_client(actor_id)
        client.sequence_no += 1
        return client.sequence_no

    def _pump_actor(self, client: ActorClient) -> None:
        if client.state == "DEAD":
            self._fail_actor_tasks(client)
            return
        while client.queue:
            task = client.queue[0]
            if task.finished:
                client.queue.popleft()
                continue
            if task.unresolved or client.state != "ALIVE" or client.address is None:
                return
            client.queue.popleft()
            client.inflight[task.task_id] = task
            task.worker_address = client.address
            spec = self._final_spec(task, client.address)
            self.cw.task_events.state(spec, ev.SUBMITTED_TO_WORKER)
            self.cw.send(client.address, p.PushTask(spec))
        if client.out_of_scope and not client.inflight:
            self._send_out_of_scope(client)

    def _on_actor_update(self, msg: p.ActorUpdate) -> None:
        client = self.actors.get(msg.actor_id)
        if client is None:
            return
        if client.state == "DEAD":
            return
        if msg.state == "RESTARTING" and client.state != "RESTARTING":
            self._requeue_in_flight(client, msg.death_cause or "the actor restarted")
        if client.address is not None and client.address != msg.address:
            self.cw.endpoint.disconnect(client.address)
            # The restarted actor is a fresh process that has seen no definitions yet.
            self.functions_sent = {k for k in self.functions_sent if k[0] != client.address}
        client.state = msg.state
        client.address = msg.address
        client.death_cause = msg.death_cause
        if msg.state in ("ALIVE", "DEAD"):
            client.creation_pins.clear()
        self._pump_actor(client)

    def _requeue_in_flight(self, client: ActorClient, cause: str) -> None:
        """Calls the dead process never answered: resend within max_task_retries, else fail."""
        in_flight = sorted(client.inflight.values(), key=lambda t: t.spec.sequence_no)
        client.inflight.clear()
        for task in reversed(in_flight):
            if task.finished:
                continue
            if task.retries_left != 0:
                self.cw.task_events.failed(task.spec, "ACTOR_DIED", cause)
                self._retry(task)
                client.queue.appendleft(task)
            else:
                self._finish_with_error(
                    task,
                    ActorDiedError(
                        f"{task.spec.name}() was running when the actor's process died ({cause}); "
                        "the actor is restarting. Set max_task_retries to retry such calls.",
                        client.actor_id.hex(),
                    ),
                )

    def _fail_actor_tasks(self, client: ActorClient) -> None:
        cause = client.death_cause or "the actor died"
        pending = list(client.inflight.values()) + list(client.queue)
        client.inflight.clear()
        client.queue.clear()
        for task in pending:
            if not task.finished:
                self._finish_with_error(
                    task,
                    ActorDiedError(
                        f"{task.spec.name}() could not complete: {cause}", client.actor_id.hex()
                    ),
                )

    def mark_actor_dead(self, actor_id: bytes, cause: str) -> None:
        client = self._actor_client(actor_id)
        client.state = "DEAD"
        client.death_cause = cause
        self._fail_actor_tasks(client)

    def actor_out_of_scope(self, actor_id: bytes) -> None:
        client = self.actors.get(actor_id)
        if client is not None and (client.inflight or client.queue):
            client.out_of_scope = True
            return
        self.cw.send(self.cw.control_store, p.ActorOutOfScope(actor_id))
        self.actors.pop(actor_id, None)

    def _send_out_of_scope(self, client: ActorClient) -> None:
        client.out_of_scope = False
        if self.cw.refs.get(client.actor_id) is None:
            self.cw.send(self.cw.control_store, p.ActorOutOfScope(client.actor_id))
            self.actors.pop(client.actor_id, None)

    def forget_actor(self, actor_id: bytes) -> None:
        client = self.actors.get(actor_id)
        if client is not None and not client.inflight and not client.queue:
            del self.actors[actor_id]

    def actor_state(self, actor_id: bytes) -> ActorClient:
        return self._actor_client(actor_id)

    def fail_all(self, error: bytes) -> None:
        for task in list(self.tasks.values()):
            if not task.finished:
                self._finish_with_error_bytes(task, error)
        for client in self.actors.values():
            client.state = "DEAD"
            client.queue.clear()
            client.inflight.clear()

    # ---------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        for cls in self.classes.values():
            for lease in list(cls.leases.values()):
                self._return_lease(cls, lease)
            for lease_id in cls.requests:
                self._cancel_request(lease_id)
            cls.requests.clear()


def _class_key(task: PendingTask) -> tuple[Any, ...]:
    return (tuple(sorted(task.resources.items())), repr(task.strategy))


def _cancelled_text(task: PendingTask) -> str:
    return f"{task.spec.name}() was cancelled with nebula.cancel()."
