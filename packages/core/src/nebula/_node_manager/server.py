"""The node manager: grants worker leases against the node's resources.

An owner asks for a lease for a resource shape; the node manager hands it a worker once the
resources are free, and the owner then pushes tasks to that worker directly until it gives
the lease back. A request that can never fit this node stays queued and the requester is
warned once: it never runs on resources it does not have.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from typing import Any

from nebula import _config
from nebula import _protocol as p
from nebula._node_manager import introspect
from nebula._node_manager.cluster_view import ClusterViewCopy
from nebula._node_manager.worker_pool import WorkerPool, WorkerProcess
from nebula._node_manager.zygote import Zygote
from nebula._object_store import shm
from nebula._object_store.bulk import BulkServer
from nebula._object_store.store import ObjectStore, RoomPending, StoreFull
from nebula._scheduler import resources as res
from nebula._scheduler.bundles import bundle_resources, is_group_resource
from nebula._scheduler.placement import place_near
from nebula._scheduler.view import NodeView, PlacementRequest
from nebula._transport import Endpoint

logger = logging.getLogger(__name__)


@dataclass
class _LeaseRequest:
    msg: p.RequestLease
    warned: bool = False
    # Set while no node can take the request; re-placed when the cluster changes.
    unplaceable: bool = False
    reason: str = ""
    since: float = 0.0


@dataclass
class _Lease:
    lease_id: bytes
    request: p.RequestLease
    worker_id: bytes
    gpu_ids: tuple[int, ...] = ()


class NodeManager:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        node_id: bytes,
        control_store: str,
        resources: dict[str, float],
        object_store_memory: int,
        session_tag: str,
        log_dir: str,
        prestart_workers: int,
        spill_dir: str,
        zygote: Zygote | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.node_id = node_id
        self.control_store = control_store
        self.total = dict(resources)
        self.available = dict(resources)
        self.object_store_memory = object_store_memory
        self.session_tag = session_tag
        self.pool = WorkerPool(
            endpoint.address, control_store, node_id, session_tag, endpoint.host, log_dir, zygote
        )
        self.pending: list[_LeaseRequest] = []
        self.leases: dict[bytes, _Lease] = {}
        self.drivers: dict[int, str] = {}
        self.finished_jobs: set[int] = set()
        self.store = ObjectStore(
            object_store_memory,
            spill_dir,
            session_tag=session_tag,
            node_id=node_id,
            spill_chunk_delay_s=_config.SPILL_CHUNK_DELAY_S,
        )
        self.bulk = BulkServer(endpoint.host, endpoint.bulk_key, self.store.file_of)
        self.cluster = ClusterViewCopy()
        self.free_gpus = list(range(int(resources.get("GPU", 0))))
        # (group id, bundle index) -> the bundle's own resources, while reserved here.
        self.bundles: dict[tuple[bytes, int], dict[str, float]] = {}
        self.stopped = False
        self._last_heartbeat = 0.0
        self.prestart_workers = prestart_workers
        self.log_dir = log_dir
        # Writes and restores waiting for room (held by other writers, or coming from spills
        # under way), oldest first, each with the time it gives up waiting for writers
        # (see ObjectStore.must_wait); waiting for spills never times out.
        self.waiting_for_room: collections.deque[tuple[p.Message, float]] = collections.deque()
        # Readers waiting for a restore under way, by object.
        self.waiting_for_restore: dict[bytes, list[p.RestoreObject]] = {}
        # Workers that exited, newest last, for list_workers() and their logs.
        self.dead_workers: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        # Whether the workers started before the zygote's preload were replaced.
        self._renewed = False

    def prestart(self) -> None:
        """Start the workers kept ready before any lease asks for one."""
        for _ in range(self.prestart_workers):
            self.pool.start_worker()

    # --------------------------------------------------------------- dispatch

    def handle(self, msg: p.Message) -> None:
        handler = getattr(self, "_on_" + type(msg).__name__, None)
        if handler is None:
            logger.warning("node manager ignored an unexpected %s", type(msg).__name__)
            return
        handler(msg)

    def tick(self) -> None:
        for worker in self.pool.reap():
            self._on_worker_exit(worker)
        zygote = self.pool.zygote
        if zygote is not None and zygote.preloaded and not self._renewed:
            self._renewed = True
            self.pool.renew()
        self._warn_unplaceable()
        now = time.monotonic()
        if self.waiting_for_room and self.waiting_for_room[0][1] <= now:
            self._serve_waiting(expire=True)
        if now - self._last_heartbeat >= _config.NODE_HEARTBEAT_S:
            self._last_heartbeat = now
            self.cluster.heartbeat_sent()
            self.endpoint.send(
                self.control_store,
                p.NodeHeartbeat(
                    self.node_id,
                    self.available,
                    self.total,
                    self.cluster.epoch,
                    self.cluster.version,
                ),
            )

    # ---------------------------------------------------------------- workers

    def _on_RegisterWorker(self, msg: p.RegisterWorker) -> None:
        worker = self.pool.workers.get(msg.worker_id)
        if worker is None:
            return
        worker.address = msg.address
        worker.idle_since = time.monotonic()
        self._dispatch()

    def _on_worker_exit(self, worker: WorkerProcess) -> None:
        for is_err, lines in self.pool.drain_output(worker):
            self._forward_logs(worker, is_err, lines)
        self.pool.close_worker_files(worker)
        code = worker.process.returncode
        reason = _exit_reason(code)
        record = introspect.worker_record(self, worker, alive=False)
        record["exit_detail"] = reason
        record["exit_type"] = "INTENDED_SYSTEM_EXIT" if worker.dying else "SYSTEM_ERROR"
        if not worker.retired:
            self.dead_workers.append(record)
        if worker.lease_id is not None:
            lease = self.leases.pop(worker.lease_id, None)
            if lease is not None:
                self._release(lease, worker)
                if not lease.request.for_actor:
                    self.endpoint.send(
                        lease.request.reply_to,
                        p.LeasedWorkerDied(
                            lease.lease_id, worker.worker_id, worker.pid, code, reason
                        ),
                    )
        if worker.actor_id is not None or worker.lease_id is not None:
            self.endpoint.send(
                self.control_store,
                p.WorkerDied(
                    self.node_id, worker.worker_id, worker.pid, worker.actor_id, code, reason
                ),
            )
        if worker.address is not None:
            self._drop_leases_held_by(worker.address)
            self.endpoint.disconnect(worker.address)
        self._dispatch()

    def _drop_leases_held_by(self, holder: str) -> None:
        """A dead process's leases come back; the workers it leased may be mid-task for an
        owner that can no longer hear the result, so they are stopped, not reused."""
        self.pending = [r for r in self.pending if r.msg.reply_to != holder]
        for lease in [x for x in self.leases.values() if x.request.reply_to == holder]:
            del self.leases[lease.lease_id]
            leased = self.pool.workers.get(lease.worker_id)
            if leased is not None:
                self._release(lease, leased)
                self.pool.kill(leased)

    def _on_KillWorker(self, msg: p.KillWorker) -> None:
        worker = self.pool.workers.get(msg.worker_id)
        if worker is not None:
            self.pool.kill(worker)

    def _on_WorkerBlocked(self, msg: p.WorkerBlocked) -> None:
        # A worker waiting in get() gives its CPUs back so the tasks it waits for can run.
        worker = self.pool.workers.get(msg.worker_id)
        if worker is None or worker.blocked or worker.lease_id is None:
            return
        lease = self.leases.get(worker.lease_id)
        if lease is None:
            return
        worker.blocked = True
        res.add(self.available, _cpu_only(lease.request.resources))
        self._dispatch()

    def _on_WorkerUnblocked(self, msg: p.WorkerUnblocked) -> None:
        worker = self.pool.workers.get(msg.worker_id)
        if worker is None or not worker.blocked:
            return
        worker.blocked = False
        lease = self.leases.get(worker.lease_id) if worker.lease_id else None
        if lease is not None:
            res.subtract(self.available, _cpu_only(lease.request.resources))

    # ----------------------------------------------------------------- leases

    def _on_RequestLease(self, msg: p.RequestLease) -> None:
        if msg.job_id in self.finished_jobs:
            return
        request = _LeaseRequest(msg)
        if self._route(request):
            self.pending.append(request)
            self._dispatch()

    def _route(self, request: _LeaseRequest) -> bool:
        """Send the request where it should run; True if it stays queued here."""
        msg = request.msg
        # What is free once the requests already queued here are served: a burst of
        # requests then overflows to other nodes instead of piling up on this one.
        uncommitted = dict(self.available)
        for queued in self.pending:
            if not queued.unplaceable:
                res.subtract(uncommitted, queued.msg.resources)
        local = self.node_id.hex()
        request_view = PlacementRequest(msg.resources, msg.strategy or "DEFAULT", local)
        placement = place_near(
            request_view,
            NodeView(local, self.total, uncommitted),
            lambda: self.cluster.views(exclude=self.node_id),
            msg.spill_count,
        )
        if placement.node_id is None:
            if not request.unplaceable:
                request.since = time.monotonic()
            request.unplaceable = True
            request.reason = placement.reason
            return True
        request.unplaceable = False
        if placement.node_id == local:
            return True
        target = bytes.fromhex(placement.node_id)
        self.cluster.count_sent(target, msg.resources)
        self.endpoint.send(
            msg.reply_to,
            p.LeaseSpillback(
                msg.lease_id, target, self.cluster.nodes[target].address, msg.spill_count + 1
            ),
        )
        return False

    def _warn_unplaceable(self) -> None:
        # Warn only once the view of the cluster had time to catch up: a node that just
        # joined is not in it yet. Placement-group requests wait for their bundles silently.
        patience = 2.5 * _config.NODE_HEARTBEAT_S
        now = time.monotonic()
        for request in self.pending:
            if not request.unplaceable or request.warned or now - request.since < patience:
                continue
            if any(is_group_resource(n) for n in request.msg.resources):
                continue
            request.warned = True
            logger.info(request.reason)
            self.endpoint.send(
                request.msg.reply_to, p.LeaseInfeasible(request.msg.lease_id, request.reason)
            )

    def _on_ClusterViewDelta(self, msg: p.ClusterViewDelta) -> None:
        if not self.cluster.apply(msg):
            return
        # Requests still waiting here may now fit elsewhere (a node joined or freed up).
        if self.pending:
            waiting, self.pending = self.pending, []
            for request in waiting:
                if self._route(request):
                    self.pending.append(request)
            self._dispatch()

    def _on_NodeDied(self, msg: p.NodeDied) -> None:
        self.cluster.mark_dead(msg.node_id)
        for worker in self.pool.workers.values():
            if worker.address is not None:
                self.endpoint.send(worker.address, msg)

    def _on_CancelLeaseRequest(self, msg: p.CancelLeaseRequest) -> None:
        self.pending = [r for r in self.pending if r.msg.lease_id != msg.lease_id]

    def _on_ReturnLease(self, msg: p.ReturnLease) -> None:
        lease = self.leases.pop(msg.lease_id, None)
        if lease is None:
            return
        worker = self.pool.workers.get(lease.worker_id)
        if worker is not None:
            self._release(lease, worker)
            if msg.kill_worker:
                self.pool.kill(worker)
        self._dispatch()

    def _release(self, lease: _Lease, worker: WorkerProcess) -> None:
        # Resources of a released placement group are gone: nothing to give back to them.
        returned = {k: v for k, v in lease.request.resources.items() if k in self.total}
        if worker.blocked:
            returned = {k: v for k, v in returned.items() if k != "CPU"}
            worker.blocked = False
        res.add(self.available, returned)
        if lease.request.resources.get("GPU", 0.0) >= 1:
            self.free_gpus = sorted({*self.free_gpus, *lease.gpu_ids})
        worker.lease_id = None
        worker.idle_since = time.monotonic()

    def _dispatch(self) -> None:
        if not self.pending:
            return
        # Workers still starting up are promised to the requests that wait for a worker:
        # start another only when every starting one already has a request to serve.
        starting = sum(1 for w in self.pool.workers.values() if not w.registered and not w.dying)
        waiting_for_worker = 0
        still_pending: list[_LeaseRequest] = []
        for request in self.pending:
            msg = request.msg
            if request.unplaceable:
                still_pending.append(request)
                continue
            if not res.fits(msg.resources, self.total):
                if not request.warned:
                    request.warned = True
                    self._warn_infeasible(msg)
                still_pending.append(request)
                continue
            if not res.fits(msg.resources, self.available):
                still_pending.append(request)
                continue
            worker = self._idle_worker_for(msg.job_id)
            if worker is None:
                waiting_for_worker += 1
                if starting < min(waiting_for_worker, _config.MAX_STARTING_WORKERS):
                    self.pool.start_worker()
                    starting += 1
                still_pending.append(request)
                continue
            self._grant(msg, worker)
        self.pending = still_pending

    def _idle_worker_for(self, job_id: int) -> WorkerProcess | None:
        fallback = None
        for worker in self.pool.workers.values():
            if not worker.idle:
                continue
            if worker.job_id == job_id:
                return worker
            if worker.job_id is None and fallback is None:
                fallback = worker
        return fallback

    def _grant(self, msg: p.RequestLease, worker: WorkerProcess) -> None:
        res.subtract(self.available, msg.resources)
        worker.lease_id = msg.lease_id
        worker.used = True
        worker.job_id = msg.job_id
        worker.actor_id = msg.actor_id if msg.for_actor else None
        gpu_ids = self._take_gpus(msg.resources.get("GPU", 0.0))
        self.leases[msg.lease_id] = _Lease(msg.lease_id, msg, worker.worker_id, gpu_ids)
        assert worker.address is not None
        self.endpoint.send(
            msg.reply_to,
            p.LeaseGranted(
                msg.lease_id,
                worker.worker_id,
                worker.address,
                self.node_id,
                worker.pid,
                self.endpoint.address,
                gpu_ids,
            ),
        )

    def _take_gpus(self, amount: float) -> tuple[int, ...]:
        # Whole GPUs get their own devices; a fraction shares the first free one.
        if amount <= 0 or not self.free_gpus:
            return ()
        count = max(1, int(amount))
        if amount < 1:
            return (self.free_gpus[0],)
        taken, self.free_gpus = self.free_gpus[:count], self.free_gpus[count:]
        return tuple(taken)

    def _warn_infeasible(self, msg: p.RequestLease) -> None:
        text = (
            f"a request for {res.describe(msg.resources)} cannot be met by this cluster "
            f"(this node has {res.describe(self.total)}); it will wait until a node that "
            "fits joins."
        )
        logger.info(text)
        self.endpoint.send(msg.reply_to, p.LeaseInfeasible(msg.lease_id, text))

    # ------------------------------------------------------------- jobs/logs

    def _on_RegisterDriver(self, msg: p.RegisterDriver) -> None:
        if msg.log_to_driver:
            self.drivers[msg.job_id] = msg.address

    def _on_JobFinishedNotice(self, msg: p.JobFinishedNotice) -> None:
        self.finished_jobs.add(msg.job_id)
        address = self.drivers.pop(msg.job_id, None)
        if address is not None:
            self.endpoint.disconnect(address)
        self.pending = [r for r in self.pending if r.msg.job_id != msg.job_id]
        keep = set(msg.keep_worker_ids)
        for worker in list(self.pool.workers.values()):
            if worker.job_id == msg.job_id and worker.worker_id not in keep:
                self.pool.kill(worker)

    def on_output(self, fd: int) -> None:
        result = self.pool.read_output(fd)
        if result is not None:
            worker, is_err, lines = result
            if lines:
                self._forward_logs(worker, is_err, lines)

    def _forward_logs(self, worker: WorkerProcess, is_err: bool, lines: list[str]) -> None:
        address = self.drivers.get(worker.job_id) if worker.job_id is not None else None
        if address is not None:
            self.endpoint.send(address, p.LogLines(worker.pid, is_err, tuple(lines)))

    # ---------------------------------------------------------------- objects

    def _on_CreateObject(self, msg: p.CreateObject) -> None:
        if msg.size > self.store.capacity:
            try:
                path = self.store.reserve_on_disk(msg.object_id)
            except OSError as exc:
                error = f"the object store could not make room on disk: {exc}"
                self.endpoint.send(msg.reply_to, p.CreateObjectReply(msg.request_id, error))
            else:
                reply = p.CreateObjectReply(msg.request_id, disk_path=path)
                self.endpoint.send(msg.reply_to, reply)
            return
        self._wait_or_serve(msg)

    def _wait_or_serve(self, msg: p.CreateObject | p.RestoreObject) -> None:
        """Serve a write or restore now, or queue it until room is made for it."""
        if not self.waiting_for_room and self._try_serve(msg) is None:
            return
        deadline = time.monotonic() + _config.OBJECT_STORE_FULL_WAIT_S
        self.waiting_for_room.append((msg, deadline))
        self._serve_waiting()

    def _try_serve(self, msg: p.Message) -> str | None:
        """Answer ``msg`` (room made, or an error); or say what it waits for: "writers"
        (room other writers hold) or "copies" (room spills under way will free)."""
        if isinstance(msg, p.CreateObject):
            if self.store.must_wait(msg.size, msg.object_id):
                return "writers"
            try:
                reused = self.store.reserve(msg.object_id, msg.size, msg.retained_path)
            except RoomPending:
                return "copies"
            except StoreFull as exc:
                self.endpoint.send(msg.reply_to, p.CreateObjectReply(msg.request_id, str(exc)))
            except OSError as exc:
                error = f"the object store could not make room: {exc}"
                self.endpoint.send(msg.reply_to, p.CreateObjectReply(msg.request_id, error))
            else:
                reply = p.CreateObjectReply(msg.request_id, reused=reused)
                self.endpoint.send(msg.reply_to, reply)
            return None
        assert isinstance(msg, p.RestoreObject)
        size = self.store.spilled_size(msg.object_id)
        if size is not None and self.store.must_wait(size):
            return "writers"
        try:
            location = self.store.start_restore(msg.object_id)
        except RoomPending:
            return "copies"
        except KeyError:
            self._answer_restore(msg, None, "the object is not in this store")
        except (StoreFull, OSError) as exc:
            self._answer_restore(msg, None, str(exc))
        else:
            if location is None:
                self.waiting_for_restore.setdefault(msg.object_id, []).append(msg)
            else:
                self._answer_restore(msg, location, None)
        return None

    def _serve_waiting(self, *, expire: bool = False) -> None:
        """Serve queued requests in order while they fit; fail those waiting too long for
        room other writers hold."""
        now = time.monotonic()
        while self.waiting_for_room:
            msg, deadline = self.waiting_for_room[0]
            blocked = self._try_serve(msg)
            if blocked is None:
                self.waiting_for_room.popleft()
            elif blocked == "copies":
                # Spills take as long as the disk needs; the wait for writers starts after.
                new_deadline = now + _config.OBJECT_STORE_FULL_WAIT_S
                self.waiting_for_room[0] = (msg, new_deadline)
                return
            elif expire and deadline <= now:
                self.waiting_for_room.popleft()
                self._fail_room(msg)
            else:
                return

    def _fail_room(self, msg: p.Message) -> None:
        error = (
            f"the object store stayed full for {_config.OBJECT_STORE_FULL_WAIT_S:.0f} s: "
            f"{self.store.capacity:,} bytes (object_store_memory) were all being written "
            "by other tasks; give the store more room or write smaller objects"
        )
        if isinstance(msg, p.CreateObject):
            self.endpoint.send(msg.reply_to, p.CreateObjectReply(msg.request_id, error))
        else:
            assert isinstance(msg, p.RestoreObject)
            self._answer_restore(msg, None, error)

    def _answer_restore(
        self, msg: p.RestoreObject, location: p.ShmLocation | None, error: str | None
    ) -> None:
        self.endpoint.send(msg.reply_to, p.RestoreObjectReply(msg.request_id, location, error))

    def _restores_done(self, object_id: bytes, location: p.ShmLocation | None, error: str) -> None:
        for msg in self.waiting_for_restore.pop(object_id, ()):
            self._answer_restore(msg, location, None if location is not None else error)

    def on_store_io(self) -> None:
        """Spills or restores finished on the store's threads: apply them, answer readers,
        and serve what waited for the room."""
        for restored in self.store.collect_io():
            self._restores_done(restored.object_id, restored.location, restored.error or "")
        self._serve_waiting()

    def _on_KeepFreed(self, msg: p.KeepFreed) -> None:
        self.store.keep_for_owner(msg.object_id, msg.path, msg.size)
        self._restores_done(msg.object_id, None, "the object was freed")
        self._serve_waiting()

    def _on_ObjectSealed(self, msg: p.ObjectSealed) -> None:
        self.store.seal(msg.location, is_copy=msg.is_copy)
        self._serve_waiting()

    def _on_FreeObjects(self, msg: p.FreeObjects) -> None:
        for object_id in msg.object_ids:
            self.store.free(object_id)
            if self.waiting_for_restore:
                self._restores_done(object_id, None, "the object was freed")
        self._serve_waiting()

    def _on_RestoreObject(self, msg: p.RestoreObject) -> None:
        self._wait_or_serve(msg)

    def _on_ReserveBundle(self, msg: p.ReserveBundle) -> None:
        key = (msg.pg_id, msg.index)
        ok = key in self.bundles or res.fits(msg.resources, self.available)
        if ok and key not in self.bundles:
            self.bundles[key] = dict(msg.resources)
            res.subtract(self.available, msg.resources)
            added = bundle_resources(msg.pg_id, msg.index, msg.resources)
            res.add(self.total, added)
            res.add(self.available, added)
        self.endpoint.send(msg.reply_to, p.BundleReserved(msg.pg_id, msg.index, self.node_id, ok))
        self._dispatch()

    def _on_ReleaseBundles(self, msg: p.ReleaseBundles) -> None:
        for lease in list(self.leases.values()):
            if any(is_group_resource(n, msg.pg_id) for n in lease.request.resources):
                worker = self.pool.workers.get(lease.worker_id)
                if worker is not None:
                    self.pool.kill(worker)
        self.pending = [
            r
            for r in self.pending
            if not any(is_group_resource(n, msg.pg_id) for n in r.msg.resources)
        ]
        for key in [k for k in self.bundles if k[0] == msg.pg_id]:
            bundle = self.bundles.pop(key)
            res.add(self.available, bundle)
        for name in [n for n in self.total if is_group_resource(n, msg.pg_id)]:
            del self.total[name]
            self.available.pop(name, None)
        self._dispatch()

    def _on_BulkPortRequest(self, msg: p.BulkPortRequest) -> None:
        self.endpoint.send(msg.reply_to, p.BulkPortReply(msg.request_id, self.bulk.port))

    def _on_PullObject(self, msg: p.PullObject) -> None:
        try:
            data = self.store.read_chunk(msg.object_id, msg.offset, msg.length)
        except KeyError:
            self.endpoint.send(
                msg.reply_to,
                p.ObjectChunk(msg.request_id, b"", "the object is not in this node's store"),
            )
            return
        except OSError as exc:
            self.endpoint.send(msg.reply_to, p.ObjectChunk(msg.request_id, b"", str(exc)))
            return
        self.endpoint.send(msg.reply_to, p.ObjectChunk(msg.request_id, data))

    def _on_NodeResourcesRequest(self, msg: p.NodeResourcesRequest) -> None:
        self.endpoint.send(
            msg.reply_to,
            p.NodeResourcesReply(
                msg.request_id, self.total, self.available, self.store.available_bytes()
            ),
        )

    def _on_Ping(self, msg: p.Ping) -> None:
        self.endpoint.send(msg.reply_to, p.Pong(msg.request_id))

    def _on_NodeStateQuery(self, msg: p.NodeStateQuery) -> None:
        self.endpoint.send(msg.reply_to, introspect.answer(self, msg))

    def _on_ReadLog(self, msg: p.ReadLog) -> None:
        self.endpoint.send(msg.reply_to, introspect.read_log(self.log_dir, msg))

    def _on_Shutdown(self, msg: p.Shutdown) -> None:
        self.stopped = True

    def close(self) -> None:
        self.bulk.close()
        self.pool.kill_all()
        shm.delete_session_objects(self.session_tag)
        self.store.close()


def _cpu_only(resources: dict[str, float]) -> dict[str, float]:
    return {"CPU": resources["CPU"]} if resources.get("CPU") else {}


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "the process is gone"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"the process was killed by {name}"
    return f"the process exited with code {code}"
