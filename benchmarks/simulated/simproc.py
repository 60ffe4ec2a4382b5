"""One process of the simulated cluster: many simulated nodes, or a few simulated drivers.

Started by ``sim_nodes.py`` and driven through its stdin (one command a line, one JSON line
answered on stdout). A simulated node speaks the real protocol to the real control store:
it registers, heartbeats its resources (which change as simulated work comes and goes),
applies the cluster views it is sent, grants the leases it is asked for and finishes the
work pushed to them at once. A simulated driver registers a job, heartbeats it and creates
and kills actors, each of which is a placement decision of the control store.

Every node and driver has its own inbox and its own connection to the control store, as on
a real cluster where each is its own machine: each node binds its own loopback address
(127.20.x.y), so the control store reaches it over TCP as it would reach another host.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import zmq
from simsock import Mailbox, prepare_context

from nebula import _config
from nebula import _protocol as p
from nebula._auth import TOKEN_ENV
from nebula._scheduler import resources as res

# Below this, a loop that found work polls again at once; above, it sleeps the rest: polling
# thousands of sockets costs time per call, so the loop lets messages gather.
POLL_INTERVAL_S = 0.01
MAX_SLICE_S = 0.2
LARGE_FRAME_BYTES = 64 * 1024
NODE_CPUS = 16.0
HEARTBEAT_FIELDS = {f.name for f in dataclasses.fields(p.NodeHeartbeat)}


def node_ip(index: int) -> str:
    return f"127.20.{index // 250}.{index % 250 + 1}"


def node_id_of(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


def index_of(node_id: bytes) -> int:
    return int.from_bytes(node_id[-4:], "big")


class Counters:
    """What a process received, by message type."""

    def __init__(self) -> None:
        self.msgs_in = 0
        self.bytes_in = 0
        self.by_type: collections.Counter[str] = collections.Counter()
        self.bytes_by_type: collections.Counter[str] = collections.Counter()

    def count(self, message: p.Message, size: int) -> None:
        name = type(message).__name__
        self.msgs_in += 1
        self.bytes_in += size
        self.by_type[name] += 1
        self.bytes_by_type[name] += size


# ------------------------------------------------------------------------------ nodes


class SimNode:
    """One simulated node: what its node manager would say and do, and nothing else."""

    def __init__(self, index: int, prefix: bytes, total_nodes: int, mailbox: Mailbox) -> None:
        self.index = index
        self.node_id = node_id_of(prefix, index)
        self.ip = node_ip(index)
        self.mailbox = mailbox
        self.total = {
            "CPU": NODE_CPUS,
            "memory": float(64 << 30),
            f"node:{self.ip}": 1.0,
        }
        self.busy = 0.0  # simulated work between heartbeats
        self.leased: dict[bytes, dict[str, float]] = {}  # lease or worker id -> resources
        self.pending: list[p.RequestLease] = []
        # What this node knows of each node: 0 unknown, 1 alive, 2 dead.
        self.known = bytearray(total_nodes)
        self.known_alive = 0
        self.learned_death: dict[int, float] = {}
        self.view_epoch = 0
        self.view_version = 0
        self.silent = False
        self.registered = False

    def info(self) -> p.NodeInfoMsg:
        return p.NodeInfoMsg(
            self.node_id,
            self.mailbox.address,
            self.ip,
            dict(self.total),
            object_store_memory=8 << 30,
        )

    def available(self) -> dict[str, float]:
        available = dict(self.total)
        available["CPU"] -= self.busy
        for shape in self.leased.values():
            res.subtract(available, shape)
        return available

    def heartbeat(self) -> p.NodeHeartbeat:
        extra: dict[str, Any] = {}
        if "view_version" in HEARTBEAT_FIELDS:
            extra = {"view_epoch": self.view_epoch, "view_version": self.view_version}
        return p.NodeHeartbeat(self.node_id, self.available(), dict(self.total), **extra)

    # What this node learns of others.
    def learn(self, index: int, alive: bool, now: float) -> None:
        state = 1 if alive else 2
        old = self.known[index]
        if old == state:
            return
        self.known[index] = state
        if old == 1:
            self.known_alive -= 1
        if alive:
            self.known_alive += 1
        elif index not in self.learned_death:
            self.learned_death[index] = now


class NodeProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.context, keys = prepare_context(os.environ[TOKEN_ENV])
        prefix = bytes.fromhex(args.prefix)
        self.nodes = [
            SimNode(i, prefix, args.total, Mailbox(self.context, keys, node_ip(i)))
            for i in range(args.first, args.first + args.count)
        ]
        self.by_socket = {node.mailbox.inbox: node for node in self.nodes}
        self.counters = Counters()
        self.rng = random.Random(args.seed)
        self.heartbeat_s = _config.NODE_HEARTBEAT_S
        # Nodes in the order their heartbeats fall due: (due time, node).
        self.schedule: collections.deque[tuple[float, SimNode]] = collections.deque()
        self.to_register: collections.deque[SimNode] = collections.deque()
        self.register_every = 0.0
        self.next_register = 0.0
        self.running = True
        self._lease_worker: dict[bytes, bytes] = {}
        self._large: dict[bytes, p.Message] = {}
        self._entries: dict[bytes, tuple[int, bool]] = {}
        self._templates: dict[int, tuple[Any, bytearray, int]] = {}
        self.handlers: dict[type, Callable[[SimNode, Any, float], None]] = {
            p.NodeDied: self._on_node_died,
            p.RequestLease: self._on_request_lease,
            p.CreateActorTask: self._on_create_actor_task,
            p.KillWorker: self._on_kill_worker,
            p.ReturnLease: self._on_return_lease,
            p.PushTask: self._on_push_task,
            p.Shutdown: lambda node, msg, now: None,
            p.JobFinishedNotice: lambda node, msg, now: None,
        }
        view = getattr(p, "ClusterView", None)
        if view is not None:
            self.handlers[view] = self._on_cluster_view
        delta = getattr(p, "ClusterViewDelta", None)
        if delta is not None:
            self.handlers[delta] = self._on_cluster_view_delta

    # ------------------------------------------------------------------- loop

    def run(self) -> None:
        poller = zmq.Poller()
        for node in self.nodes:
            poller.register(node.mailbox.inbox, zmq.POLLIN)
        stdin = sys.stdin.fileno()
        poller.register(stdin, zmq.POLLIN)
        reply({"ready": True, "pid": os.getpid()})
        last_poll = 0.0
        while self.running:
            now = time.monotonic()
            wait = min(0.05, max(0.0, self._next_due() - now))
            since = now - last_poll
            if since < POLL_INTERVAL_S:
                time.sleep(POLL_INTERVAL_S - since)
            last_poll = time.monotonic()
            events = poller.poll(wait * 1000)
            # Overloaded, the loop still answers commands and serves every node in turn:
            # it stops after a slice of time and polls again (ZeroMQ polls are level
            # triggered: what is left is found again).
            self.rng.shuffle(events)
            for sock, _ in events:
                if sock == stdin:
                    self._command(sys.stdin.readline())
            for sock, _ in events:
                if sock != stdin:
                    self._drain(self.by_socket[sock])
                    if time.monotonic() - last_poll > MAX_SLICE_S:
                        break
            self._register_due()
            self._heartbeat_due()
        for node in self.nodes:
            node.mailbox.close()

    def _next_due(self) -> float:
        due = self.schedule[0][0] if self.schedule else time.monotonic() + 0.05
        if self.to_register:
            due = min(due, self.next_register)
        return due

    def _drain(self, node: SimNode) -> None:
        inbox = node.mailbox.inbox
        for _ in range(20):
            try:
                frame = inbox.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            message = self._decode(frame.buffer)
            self.counters.count(message, len(frame.buffer))
            if node.silent:
                continue
            handler = self.handlers.get(type(message))
            if handler is not None:
                handler(node, message, time.monotonic())

    def _decode(self, buffer: memoryview) -> p.Message:
        """Decode a message; a large one identical to one decoded just before (the full
        view the control store encodes once for every node joining about then) is decoded
        once for the whole process: each real node would decode its copy on its own
        machine, where this process has hundreds of nodes on one core."""
        if len(buffer) < LARGE_FRAME_BYTES:
            return p.decode(buffer)
        data = bytes(buffer)
        cached = self._large.get(data)
        if cached is None:
            cached = p.decode(data)
            if len(self._large) >= 4:
                self._large.pop(next(iter(self._large)))
            self._large[data] = cached
        return cached

    def _full_view_template(self, msg: Any) -> tuple[bytearray, int]:
        cached = self._templates.get(id(msg))
        if cached is not None and cached[0] is msg:
            return cached[1], cached[2]
        template = bytearray(self.args.total)
        for entry in msg.nodes:
            index, alive = self._entry(entry)
            template[index] = 1 if alive else 2
        alive_count = template.count(1)
        if len(self._templates) > 8:
            self._templates.clear()
        self._templates[id(msg)] = (msg, template, alive_count)
        return template, alive_count

    def _entry(self, entry: bytes) -> tuple[int, bool]:
        """Which node a view entry is about and whether it is alive. The control store
        encodes an entry once and sends it to every node: decoded once per process here,
        as each real node decodes it once on its own machine."""
        known = self._entries.get(entry)
        if known is None:
            info = p.decode(entry)
            assert isinstance(info, p.NodeInfoMsg)
            if len(self._entries) > 200_000:
                self._entries.clear()
            known = self._entries[entry] = (index_of(info.node_id), info.alive)
        return known

    def _register_due(self) -> None:
        now = time.monotonic()
        while self.to_register and self.next_register <= now:
            node = self.to_register.popleft()
            node.mailbox.send(self.args.control_store, p.RegisterNode(node.info()))
            node.registered = True
            node.learn(node.index, True, now)
            self.schedule.append((now + self.heartbeat_s, node))
            self.next_register += self.register_every

    def _heartbeat_due(self) -> None:
        now = time.monotonic()
        churn = self.args.churn
        while self.schedule and self.schedule[0][0] <= now:
            due, node = self.schedule.popleft()
            if node.silent:
                continue
            if self.rng.random() < churn:
                node.busy = float(self.rng.randrange(0, int(NODE_CPUS) // 2))
            node.mailbox.send(self.args.control_store, node.heartbeat())
            # Keep each node's own phase; a loop that fell behind does not send bursts.
            self.schedule.append((max(due + self.heartbeat_s, now), node))

    # --------------------------------------------------------------- messages

    def _on_cluster_view(self, node: SimNode, msg: Any, now: float) -> None:
        alive = sum(1 for info in msg.nodes if info.alive)
        dead = len(msg.nodes) - alive
        if alive == node.known_alive and dead == len(node.learned_death):
            return
        for info in msg.nodes:
            node.learn(index_of(info.node_id), info.alive, now)

    def _on_cluster_view_delta(self, node: SimNode, msg: Any, now: float) -> None:
        if msg.full:
            # A full view lists the nodes alive: the same for every node sent it, so the
            # process builds what it says once (a real node decodes its own copy).
            template, alive = self._full_view_template(msg)
            node.known = bytearray(template)
            node.known_alive = alive
            node.view_epoch = msg.epoch
            node.view_version = msg.version
            return
        if msg.epoch != node.view_epoch or msg.base_version > node.view_version:
            node.view_version = 0  # a delta was missed: ask for everything
            return
        elif msg.version < node.view_version:
            return
        for entry in msg.nodes:
            index, alive = self._entry(entry)
            node.learn(index, alive, now)
        node.view_epoch = msg.epoch
        node.view_version = msg.version

    def _on_node_died(self, node: SimNode, msg: p.NodeDied, now: float) -> None:
        node.learn(index_of(msg.node_id), False, now)

    def _on_request_lease(self, node: SimNode, msg: p.RequestLease, now: float) -> None:
        if res.fits(msg.resources, node.available()):
            self._grant(node, msg)
        else:
            node.pending.append(msg)

    def _grant(self, node: SimNode, msg: p.RequestLease) -> None:
        worker_id = os.urandom(16)
        node.leased[worker_id] = dict(msg.resources)
        self._lease_worker[msg.lease_id] = worker_id
        node.mailbox.send(
            msg.reply_to,
            p.LeaseGranted(
                msg.lease_id,
                worker_id,
                node.mailbox.address,
                node.node_id,
                os.getpid(),
                node.mailbox.address,
            ),
        )

    def _release(self, node: SimNode, worker_id: bytes) -> None:
        if node.leased.pop(worker_id, None) is None:
            return
        waiting, node.pending = node.pending, []
        for request in waiting:
            self._on_request_lease(node, request, 0.0)

    def _on_create_actor_task(self, node: SimNode, msg: p.CreateActorTask, now: float) -> None:
        node.mailbox.send(msg.reply_to, p.ActorCreated(msg.actor_id, node.mailbox.address, 1))

    def _on_kill_worker(self, node: SimNode, msg: p.KillWorker, now: float) -> None:
        self._release(node, msg.worker_id)

    def _on_return_lease(self, node: SimNode, msg: p.ReturnLease, now: float) -> None:
        worker_id = self._lease_worker.pop(msg.lease_id, None)
        if worker_id is not None:
            self._release(node, worker_id)

    def _on_push_task(self, node: SimNode, msg: p.PushTask, now: float) -> None:
        spec = msg.spec
        node.mailbox.send(spec.owner_address, p.TaskDone(spec.task_id, (), node.mailbox.address))

    # --------------------------------------------------------------- commands

    def _command(self, line: str) -> None:
        words = line.split()
        if not words or words[0] == "quit":
            self.running = False
            reply({"ok": True})
            return
        name = words[0]
        if name == "register":
            rate = float(words[1])
            self.register_every = 1.0 / rate
            self.next_register = time.monotonic()
            self.to_register.extend(n for n in self.nodes if not n.registered)
            reply({"ok": True})
        elif name == "stats":
            reply(self._stats())
        elif name == "silence":
            index = int(words[1])
            for node in self.nodes:
                if node.index == index:
                    node.silent = True
            reply({"t0": time.monotonic()})
        elif name == "deaths":
            index = int(words[1])
            times = [
                node.learned_death[index]
                for node in self.nodes
                if not node.silent and index in node.learned_death
            ]
            alive = sum(1 for node in self.nodes if not node.silent)
            reply({"times": times, "nodes": alive})
        else:
            reply({"error": f"unknown command {name!r}"})

    def _stats(self) -> dict[str, Any]:
        c = self.counters
        live = [n for n in self.nodes if not n.silent]
        return {
            "msgs_in": c.msgs_in,
            "bytes_in": c.bytes_in,
            "msgs_out": sum(n.mailbox.msgs_out for n in self.nodes),
            "bytes_out": sum(n.mailbox.bytes_out for n in self.nodes),
            "by_type": dict(c.by_type),
            "bytes_by_type": dict(c.bytes_by_type),
            "registered": sum(1 for n in self.nodes if n.registered),
            "converged": sum(1 for n in live if n.known_alive >= self.args.total),
            "min_known": min((n.known_alive for n in live), default=0),
            "cpu_s": sum(os.times()[:2]),
        }


# ---------------------------------------------------------------------------- drivers


@dataclasses.dataclass
class SimDriver:
    mailbox: Mailbox
    job_id: int = 0
    learned_death: dict[int, float] = dataclasses.field(default_factory=dict)
    # Actors asked for and not yet alive: actor id -> when it was asked for.
    creating: dict[bytes, float] = dataclasses.field(default_factory=dict)
    next_request: int = 1


class DriverProcess:
    """A few drivers in one loop; a command that takes time answers when it is done, while
    the loop keeps reading (a node's death is noted when it arrives, not at the next
    command)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.context, keys = prepare_context(os.environ[TOKEN_ENV])
        self.drivers = [
            SimDriver(Mailbox(self.context, keys, "127.0.0.1")) for _ in range(args.count)
        ]
        self.by_socket = {d.mailbox.inbox: d for d in self.drivers}
        self.counters = Counters()
        self.creating_actors = False
        self.latencies: list[float] = []
        self.alive = 0
        self.next_heartbeat = 0.0
        self.running = True
        # The command being run: (is it finished?, its answer), checked after each poll.
        self.waiting: tuple[Callable[[], bool], Callable[[], dict[str, Any]]] | None = None

    def run(self) -> None:
        poller = zmq.Poller()
        for driver in self.drivers:
            poller.register(driver.mailbox.inbox, zmq.POLLIN)
        stdin = sys.stdin.fileno()
        poller.register(stdin, zmq.POLLIN)
        reply({"ready": True, "pid": os.getpid()})
        while self.running:
            now = time.monotonic()
            if now >= self.next_heartbeat:
                self.next_heartbeat = now + _config.DRIVER_HEARTBEAT_S
                for driver in self.drivers:
                    if driver.job_id:
                        driver.mailbox.send(self.args.control_store, p.JobHeartbeat(driver.job_id))
            for sock, _ in poller.poll(20):
                if sock == stdin:
                    self._command(sys.stdin.readline())
                    continue
                driver = self.by_socket[sock]
                while True:
                    try:
                        frame = sock.recv(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    message = p.decode(frame.buffer)
                    self.counters.count(message, len(frame.buffer))
                    self._handle(driver, message)
            if self.waiting is not None and self.waiting[0]():
                answer = self.waiting[1]
                self.waiting = None
                reply(answer())
        for driver in self.drivers:
            driver.mailbox.close()

    def _command(self, line: str) -> None:
        words = line.split()
        if not words or words[0] == "quit":
            self.running = False
            reply({"ok": True})
        elif words[0] == "register":
            for driver in self.drivers:
                driver.mailbox.send(
                    self.args.control_store,
                    p.RegisterJob(1, driver.mailbox.address, os.getpid(), "sim", "127.0.0.1"),
                )
            self.waiting = (
                lambda: all(d.job_id for d in self.drivers),
                lambda: {"jobs": [d.job_id for d in self.drivers]},
            )
        elif words[0] == "actors":
            self._start_actors(float(words[1]), int(words[2]))
        elif words[0] == "deaths":
            index = int(words[1])
            times = [d.learned_death[index] for d in self.drivers if index in d.learned_death]
            reply({"times": times, "nodes": len(self.drivers)})
        elif words[0] == "stats":
            c = self.counters
            reply({"msgs_in": c.msgs_in, "bytes_in": c.bytes_in, "by_type": dict(c.by_type)})
        else:
            reply({"error": f"unknown command {words[0]!r}"})

    def _handle(self, driver: SimDriver, msg: p.Message) -> None:
        now = time.monotonic()
        if isinstance(msg, p.JobRegistered):
            driver.job_id = msg.job_id
        elif isinstance(msg, p.NodeDied):
            driver.learned_death.setdefault(index_of(msg.node_id), now)
        elif isinstance(msg, p.ActorUpdate) and msg.state == "ALIVE":
            asked = driver.creating.pop(msg.actor_id, None)
            if asked is None:
                return
            self.alive += 1
            self.latencies.append(now - asked)
            driver.mailbox.send(self.args.control_store, p.KillActor(msg.actor_id, True, "done"))
            if self.creating_actors:
                self._create_actor(driver)

    def _create_actor(self, driver: SimDriver) -> None:
        actor_id = os.urandom(16)
        address = driver.mailbox.address
        creation = p.TaskSpec(
            os.urandom(16), driver.job_id, "Sim.__init__", address, b"f" * 16, None, b"", (), 1
        )
        spec = p.ActorSpec(
            actor_id,
            driver.job_id,
            "Sim",
            address,
            creation,
            {"CPU": 1.0},
            None,
            "sim",
            False,
            1,
            False,
        )
        driver.creating[actor_id] = time.monotonic()
        cs = self.args.control_store
        driver.mailbox.send(cs, p.CreateActor(driver.next_request, address, spec))
        driver.next_request += 1
        driver.mailbox.send(cs, p.SubscribeActor(actor_id, address))

    def _start_actors(self, seconds: float, inflight: int) -> None:
        """Keep ``inflight`` actors being created per driver for ``seconds``; each one is
        killed once alive, so the cluster's resources never run out."""
        self.alive = 0
        self.latencies = []
        self.creating_actors = True
        start = time.monotonic()
        for driver in self.drivers:
            for _ in range(inflight):
                self._create_actor(driver)
        result: dict[str, Any] = {}

        def finished() -> bool:
            now = time.monotonic()
            if self.creating_actors and now - start >= seconds:
                self.creating_actors = False
                result["placed"] = self.alive
                result["seconds"] = now - start
            drained = not any(d.creating for d in self.drivers)
            return not self.creating_actors and (drained or now - start >= seconds + 10)

        def answer() -> dict[str, Any]:
            lat = sorted(self.latencies) or [float("nan")]
            return {
                **result,
                "per_s": result["placed"] / result["seconds"],
                "p50_ms": 1000 * lat[len(lat) // 2],
                "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                "unfinished": sum(len(d.creating) for d in self.drivers),
            }

        self.waiting = (finished, answer)


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=("nodes", "drivers"), required=True)
    parser.add_argument("--control-store", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--total", type=int, default=0)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--churn", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.role == "nodes":
        NodeProcess(args).run()
    else:
        DriverProcess(args).run()


if __name__ == "__main__":
    main()
