"""A simulated cluster of many nodes against one real control store.

The control store is started as ``nebula start --head`` starts it (its own process, the
cluster token, its SQLite tables). Simulated nodes, several hundred to a process, speak the
real protocol to it over authenticated TCP: they register, heartbeat resources that change
as simulated work comes and goes, apply the cluster views they are sent, grant the leases
it asks of them and finish at once the actors' creation tasks pushed to them. A few
simulated drivers register jobs, heartbeat them and create and kill actors: each creation
is a placement decision of the control store.

For each cluster size it measures:

- **join**: the time until every node knows every other node, after registering them at
  ``--register-rate`` nodes a second;
- **steady state** (``--steady-s``): the control store's CPU (cores, from psutil: all its
  threads, ZeroMQ's included), its memory, the messages and bytes each node sends and
  receives per second, and the round trip of a ping to the control store (high when its
  inbox has a backlog);
- **scheduling**: actors placed per second (created, placed on a node, leased, alive, then
  killed) with ``--actors-inflight`` creations outstanding per driver;
- **a node's death**: one node stops heartbeating (a machine lost); how long until each
  other node and each driver knows it is dead, against the node timeout.

Run it under the benchmark lock (the machine is shared)::

    flock /work/bench.lock .venv/bin/python benchmarks/simulated/sim_nodes.py \\
        --nodes 10 100 1000 5000 --out /tmp/sim.jsonl

It prints one markdown table row per size as it goes, and the whole table at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
from simsock import Mailbox, prepare_context

from nebula import _auth
from nebula import _protocol as p
from nebula._api import services

HERE = os.path.dirname(os.path.abspath(__file__))
NODES_PER_PROCESS = 1250


class Child:
    """A simulated-cluster process, driven one command a line through its stdin."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "simproc.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **env},
            text=True,
            bufsize=1,
        )
        self.pid = 0

    def read(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                raise TimeoutError(f"simulated process {self.process.pid} did not answer")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"simulated process {self.process.pid} exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def ask(self, command: str, timeout_s: float = 60.0) -> dict[str, Any]:
        self.send(command)
        return self.read(timeout_s)

    def stop(self) -> None:
        try:
            self.ask("quit", 10)
        except Exception:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class SizeResult:
    nodes: int
    processes: int
    node_timeout_s: float
    heartbeat_s: float
    join_s: float | None = None
    join_converged: float = 0.0
    join_cs_cpu_s: float = 0.0
    cs_cores: float = 0.0
    cs_rss_mib: float = 0.0
    msgs_to_cs_per_node_s: float = 0.0
    msgs_from_cs_per_node_s: float = 0.0
    bytes_from_cs_per_node_s: float = 0.0
    ping_p50_ms: float = 0.0
    ping_p99_ms: float = 0.0
    sim_cores: float = 0.0
    from_cs_by_type: dict[str, int] = field(default_factory=dict)
    actors_per_s: float | None = None
    actor_p50_ms: float | None = None
    actor_cs_cores: float | None = None
    death_first_s: float | None = None
    death_all_s: float | None = None
    death_learned: str = ""
    notes: list[str] = field(default_factory=list)


class Pinger:
    """Pings the control store from the orchestrator: a slow answer means a backlog."""

    def __init__(self, control_store: str, token: str) -> None:
        context, keys = prepare_context(token)
        self.mailbox = Mailbox(context, keys, "127.0.0.1")
        self.control_store = control_store
        self.next_id = 1

    def ping(self, timeout_s: float = 10.0) -> float:
        request_id = self.next_id
        self.next_id += 1
        start = time.monotonic()
        self.mailbox.send(self.control_store, p.Ping(request_id, self.mailbox.address))
        inbox = self.mailbox.inbox
        while inbox.poll(max(1, int((start + timeout_s - time.monotonic()) * 1000))):
            msg = p.decode(inbox.recv())
            if isinstance(msg, p.Pong) and msg.request_id == request_id:
                return time.monotonic() - start
            if time.monotonic() > start + timeout_s:
                break
        return math.inf

    def close(self) -> None:
        self.mailbox.close()


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def total_stats(children: list[Child]) -> dict[str, Any]:
    for child in children:
        child.send("stats")
    answers = [child.read(120) for child in children]
    out: dict[str, Any] = {"by_type": {}}
    for answer in answers:
        for key, value in answer.items():
            if key == "by_type":
                for name, count in value.items():
                    out["by_type"][name] = out["by_type"].get(name, 0) + count
            elif isinstance(value, (int, float)) and key != "min_known":
                out[key] = out.get(key, 0) + value
    out["min_known"] = min(a["min_known"] for a in answers)
    return out


def run_size(n: int, args: argparse.Namespace) -> SizeResult:
    procs = args.procs or max(1, min(4, math.ceil(n / NODES_PER_PROCESS)))
    heartbeat_s = args.heartbeat_s or min(1.0, args.node_timeout_s / 4)
    result = SizeResult(n, procs, args.node_timeout_s, heartbeat_s)
    env = {
        "NEBULA_NODE_TIMEOUT_S": str(args.node_timeout_s),
        "NEBULA_NODE_HEARTBEAT_S": str(heartbeat_s),
        "NEBULA_DRIVER_TIMEOUT_S": "120",
    }
    session_dir, _tag = services.new_session()
    token = _auth.new_token()
    cs_process, cs_address = services.start_control_store(
        session_dir, host="127.0.0.1", port=0, detached=False, token=token, env=env
    )
    cs = psutil.Process(cs_process.pid)
    profiler: subprocess.Popen[bytes] | None = None
    child_env = {**env, _auth.TOKEN_ENV: token}
    prefix = os.urandom(12).hex()
    node_procs: list[Child] = []
    drivers: Child | None = None
    pinger = Pinger(cs_address, token)
    try:
        per = math.ceil(n / procs)
        for i in range(procs):
            first, count = i * per, min(per, n - i * per)
            node_procs.append(
                Child(
                    [
                        "--role=nodes",
                        f"--control-store={cs_address}",
                        f"--first={first}",
                        f"--count={count}",
                        f"--total={n}",
                        f"--prefix={prefix}",
                        f"--churn={args.churn}",
                        f"--seed={i}",
                    ],
                    child_env,
                )
            )
        drivers = Child(
            ["--role=drivers", f"--control-store={cs_address}", f"--count={args.drivers}"],
            child_env,
        )
        for child in [*node_procs, drivers]:
            child.pid = child.read(120)["pid"]
        sims = [psutil.Process(c.pid) for c in [*node_procs, drivers]]
        drivers.ask("register", 60)

        # ------------------------------------------------------------- join
        cpu0 = cpu_seconds(cs)
        start = time.monotonic()
        for child in node_procs:
            child.ask(f"register {args.register_rate / procs}")
        deadline = start + args.join_timeout_s
        converged = 0
        last_log = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            stats = total_stats(node_procs)
            converged = stats["converged"]
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                log(
                    f"  joining: {stats['registered']} registered, {converged} know all, "
                    f"the least informed knows {stats['min_known']}; control store "
                    f"{cpu_seconds(cs) - cpu0:.0f} CPU s, {cs.memory_info().rss >> 20} MiB"
                )
            if converged == n:
                result.join_s = time.monotonic() - start
                break
        result.join_converged = converged / n
        result.join_cs_cpu_s = cpu_seconds(cs) - cpu0
        if result.join_s is None:
            result.notes.append(
                f"join: {converged}/{n} nodes knew every node after {args.join_timeout_s:g} s"
            )
        log(f"  join: {result.join_s} s, converged {converged}/{n}")

        # ----------------------------------------------------------- steady
        time.sleep(2 * heartbeat_s)
        if args.py_spy:
            profiler = record_stacks(cs_process.pid, args.py_spy, n)
        s0 = total_stats(node_procs)
        cpu0, sim0, t0 = cpu_seconds(cs), sum(cpu_seconds(s) for s in sims), time.monotonic()
        pings: list[float] = []
        while time.monotonic() - t0 < args.steady_s:
            pings.append(pinger.ping(timeout_s=args.steady_s))
            time.sleep(0.2)
        s1 = total_stats(node_procs)
        elapsed = time.monotonic() - t0
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
            profiler = None
        node_s = n * elapsed
        result.cs_cores = (cpu_seconds(cs) - cpu0) / elapsed
        result.sim_cores = (sum(cpu_seconds(s) for s in sims) - sim0) / elapsed
        result.cs_rss_mib = cs.memory_info().rss / 2**20
        result.msgs_to_cs_per_node_s = (s1["msgs_out"] - s0["msgs_out"]) / node_s
        result.msgs_from_cs_per_node_s = (s1["msgs_in"] - s0["msgs_in"]) / node_s
        result.bytes_from_cs_per_node_s = (s1["bytes_in"] - s0["bytes_in"]) / node_s
        result.from_cs_by_type = {
            name: count - s0["by_type"].get(name, 0) for name, count in s1["by_type"].items()
        }
        pings.sort()
        result.ping_p50_ms = 1000 * pings[len(pings) // 2]
        result.ping_p99_ms = 1000 * pings[min(len(pings) - 1, int(len(pings) * 0.99))]
        log(
            f"  steady: cs {result.cs_cores:.2f} cores, {result.msgs_from_cs_per_node_s:.2f} "
            f"msg/node/s in, ping p50 {result.ping_p50_ms:.1f} ms"
        )
        if result.join_s is None:
            result.notes.append("actors and death skipped: the control store never caught up")
            return result

        # ------------------------------------------------------- scheduling
        cpu0 = cpu_seconds(cs)
        actors = drivers.ask(f"actors {args.actors_s} {args.actors_inflight}", args.actors_s + 60)
        result.actors_per_s = actors["per_s"]
        result.actor_p50_ms = actors["p50_ms"]
        result.actor_cs_cores = (cpu_seconds(cs) - cpu0) / actors["seconds"]
        log(f"  actors: {actors}")

        # ------------------------------------------------------------ death
        time.sleep(2 * heartbeat_s)
        victim = n - 1
        t_dead = node_procs[-1].ask(f"silence {victim}")["t0"]
        learned: list[float] = []
        expected = n - 1 + args.drivers
        while time.monotonic() < t_dead + 3 * args.node_timeout_s + 5:
            time.sleep(0.5)
            learned = []
            for child in [*node_procs, drivers]:
                learned += child.ask(f"deaths {victim}")["times"]
            if len(learned) >= expected:
                break
        result.death_learned = f"{len(learned)}/{expected}"
        if learned:
            result.death_first_s = min(learned) - t_dead
            result.death_all_s = max(learned) - t_dead if len(learned) >= expected else None
        log(f"  death: first {result.death_first_s} s, all {result.death_all_s} s")
        return result
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        pinger.close()
        for child in [*node_procs, *([drivers] if drivers else [])]:
            child.stop()
        services.stop_processes([cs_process])
        shutil.rmtree(session_dir, ignore_errors=True)


def record_stacks(pid: int, directory: str, n: int) -> subprocess.Popen[bytes]:
    """Sample the control store's stacks (py-spy) until sent SIGINT."""
    return subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "py-spy"),
            "record",
            f"--pid={pid}",
            "--rate=20",
            "--format=raw",
            "--nonblocking",
            f"--output={os.path.join(directory, f'control-store-{n}.txt')}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


HEADER = (
    "| nodes | procs | join (s) | CS cores, steady | CS RSS (MiB) | msgs to CS /node/s "
    "| msgs from CS /node/s | bytes from CS /node/s | CS ping p50 / p99 (ms) "
    "| actors placed /s | death known: first / all (s) | sim cores | notes |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def row(r: SizeResult) -> str:
    return (
        f"| {r.nodes:,} | {r.processes} | {fmt(r.join_s, '.1f')} | {r.cs_cores:.3f} "
        f"| {r.cs_rss_mib:.0f} | {r.msgs_to_cs_per_node_s:.2f} | {r.msgs_from_cs_per_node_s:.2f} "
        f"| {r.bytes_from_cs_per_node_s:,.0f} | {r.ping_p50_ms:.1f} / {r.ping_p99_ms:.1f} "
        f"| {fmt(r.actors_per_s, '.0f')} | {fmt(r.death_first_s, '.1f')} / "
        f"{fmt(r.death_all_s, '.1f')} | {r.sim_cores:.2f} | {'; '.join(r.notes)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--procs", type=int, default=0, help="node processes (0: by size)")
    parser.add_argument("--drivers", type=int, default=4)
    parser.add_argument("--node-timeout-s", type=float, default=10.0)
    parser.add_argument("--heartbeat-s", type=float, default=1.0)
    parser.add_argument("--register-rate", type=float, default=100.0)
    parser.add_argument("--join-timeout-s", type=float, default=300.0)
    parser.add_argument("--steady-s", type=float, default=20.0)
    parser.add_argument("--churn", type=float, default=0.5)
    parser.add_argument("--actors-s", type=float, default=10.0)
    parser.add_argument("--actors-inflight", type=int, default=25)
    parser.add_argument("--label", default="", help="recorded with each result")
    parser.add_argument(
        "--py-spy", default="", help="record the control store's stacks at steady state here"
    )
    parser.add_argument("--out", default="", help="append each result as a JSON line here")
    args = parser.parse_args()
    os.environ.setdefault("NEBULA_INCLUDE_DASHBOARD", "0")
    rows = []
    for n in args.nodes:
        log(f"{n} nodes")
        result = run_size(n, args)
        rows.append(row(result))
        print(row(result), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps({"label": args.label, **asdict(result)}) + "\n")
    print()
    print(HEADER)
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
