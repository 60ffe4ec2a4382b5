"""Chaos run: a steady workload on a small cluster while processes and nodes are killed.

The workload is thousands of small tasks (``square(i)``, retried forever), task chains (each
link takes the previous link's result) and calls to a few actors that restart forever and
resend their in-flight calls. Every result is checked against the value it must have. A
seeded killer thread meanwhile SIGKILLs worker processes (task workers and actor processes)
and replaces whole nodes; it stops a few seconds before the end so the work can drain.

Run it as a script (``python benchmarks/chaos.py --duration 120 --seed 1``: prints a
markdown table, exits 1 when a result was wrong or lost) or import it and call
``run_chaos(duration_s, seed)`` for a ``ChaosReport``.

Tasks and actor methods append one line per execution to a log file, so the report can say
how much work really ran twice (task retries, resent actor calls) and how often actors were
restarted, without looking inside the runtime.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil

import nebula
from nebula.exceptions import GetTimeoutError
from nebula.testing import Cluster, ClusterNode

KILL_WORKER = "kill task worker"
KILL_ACTOR = "kill actor process"
REPLACE_NODE = "replace node"
FAULT_KINDS = (KILL_WORKER, KILL_ACTOR, REPLACE_NODE)

# Seconds without faults at the end of the run, so the last waves can finish.
QUIET_S = 5.0
# How far past ``duration_s`` the run may go before unfinished work counts as lost.
GRACE_S = 60.0

HEAD_CPUS = 2
EXTRA_NODES = 2
NUM_ACTORS = 3
WAVE_TASKS = 200
WAVE_CHAINS = 10
CHAIN_LENGTH = 5
WAVE_ACTOR_CALLS = 60  # per actor
WAVE_ACTOR_CALLS_ON_TASKS = 10  # per actor: the argument is a task's result


# ------------------------------------------------------------------ the workload


def _log(log_path: str, line: str) -> None:
    # One small O_APPEND write is atomic, so concurrent workers never interleave lines.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@nebula.remote(max_retries=-1)
def square(i: int, key: str, log_path: str) -> int:
    _log(log_path, key)
    return i * i


@nebula.remote(max_retries=-1)
def add(x: int, k: int, key: str, log_path: str) -> int:
    _log(log_path, key)
    time.sleep(0.002)  # long enough that some kills land mid-execution
    return x + k


@nebula.remote(max_restarts=-1, max_task_retries=-1, scheduling_strategy="SPREAD")
class Echo:
    """Answers are a function of the arguments only, so a resent call is harmless."""

    def __init__(self, name: str, log_path: str) -> None:
        self.name = name
        self.log_path = log_path
        node = nebula.get_runtime_context().get_node_id()
        _log(log_path, f"init {name} {os.getpid()} {node[:12]}")

    def echo(self, i: int, key: str) -> int:
        _log(self.log_path, key)
        return i * 3


# ------------------------------------------------------------------ the report


@dataclass
class ChaosReport:
    duration_s: float
    seed: int
    kill_nodes: bool
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    tasks_submitted: int = 0
    actor_calls: int = 0
    waves: int = 0
    tasks_reexecuted: int = 0
    actor_calls_reexecuted: int = 0
    actor_restarts: int = 0
    results_wrong: int = 0
    results_lost: int = 0
    timed_out: bool = False
    wall_s: float = 0.0
    # Wrong or lost results by what produced them ("square", "chain", "actor1.echo", ...).
    failures_by_source: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: list[str] = field(default_factory=list)
    fault_log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.results_wrong == 0 and self.results_lost == 0 and not self.timed_out

    def table(self) -> str:
        rows: list[tuple[str, object]] = [
            (
                "duration (s) / seed / kill nodes",
                f"{self.duration_s:g} / {self.seed} / {self.kill_nodes}",
            ),
            *((f"faults: {kind}", self.faults[kind]) for kind in FAULT_KINDS),
            ("faults: total", sum(self.faults.values())),
            ("waves", self.waves),
            ("tasks submitted (incl. chain links)", self.tasks_submitted),
            ("actor calls made", self.actor_calls),
            ("task executions repeated (retries that ran)", self.tasks_reexecuted),
            ("actor calls executed again (resent)", self.actor_calls_reexecuted),
            ("actor restarts", self.actor_restarts),
            ("results wrong", self.results_wrong),
            ("results lost", self.results_lost),
            ("finished in time", not self.timed_out),
            *(
                (f"wrong or lost: {source}", n)
                for source, n in sorted(self.failures_by_source.items())
            ),
            ("wall time (s)", f"{self.wall_s:.1f}"),
        ]
        lines = ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        return "\n".join(lines)


# ------------------------------------------------------------------ the killer


class Killer(threading.Thread):
    """Every 0.2-0.5 s, one fault chosen by a seeded RNG, until ``stop_at``."""

    def __init__(
        self,
        cluster: Cluster,
        rng: random.Random,
        stop_at: float,
        kill_nodes: bool,
        actor_pids: Callable[[], set[int]],
        report: ChaosReport,
    ) -> None:
        super().__init__(name="chaos-killer", daemon=True)
        self.cluster = cluster
        self.rng = rng
        self.stop_at = stop_at
        self.kill_nodes = kill_nodes
        self.actor_pids = actor_pids
        self.report = report
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self.started = time.monotonic()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.rng.uniform(0.2, 0.5)):
                if time.monotonic() >= self.stop_at:
                    return
                self._inject_one()
        except BaseException as exc:  # reported by run_chaos; a dead killer must not pass
            self.error = exc

    def _inject_one(self) -> None:
        kinds = [KILL_WORKER, KILL_ACTOR] + ([REPLACE_NODE] if self.kill_nodes else [])
        weights = [4, 4] + ([2] if self.kill_nodes else [])
        kind = self.rng.choices(kinds, weights)[0]
        if kind == REPLACE_NODE:
            self._replace_node()
            self.report.faults[kind] += 1
            return
        actor_pids = self.actor_pids()
        workers = self._workers()
        by_kind = {
            KILL_ACTOR: [w for w in workers if w.pid in actor_pids],
            KILL_WORKER: [w for w in workers if w.pid not in actor_pids],
        }
        if not by_kind[kind]:
            # Between leases a node may run only actors, or only tasks: hit what is there.
            kind = KILL_WORKER if kind == KILL_ACTOR else KILL_ACTOR
        if by_kind[kind]:
            victim = self.rng.choice(by_kind[kind])
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
                self.report.faults[kind] += 1
                self._note(f"{kind} pid {victim.pid}")

    def _workers(self) -> list[psutil.Process]:
        """Worker processes of this cluster's live nodes, in pid order."""
        found = []
        for node in self.cluster.nodes:
            if not node.alive:
                continue
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(node.process.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if "nebula._worker" in " ".join(child.cmdline()):
                            found.append(child)
        return sorted(found, key=lambda proc: proc.pid)

    def _replace_node(self) -> None:
        head = self.cluster.head_node
        extra = [n for n in self.cluster.nodes if n.alive and n is not head]
        if extra:
            doomed = self.rng.choice(extra)
            self.cluster.remove_node(doomed)
            self._note(f"removed node {doomed.node_id[:12]}")
        # Not waiting for the control store to notice either change (that takes node_timeout_s)
        # keeps faults coming; a node still joining may be the next one lost, as in real life.
        added = self.cluster.add_node(num_cpus=self.rng.choice([1, 2]), wait=False)
        self._note(f"added node {added.node_id[:12]} ({added.resources['CPU']:g} CPU)")

    def _note(self, event: str) -> None:
        elapsed = time.monotonic() - self.started
        self.report.fault_log.append(f"{elapsed:6.2f} s {event}")


# ------------------------------------------------------------------ checking results


@dataclass
class _Pending:
    refs: list[nebula.ObjectRef]
    expected: list[int]
    labels: list[str]


def _check(pending: _Pending, deadline: float, report: ChaosReport) -> None:
    """Count wrong and lost results of one wave; a result still missing at ``deadline`` is lost."""
    try:
        values = nebula.get(pending.refs, timeout=max(0.0, deadline - time.monotonic()))
    except Exception:
        values = [
            _get_one(ref, label, deadline, report)
            for ref, label in zip(pending.refs, pending.labels)
        ]
    for value, want, label in zip(values, pending.expected, pending.labels):
        if value is _LOST:
            report.results_lost += 1
            report.failures_by_source[label.split("(")[0]] += 1
        elif value != want:
            report.results_wrong += 1
            report.failures_by_source[label.split("(")[0]] += 1
            _example(report, f"{label}: got {value!r}, expected {want!r}")


_LOST = object()


def _get_one(ref: nebula.ObjectRef, label: str, deadline: float, report: ChaosReport) -> object:
    try:
        return nebula.get(ref, timeout=max(0.0, deadline - time.monotonic()))
    except GetTimeoutError:
        report.timed_out = True
        _example(report, f"{label}: no result by the deadline")
    except Exception as exc:
        _example(report, f"{label}: {type(exc).__name__}: {str(exc)[:300]}")
    return _LOST


def _example(report: ChaosReport, text: str) -> None:
    if len(report.examples) < 10:
        report.examples.append(text)


def _count_reexecutions(log_path: str, report: ChaosReport) -> None:
    executions: collections.Counter[str] = collections.Counter()
    inits: collections.Counter[str] = collections.Counter()
    with open(log_path) as log:
        for line in log:
            if line.startswith("init "):
                inits[line.split()[1]] += 1
            else:
                executions[line.strip()] += 1
    repeated = {key: n - 1 for key, n in executions.items() if n > 1}
    report.tasks_reexecuted = sum(n for key, n in repeated.items() if key.startswith("t"))
    report.actor_calls_reexecuted = sum(n for key, n in repeated.items() if key.startswith("a"))
    report.actor_restarts = sum(n - 1 for n in inits.values())


def _actor_pids(log_path: str) -> set[int]:
    with contextlib.suppress(FileNotFoundError), open(log_path) as log:
        return {int(line.split()[2]) for line in log if line.startswith("init ")}
    return set()


# ------------------------------------------------------------------ the run


def _submit_wave(
    wave: int, actors: list[nebula.ActorHandle], log_path: str, report: ChaosReport
) -> _Pending:
    refs: list[nebula.ObjectRef] = []
    expected: list[int] = []
    labels: list[str] = []

    def track(ref: nebula.ObjectRef, want: int, label: str) -> None:
        refs.append(ref)
        expected.append(want)
        labels.append(label)

    base = wave * WAVE_TASKS
    for i in range(base, base + WAVE_TASKS):
        track(square.remote(i, f"t{i}", log_path), i * i, f"square({i})")
    report.tasks_submitted += WAVE_TASKS

    for c in range(WAVE_CHAINS):
        start = wave * WAVE_CHAINS + c
        ref = square.remote(start, f"tc{start}", log_path)
        for k in range(1, CHAIN_LENGTH):
            ref = add.remote(ref, k, f"tc{start}.{k}", log_path)
        track(ref, start * start + sum(range(CHAIN_LENGTH)), f"chain({start})")
    report.tasks_submitted += WAVE_CHAINS * CHAIN_LENGTH

    for a, actor in enumerate(actors):
        base = wave * WAVE_ACTOR_CALLS
        for i in range(base, base + WAVE_ACTOR_CALLS):
            track(actor.echo.remote(i, f"a{a}.{i}"), i * 3, f"actor{a}.echo({i})")
        for j in range(WAVE_ACTOR_CALLS_ON_TASKS):
            i = wave * WAVE_ACTOR_CALLS_ON_TASKS + j
            arg = square.remote(i, f"ta{a}.{i}", log_path)
            track(actor.echo.remote(arg, f"aa{a}.{i}"), 3 * i * i, f"actor{a}.echo[square]({i})")
            track(arg, i * i, f"square[actor arg]({i})")
        report.tasks_submitted += WAVE_ACTOR_CALLS_ON_TASKS
        report.actor_calls += WAVE_ACTOR_CALLS + WAVE_ACTOR_CALLS_ON_TASKS
    report.waves += 1
    return _Pending(refs, expected, labels)


def run_chaos(
    duration_s: float,
    seed: int,
    kill_nodes: bool = True,
    report: Callable[[str], object] = print,
) -> ChaosReport:
    """Run the workload for about ``duration_s`` seconds under faults; check every result.

    Faults stop ``QUIET_S`` seconds before the end. Work still unfinished ``GRACE_S`` seconds
    after ``duration_s`` counts as lost (and ``timed_out`` is set); the run never hangs.
    """
    if nebula.is_initialized():
        raise RuntimeError("run_chaos starts its own cluster; call nebula.shutdown() first.")
    rng = random.Random(seed)
    result = ChaosReport(duration_s=duration_s, seed=seed, kill_nodes=kill_nodes)
    log_dir = tempfile.mkdtemp(prefix="nebula-chaos-")
    log_path = os.path.join(log_dir, "executions.log")
    started = time.monotonic()
    try:
        with Cluster(
            initialize_head=True, head_node_args={"num_cpus": HEAD_CPUS}, connect=True
        ) as cluster:
            nodes: list[ClusterNode] = [
                cluster.add_node(num_cpus=1 + n % 2) for n in range(EXTRA_NODES)
            ]
            report(f"chaos: cluster up ({1 + len(nodes)} nodes), seed {seed}, {duration_s:g} s")
            actors = [Echo.remote(f"actor{a}", log_path) for a in range(NUM_ACTORS)]
            # Faults start once every actor is up: the run is about a workload in progress.
            warm_up = [actor.echo.remote(-1, "warm-up") for actor in actors]
            if nebula.get(warm_up, timeout=60) != [-3] * NUM_ACTORS:
                raise RuntimeError("the actors answered the warm-up call wrongly")
            chaos_started = time.monotonic()
            stop_faults_at = chaos_started + max(duration_s - QUIET_S, 0.0)
            deadline = chaos_started + duration_s + GRACE_S
            killer = Killer(
                cluster, rng, stop_faults_at, kill_nodes, lambda: _actor_pids(log_path), result
            )
            killer.start()
            try:
                _run_waves(
                    actors, log_path, result, stop_faults_at, deadline, chaos_started, report
                )
            finally:
                # Joined before the cluster shuts down, so no node is started after it.
                killer.stop()
                killer.join(timeout=30)
            if killer.error is not None:
                raise RuntimeError("the chaos killer thread failed") from killer.error
            result.wall_s = time.monotonic() - started
            _count_reexecutions(log_path, result)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return result


def _run_waves(
    actors: list[nebula.ActorHandle],
    log_path: str,
    result: ChaosReport,
    stop_faults_at: float,
    deadline: float,
    chaos_started: float,
    report: Callable[[str], object],
) -> None:
    """Submit waves until faults stop, checking each wave while the next one runs."""
    previous: _Pending | None = None
    wave = 0
    while time.monotonic() < stop_faults_at and not result.timed_out:
        current = _submit_wave(wave, actors, log_path, result)
        if previous is not None:
            _check(previous, deadline, result)
        previous = current
        wave += 1
        if wave % 10 == 0:
            _progress(report, result, chaos_started)
    if previous is not None:
        _check(previous, deadline, result)


def _progress(report: Callable[[str], object], result: ChaosReport, started: float) -> None:
    faults = ", ".join(f"{kind}: {result.faults[kind]}" for kind in FAULT_KINDS)
    report(
        f"chaos: {time.monotonic() - started:5.1f} s, {result.waves} waves, "
        f"{result.tasks_submitted} tasks, {result.actor_calls} actor calls; {faults}"
    )


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-kill-nodes", action="store_true", help="kill worker processes only")
    args = parser.parse_args(None if argv is None else list(argv))
    result = run_chaos(args.duration, args.seed, kill_nodes=not args.no_kill_nodes)
    print(result.table())
    for example in result.examples:
        print(f"- {example}")
    if not result.ok:
        print("\nlast faults before the end:", *result.fault_log[-30:], sep="\n")
        print(
            f"FAILED: {result.results_wrong} results wrong, {result.results_lost} lost"
            + (", the run did not finish in time" if result.timed_out else ""),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
