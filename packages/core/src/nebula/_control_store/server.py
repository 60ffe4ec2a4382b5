"""The control store: the cluster's tables of nodes, jobs and actors.

It is off the task hot path: tasks go straight from owner to leased worker. The control
store places actors (so that a named or detached actor outlives the process that made it),
answers name look-ups, tells node managers when a job ends, and publishes actor state to
the processes that hold handles.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from nebula import _config
from nebula import _protocol as p
from nebula._control_store.jobs import job_records
from nebula._control_store.membership import Membership, Node
from nebula._control_store.metrics import MetricsTable
from nebula._control_store.persistence import TableStore
from nebula._control_store.placement_groups import PlacementGroups
from nebula._control_store.task_events import TaskEventTable, select
from nebula._ids import new_lease_id
from nebula._scheduler.bundles import is_group_resource
from nebula._scheduler.placement import place_near
from nebula._scheduler.view import PlacementRequest
from nebula._transport import Endpoint

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    job_id: int
    driver_address: str
    driver_pid: int
    namespace: str
    last_heartbeat: float
    alive: bool = True
    start_time: float = 0.0
    end_time: float | None = None
    entrypoint: str = ""
    submission_id: str = ""
    driver_ip: str = ""


@dataclass
class _Actor:
    spec: p.ActorSpec
    update: p.ActorUpdate
    worker_id: bytes | None = None
    lease_id: bytes | None = None
    subscribers: set[str] = field(default_factory=set)
    restarts: int = 0
    # The node asked for the actor's worker, until the lease is granted.
    lease_node: bytes | None = None
    warned: bool = False

    def can_restart(self) -> bool:
        limit = self.spec.max_restarts
        return limit == -1 or self.restarts < limit


class ControlStore:
    def __init__(
        self, endpoint: Endpoint, session_dir: str, tables: TableStore | None = None
    ) -> None:
        self.endpoint = endpoint
        self.session_dir = session_dir
        self.tables = tables
        self.membership = Membership(
            max_available=_config.VIEW_DELTA_MAX_AVAILABLE,
            sweep=_config.VIEW_DELTA_SWEEP,
            snapshot_reuse_s=_config.VIEW_SNAPSHOT_REUSE_S,
            # A full view lost on the way (rare: its connection dropped) is sent again
            # after this; one merely slow to apply is not sent twice.
            full_view_patience_s=_config.NODE_TIMEOUT_S,
        )
        self.nodes = self.membership.nodes
        self.jobs: dict[int, _Job] = {}
        self.actors: dict[bytes, _Actor] = {}
        self.named: dict[tuple[str, str], bytes] = {}
        self.kv: dict[str, bytes] = {}
        self.actor_leases: dict[bytes, bytes] = {}
        self._unplaced: list[bytes] = []
        self._early_subscribers: dict[bytes, list[tuple[str, float]]] = {}
        self._next_job_id = 1
        self.placement_groups = PlacementGroups(self)
        self.task_events = TaskEventTable(_config.TASK_EVENTS_MAX_PER_JOB)
        self.metrics = MetricsTable()
        self.submissions: dict[str, p.JobSubmissionInfo] = {}
        self.stopped = False
        if tables is not None:
            self._recover(tables)

    # ----------------------------------------------------------- persistence

    def _recover(self, tables: TableStore) -> None:
        """Reload the tables a previous control store left (a head restart)."""
        now = time.monotonic()
        for info in tables.load("node"):
            self.membership.add(info, now)
        for job in tables.load("job"):
            job.last_heartbeat = now
            self.jobs[job.job_id] = job
        for next_id in tables.load("next_job_id"):
            self._next_job_id = next_id
        for actor in tables.load("actor"):
            self.actors[actor.spec.actor_id] = actor
            if actor.spec.name is not None and actor.update.state != "DEAD":
                self.named[(actor.spec.namespace, actor.spec.name)] = actor.spec.actor_id
        for key, value in tables.load("kv"):
            self.kv[key] = value
        for info in tables.load("submission"):
            self.submissions[info.submission_id] = info
        self.placement_groups.recover(tables)
        for actor in self.actors.values():
            if actor.update.state in ("PENDING", "RESTARTING") and actor.worker_id is None:
                self._place_actor(actor.spec.actor_id)
        if self.nodes or self.actors:
            logger.warning(
                "recovered %d node(s), %d job(s), %d actor(s) from %s",
                len(self.nodes),
                len(self.jobs),
                len(self.actors),
                tables.path,
            )

    def _save(self, kind: str, key: bytes | str, value: Any) -> None:
        if self.tables is not None:
            self.tables.put(kind, key, value)

    def save_actor(self, actor: _Actor) -> None:
        self._save("actor", actor.spec.actor_id, actor)

    # --------------------------------------------------------------- dispatch

    def handle(self, msg: p.Message) -> None:
        handler = getattr(self, "_on_" + type(msg).__name__, None)
        if handler is None:
            logger.warning("control store ignored an unexpected %s", type(msg).__name__)
            return
        handler(msg)

    def tick(self) -> None:
        self.placement_groups.tick()
        self._expire_early_subscribers()
        if self._unplaced:
            unplaced, self._unplaced = self._unplaced, []
            for actor_id in unplaced:
                self._place_actor(actor_id)
        # Silence is judged as of when the inbox was last empty: heartbeats still queued
        # in it are not missed ones, and an overloaded control store must not declare the
        # nodes it has not caught up with dead (their notices would only add to its load).
        now = min(time.monotonic(), self.endpoint.caught_up_at)
        for node in self.membership.expired(now, _config.NODE_TIMEOUT_S):
            self._node_died(
                node, f"no heartbeat for {_config.NODE_TIMEOUT_S:g} s (process or host lost)"
            )
        for job in list(self.jobs.values()):
            if job.alive and now - job.last_heartbeat > _config.DRIVER_TIMEOUT_S:
                logger.warning("driver of job %d stopped responding; ending the job", job.job_id)
                self._finish_job(job)

    # ------------------------------------------------------------------ nodes

    def _on_RegisterNode(self, msg: p.RegisterNode) -> None:
        now = time.monotonic()
        node = self.membership.add(msg.node, now)
        self._save("node", msg.node.node_id, msg.node)
        self._send_view(node, now)
        self.announce_view_change()
        unplaced, self._unplaced = self._unplaced, []
        for actor_id in unplaced:
            self._place_actor(actor_id)

    def _on_NodeHeartbeat(self, msg: p.NodeHeartbeat) -> None:
        now = time.monotonic()
        node, total_changed = self.membership.heartbeat(msg.node_id, msg.available, msg.total, now)
        if node is None:
            return
        if total_changed:
            self._save("node", node.info.node_id, node.info)
        node.view.epoch, node.view.version = msg.view_epoch, msg.view_version
        self._send_view(node, now)

    def _send_view(self, node: Node, now: float) -> None:
        """Send ``node`` what its copy of the cluster view lacks, if anything."""
        answer = self.membership.answer(node.view, now)
        if isinstance(answer, bytes):
            self.endpoint.send_encoded(node.info.address, answer)
        elif answer is not None:
            self.endpoint.send(node.info.address, answer)

    def announce_view_change(self) -> None:
        """Nodes join, die or change shape: while the cluster is small, every node is sent
        the change now; a large one learns it from the answer to its next heartbeat, so
        that a change costs one message per node a heartbeat period, not one per change."""
        alive = self.membership.alive
        if len(alive) > _config.VIEW_PUSH_MAX_NODES:
            return
        now = time.monotonic()
        for node in alive.values():
            self._send_view(node, now)

    def _on_UnregisterNode(self, msg: p.UnregisterNode) -> None:
        node = self.nodes.get(msg.node_id)
        if node is not None and node.info.alive:
            self._node_died(node, "its node manager shut down", expected=True)

    def _node_died(self, node: Node, reason: str, *, expected: bool = False) -> None:
        self.membership.mark_dead(node)
        self._save("node", node.info.node_id, node.info)
        log = logger.info if expected else logger.warning
        log("node %s died: %s", node.info.node_id.hex()[:12], reason)
        for actor in list(self.actors.values()):
            if actor.update.state == "DEAD":
                continue
            if actor.update.node_id == node.info.node_id:
                self._actor_lost(actor, f"its node died ({reason})")
            elif actor.worker_id is None and actor.lease_node == node.info.node_id:
                # Its worker was asked of the dead node and never granted: ask elsewhere.
                self._place_actor(actor.spec.actor_id)
        # Every node and driver hears of the death now, whatever the cluster's size: their
        # leases on the node fail over at once. One encoding serves them all.
        notice = p.encode(p.NodeDied(node.info.node_id, reason, node.info.address))
        for other in self.membership.alive.values():
            self.endpoint.send_encoded(other.info.address, notice)
        for job in self.jobs.values():
            if job.alive:
                self.endpoint.send_encoded(job.driver_address, notice)
        self.announce_view_change()
        self.endpoint.disconnect(node.info.address)

    def _alive_nodes(self) -> list[Node]:
        return list(self.membership.alive.values())

    def _on_GetClusterInfo(self, msg: p.GetClusterInfo) -> None:
        self.endpoint.send(
            msg.reply_to,
            p.ClusterInfoReply(
                msg.request_id,
                tuple(n.info for n in self.nodes.values()),
                {nid: n.available for nid, n in self.nodes.items()},
                self.session_dir,
            ),
        )

    # ------------------------------------------------------------------- jobs

    def _on_RegisterJob(self, msg: p.RegisterJob) -> None:
        job_id = self._next_job_id
        self._next_job_id += 1
        self.jobs[job_id] = _Job(
            job_id,
            msg.reply_to,
            msg.driver_pid,
            msg.namespace,
            time.monotonic(),
            start_time=time.time(),
            entrypoint=msg.entrypoint,
            submission_id=msg.submission_id,
            driver_ip=msg.ip,
        )
        self._save("next_job_id", "", self._next_job_id)
        self._save("job", str(job_id), self.jobs[job_id])
        nodes = tuple(n.info for n in self._alive_nodes())
        self.endpoint.send(
            msg.reply_to, p.JobRegistered(msg.request_id, job_id, nodes, self.session_dir)
        )

    def _on_JobHeartbeat(self, msg: p.JobHeartbeat) -> None:
        job = self.jobs.get(msg.job_id)
        if job is not None:
            job.last_heartbeat = time.monotonic()

    def _on_FinishJob(self, msg: p.FinishJob) -> None:
        job = self.jobs.get(msg.job_id)
        if job is not None and job.alive:
            self._finish_job(job)

    def _finish_job(self, job: _Job) -> None:
        job.alive = False
        job.end_time = time.time()
        self.task_events.job_finished(job.job_id, job.end_time)
        self._save("job", str(job.job_id), job)
        self.placement_groups.remove_job_groups(job.job_id)
        keep: list[bytes] = []
        for actor in list(self.actors.values()):
            if actor.spec.job_id != job.job_id or actor.update.state == "DEAD":
                continue
            if actor.spec.detached:
                if actor.worker_id is not None:
                    keep.append(actor.worker_id)
                continue
            self._mark_dead(actor, "the job that created the actor finished")
        for node in self._alive_nodes():
            self.endpoint.send(node.info.address, p.JobFinishedNotice(job.job_id, tuple(keep)))
        self.endpoint.disconnect(job.driver_address)

    # ----------------------------------------------------------------- actors

    def _on_CreateActor(self, msg: p.CreateActor) -> None:
        spec = msg.spec
        if spec.name is not None:
            key = (spec.namespace, spec.name)
            existing = self.named.get(key)
            if existing is not None and self.actors[existing].update.state != "DEAD":
                self.endpoint.send(
                    msg.reply_to,
                    p.CreateActorReply(
                        msg.request_id,
                        f"An actor named {spec.name!r} already exists in namespace "
                        f"{spec.namespace!r}; pick another name or use nebula.get_actor().",
                    ),
                )
                return
            self.named[key] = spec.actor_id
        self.actors[spec.actor_id] = _Actor(spec, p.ActorUpdate(spec.actor_id, "PENDING"))
        for address, _since in self._early_subscribers.pop(spec.actor_id, []):
            self.actors[spec.actor_id].subscribers.add(address)
            self.endpoint.send(address, self.actors[spec.actor_id].update)
        self.save_actor(self.actors[spec.actor_id])
        self.endpoint.send(msg.reply_to, p.CreateActorReply(msg.request_id, None))
        self._place_actor(spec.actor_id)

    def _place_actor(self, actor_id: bytes) -> None:
        actor = self.actors.get(actor_id)
        if actor is None or actor.update.state == "DEAD":
            return
        node = self._choose_node(actor)
        if node is None:
            self._unplaced.append(actor_id)
            return
        if actor.lease_id is not None:
            self.actor_leases.pop(actor.lease_id, None)
        lease_id = new_lease_id()
        actor.lease_id = lease_id
        self.actor_leases[lease_id] = actor_id
        self._request_actor_lease(actor, lease_id, node.info.node_id, node.info.address, 0)

    def _request_actor_lease(
        self, actor: _Actor, lease_id: bytes, node_id: bytes, address: str, spill_count: int
    ) -> None:
        actor.lease_node = node_id
        self.endpoint.send(
            address,
            p.RequestLease(
                lease_id,
                actor.spec.job_id,
                actor.spec.resources,
                self.endpoint.address,
                for_actor=True,
                actor_id=actor.spec.actor_id,
                strategy=actor.spec.strategy,
                spill_count=spill_count,
            ),
        )

    def _on_LeaseSpillback(self, msg: p.LeaseSpillback) -> None:
        actor_id = self.actor_leases.get(msg.lease_id)
        actor = self.actors.get(actor_id) if actor_id else None
        if actor is None or actor.update.state == "DEAD":
            return
        target = self.nodes.get(msg.node_id)
        if target is None or not target.info.alive:
            self._place_actor(actor.spec.actor_id)  # sent to a node we know is gone
            return
        self._request_actor_lease(
            actor, msg.lease_id, msg.node_id, msg.node_manager, msg.spill_count
        )

    def _choose_node(self, actor: _Actor) -> Node | None:
        spec = actor.spec
        owner = self.membership.node_near(spec.owner_address)
        if owner is None:
            return None
        request = PlacementRequest(
            spec.resources, spec.strategy or "DEFAULT", owner.info.node_id.hex()
        )
        alive = self.membership.alive
        placement = place_near(
            request,
            owner.node_view(),
            lambda: [n.node_view() for n in alive.values() if n is not owner],
        )
        if placement.node_id is None:
            # An actor waiting for its group to be reserved is not stuck: no warning yet.
            if not actor.warned and not self.placement_groups.is_pending(spec.strategy):
                actor.warned = True
                warning = f"Warning: actor {spec.class_name}: {placement.reason}"
                self.endpoint.send(spec.owner_address, p.LogLines(0, True, (warning,)))
            return None
        return self.nodes[bytes.fromhex(placement.node_id)]

    def _on_LeaseGranted(self, msg: p.LeaseGranted) -> None:
        actor_id = self.actor_leases.pop(msg.lease_id, None)
        actor = self.actors.get(actor_id) if actor_id else None
        if actor is None or actor.update.state == "DEAD":
            node = self.nodes.get(msg.node_id)
            if node is not None:
                self.endpoint.send(node.info.address, p.ReturnLease(msg.lease_id, True))
            return
        actor.worker_id = msg.worker_id
        actor.lease_node = None
        state = "RESTARTING" if actor.restarts else "PENDING"
        actor.update = p.ActorUpdate(
            actor.spec.actor_id, state, None, msg.pid, msg.node_id, None, actor.restarts
        )
        self.save_actor(actor)
        self.endpoint.send(
            msg.worker_address,
            p.CreateActorTask(
                actor.spec.actor_id,
                actor.spec.creation,
                actor.spec.max_concurrency,
                actor.spec.is_async,
                self.endpoint.address,
                msg.gpu_ids,
                actor.spec.concurrency_groups,
            ),
        )

    def _on_LeaseInfeasible(self, msg: p.LeaseInfeasible) -> None:
        actor_id = self.actor_leases.get(msg.lease_id)
        actor = self.actors.get(actor_id) if actor_id else None
        if actor is not None:
            self.endpoint.send(
                actor.spec.owner_address,
                p.LogLines(0, True, (f"Warning: actor {actor.spec.class_name}: {msg.message}",)),
            )

    def _on_ActorCreated(self, msg: p.ActorCreated) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None or actor.update.state == "DEAD":
            return
        if msg.error is not None:
            self._mark_dead(actor, _creation_error_text(msg.error), kill=True)
            return
        actor.update = p.ActorUpdate(
            msg.actor_id,
            "ALIVE",
            msg.worker_address,
            msg.pid,
            actor.update.node_id,
            None,
            actor.restarts,
        )
        self._publish(actor)

    def _on_SubscribeActor(self, msg: p.SubscribeActor) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None:
            # A handle can reach another process before its creator's CreateActor reaches
            # us (two senders, no common order): wait a while before calling it unknown.
            self._early_subscribers.setdefault(msg.actor_id, []).append(
                (msg.reply_to, time.monotonic())
            )
            return
        actor.subscribers.add(msg.reply_to)
        self.save_actor(actor)
        self.endpoint.send(msg.reply_to, actor.update)

    def _expire_early_subscribers(self) -> None:
        now = time.monotonic()
        for actor_id, waiting in list(self._early_subscribers.items()):
            if now - min(since for _, since in waiting) < _config.UNKNOWN_ACTOR_WAIT_S:
                continue
            del self._early_subscribers[actor_id]
            for address, _since in waiting:
                self.endpoint.send(
                    address, p.ActorUpdate(actor_id, "DEAD", death_cause="the actor is unknown")
                )

    def _on_GetNamedActor(self, msg: p.GetNamedActor) -> None:
        actor_id = self.named.get((msg.namespace, msg.name))
        actor = self.actors.get(actor_id) if actor_id else None
        if actor is None or actor.update.state == "DEAD":
            self.endpoint.send(msg.reply_to, p.NamedActorReply(msg.request_id, None, None))
            return
        self.endpoint.send(
            msg.reply_to, p.NamedActorReply(msg.request_id, actor.spec, actor.update)
        )

    def _on_ListActors(self, msg: p.ListActors) -> None:
        records = tuple(
            {
                "actor_id": actor.spec.actor_id.hex(),
                "class_name": actor.spec.class_name,
                "state": actor.update.state,
                "name": actor.spec.name or "",
                "namespace": actor.spec.namespace,
                "job_id": f"{actor.spec.job_id:08x}",
                "pid": actor.update.pid or None,
                "node_id": actor.update.node_id.hex() if actor.update.node_id else None,
                "death_cause": actor.update.death_cause,
                "restarts": actor.update.restarts,
                "is_detached": actor.spec.detached,
            }
            for actor in self.actors.values()
        )
        self.endpoint.send(msg.reply_to, p.ActorListReply(msg.request_id, records))

    def _on_KillActor(self, msg: p.KillActor) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None or actor.update.state == "DEAD":
            return
        if msg.no_restart or not actor.can_restart() or actor.worker_id is None:
            self._mark_dead(actor, msg.reason, kill=True)
            return
        # Killed but allowed to restart: the worker's death brings it back (_actor_lost).
        node = self.nodes.get(actor.update.node_id or b"")
        if node is not None:
            self.endpoint.send(node.info.address, p.KillWorker(actor.worker_id, msg.reason))

    def _on_ActorOutOfScope(self, msg: p.ActorOutOfScope) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None or actor.update.state == "DEAD":
            return
        if actor.spec.detached or actor.spec.name is not None:
            return
        self._mark_dead(actor, "all handles to the actor went out of scope", kill=True)

    def _on_WorkerDied(self, msg: p.WorkerDied) -> None:
        if msg.actor_id is None:
            return
        actor = self.actors.get(msg.actor_id)
        if actor is not None and actor.update.state != "DEAD":
            cause = f"the actor's worker process (pid {msg.pid}) died: {msg.reason}"
            self._actor_lost(actor, cause)

    def _actor_lost(self, actor: _Actor, cause: str) -> None:
        """The actor's process is gone: restart it while its budget allows, else it is dead."""
        if not actor.can_restart() or not self.jobs_alive(actor):
            self._mark_dead(actor, cause, kill=False)
            return
        actor.restarts += 1
        actor.worker_id = None
        actor.update = p.ActorUpdate(
            actor.spec.actor_id, "RESTARTING", None, 0, None, cause, actor.restarts
        )
        logger.info("restarting actor %s (%s)", actor.spec.class_name, cause)
        self._publish(actor)
        self._place_actor(actor.spec.actor_id)

    def jobs_alive(self, actor: _Actor) -> bool:
        job = self.jobs.get(actor.spec.job_id)
        return actor.spec.detached or job is None or job.alive

    def _mark_dead(self, actor: _Actor, cause: str, *, kill: bool = True) -> None:
        node_id = actor.update.node_id
        actor.update = p.ActorUpdate(
            actor.spec.actor_id, "DEAD", None, actor.update.pid, node_id, cause
        )
        self._publish(actor)
        if actor.spec.name is not None:
            self.named.pop((actor.spec.namespace, actor.spec.name), None)
        if kill and actor.worker_id is not None and node_id in self.nodes:
            self.endpoint.send(
                self.nodes[node_id].info.address, p.KillWorker(actor.worker_id, cause)
            )
        elif actor.lease_id is not None and actor.lease_id in self.actor_leases:
            for node in self._alive_nodes():
                self.endpoint.send(node.info.address, p.CancelLeaseRequest(actor.lease_id))

    def _publish(self, actor: _Actor) -> None:
        self.save_actor(actor)
        for address in actor.subscribers:
            self.endpoint.send(address, actor.update)
        if actor.update.state == "DEAD":
            actor.subscribers.clear()

    # --------------------------------------------------------------- placement groups

    def _on_CreatePlacementGroup(self, msg: p.CreatePlacementGroup) -> None:
        self.placement_groups.create(msg)

    def _on_RemovePlacementGroup(self, msg: p.RemovePlacementGroup) -> None:
        for actor in list(self.actors.values()):
            in_group = any(is_group_resource(n, msg.pg_id) for n in actor.spec.resources)
            if in_group and actor.update.state != "DEAD":
                self._mark_dead(actor, "its placement group was removed", kill=True)
        self.placement_groups.remove(msg.pg_id)
        if msg.reply_to is not None:
            query = p.GetPlacementGroup(msg.request_id, msg.reply_to, msg.pg_id)
            self.endpoint.send(msg.reply_to, self.placement_groups.describe(query))

    def _on_BundleReserved(self, msg: p.BundleReserved) -> None:
        self.placement_groups.on_reserved(msg)

    def _on_GetPlacementGroup(self, msg: p.GetPlacementGroup) -> None:
        self.endpoint.send(msg.reply_to, self.placement_groups.describe(msg))

    # ----------------------------------------------------------- observability

    def _on_TaskEvents(self, msg: p.TaskEvents) -> None:
        self.task_events.apply(msg)

    def _on_MetricsReport(self, msg: p.MetricsReport) -> None:
        self.metrics.report(msg)

    def _on_PutJobSubmission(self, msg: p.PutJobSubmission) -> None:
        self.submissions[msg.info.submission_id] = msg.info
        self._save("submission", msg.info.submission_id, msg.info)

    def _on_StateQuery(self, msg: p.StateQuery) -> None:
        try:
            records, total = self._query(msg)
        except ValueError as exc:
            self.endpoint.send(msg.reply_to, p.StateReply(msg.request_id, (), error=str(exc)))
            return
        dropped = self.task_events.dropped_by_job() if msg.kind.startswith("task") else {}
        self.endpoint.send(
            msg.reply_to, p.StateReply(msg.request_id, tuple(records), total, dropped)
        )

    def _query(self, msg: p.StateQuery) -> tuple[list[dict[str, Any]], int]:
        if msg.kind == "tasks":
            return self.task_events.query(msg.filters, msg.limit, detail=msg.detail)
        if msg.kind == "task_summary":
            summary = self.task_events.summary(msg.filters)
            return summary, len(summary)
        if msg.kind == "metrics":
            metrics = self.metrics.aggregate()
            return metrics, len(metrics)
        if msg.kind == "jobs":
            matched = list(
                select(job_records(self.jobs.values(), self.submissions.values()), msg.filters)
            )
            return matched[: msg.limit], len(matched)
        if msg.kind == "drivers":
            drivers = [
                {
                    "job_id": f"{job.job_id:08x}",
                    "address": job.driver_address,
                    "pid": job.driver_pid,
                    "ip": job.driver_ip,
                    "alive": job.alive,
                    "start_time_ms": int(job.start_time * 1000),
                }
                for job in self.jobs.values()
            ]
            return drivers, len(drivers)
        raise ValueError(f"unknown state kind {msg.kind!r}")

    # --------------------------------------------------------------------- kv

    def _on_KvPut(self, msg: p.KvPut) -> None:
        ok = msg.overwrite or msg.key not in self.kv
        if ok:
            self.kv[msg.key] = msg.value
            self._save("kv", msg.key, (msg.key, msg.value))
        self.endpoint.send(msg.reply_to, p.KvReply(msg.request_id, None, ok))

    def _on_KvGet(self, msg: p.KvGet) -> None:
        self.endpoint.send(msg.reply_to, p.KvReply(msg.request_id, self.kv.get(msg.key)))

    def _on_Ping(self, msg: p.Ping) -> None:
        self.endpoint.send(msg.reply_to, p.Pong(msg.request_id))

    def _on_Shutdown(self, msg: p.Shutdown) -> None:
        for node in self._alive_nodes():
            self.endpoint.send(node.info.address, p.Shutdown(msg.reason))
        self.stopped = True

    def close(self) -> None:
        if self.tables is not None:
            self.tables.close()


def _creation_error_text(error: bytes) -> str:
    from nebula._serialization import deserialize

    try:
        err = deserialize(error)
    except Exception as exc:
        return f"the actor's __init__ raised an exception that could not be read: {exc!r}"
    return f"the actor's __init__ raised an exception:\n{err}"
