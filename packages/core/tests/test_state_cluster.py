"""The state API and the state commands on a live two-node cluster: tasks with their
tracebacks, summaries, workers, objects, jobs, logs, the timeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nebula
from nebula.testing import Cluster, SignalActor, wait_for_condition
from nebula.util import state


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)
    cluster.connect()
    try:
        yield cluster
    finally:
        cluster.shutdown()


@nebula.remote(num_cpus=1)
def square(x: int) -> int:
    time.sleep(0.05)
    return x * x


@nebula.remote
def echo(x: Any) -> Any:
    return x


@nebula.remote(max_retries=0)
def explode(x: int) -> int:
    raise ValueError(f"boom {x}")


@nebula.remote
class Greeter:
    def greet(self, name: str) -> str:
        print(f"hello {name}", flush=True)
        return name


def _finished(name: str, count: int) -> bool:
    """``count`` attempts of ``name`` finished, and their workers' events arrived too (the
    owner and the worker flush on their own clocks: RUNNING may come after FINISHED)."""
    done = state.list_tasks(filters=[("name", "=", name), ("state", "=", "FINISHED")], detail=True)
    return len([t for t in done if t.worker_pid and t.start_time_ms is not None]) >= count


def test_tasks_are_listed_with_their_state_node_and_traceback(two_nodes: Cluster) -> None:
    refs = [square.options(scheduling_strategy="SPREAD").remote(i) for i in range(8)]
    assert nebula.get(refs) == [i * i for i in range(8)]
    failed = explode.remote(3)
    with pytest.raises(ValueError):
        nebula.get(failed)
    wait_for_condition(lambda: _finished("square", 8), timeout=15)
    finished = state.list_tasks(filters=[("name", "=", "square")], detail=True)
    assert {t.node_id for t in finished} == {n.node_id for n in two_nodes.nodes}
    assert all(t.duration_ms is not None and t.duration_ms >= 40 for t in finished)
    assert all(t.worker_pid and t.type == "NORMAL_TASK" for t in finished)

    wait_for_condition(lambda: state.get_task(failed) is not None, timeout=10)
    (attempt,) = state.get_task(failed) or []
    assert attempt.state == "FAILED" and attempt.error_type == "TASK_EXECUTION_EXCEPTION"
    assert "ValueError: boom 3" in attempt.error_message
    assert "Traceback" in attempt.error_message
    brief = state.list_tasks(filters=[("state", "=", "FAILED")])
    assert [t.name for t in brief] == ["explode"] and "error_message" not in brief[0]
    assert len(state.list_tasks(limit=2)) == 2

    summary = state.summarize_tasks()["cluster"]
    assert summary["summary"]["square"]["state_counts"] == {"FINISHED": 8}
    assert summary["summary"]["explode"]["state_counts"] == {"FAILED": 1}


def test_pending_tasks_show_what_they_wait_for(two_nodes: Cluster) -> None:
    signal = SignalActor.remote()
    blocker = signal.wait.remote()
    waiting = echo.remote(blocker)  # its argument is not ready yet
    wait_for_condition(
        lambda: any(
            t.state == "PENDING_ARGS_AVAIL"
            for t in state.list_tasks(filters=[("name", "=", "echo")])
        ),
        timeout=10,
    )
    wait_for_condition(
        lambda: any(
            t.state == "RUNNING"
            for t in state.list_tasks(filters=[("name", "=", "SignalActor.wait")])
        ),
        timeout=10,
    )
    waiting_refs = state.list_objects(filters=[("reference_type", "=", "USED_BY_PENDING_TASK")])
    assert blocker.object_id.hex() in {o.object_id for o in waiting_refs}
    nebula.get(signal.send.remote())
    assert nebula.get(waiting, timeout=30) is None


def test_objects_workers_and_jobs(two_nodes: Cluster) -> None:
    big = nebula.put(np.zeros(1 << 20, dtype=np.uint8))  # in shared memory
    small = nebula.put("small")
    records = {o.object_id: o for o in state.list_objects(detail=True, limit=1000)}
    assert records[big.object_id.hex()].in_shared_memory
    assert records[big.object_id.hex()].object_size >= 1 << 20
    assert records[small.object_id.hex()].reference_type == "LOCAL_REFERENCE"
    assert records[small.object_id.hex()].type == "DRIVER"
    assert state.summarize_objects()["cluster"]["total_objects"] >= 2

    workers = state.list_workers(detail=True, limit=1000)
    assert {w.node_id for w in workers if w.worker_type == "WORKER"} >= {
        n.node_id for n in two_nodes.nodes
    }
    driver = next(w for w in workers if w.worker_type == "DRIVER" and w.is_alive)
    assert driver.pid == os.getpid()

    jobs = state.list_jobs()
    mine = next(j for j in jobs if j.driver_info and j.driver_info["pid"] == str(os.getpid()))
    assert mine.type == "DRIVER" and mine.status == "RUNNING"
    assert state.get_job(mine.job_id)["job_id"] == mine.job_id
    assert state.get_node(two_nodes.nodes[1].node_id).state == "ALIVE"


def test_logs_of_an_actor_and_a_task(two_nodes: Cluster) -> None:
    greeter = Greeter.remote()
    ref = greeter.greet.remote("nebula")
    assert nebula.get(ref) == "nebula"
    actor_id = greeter.object_id.hex()
    wait_for_condition(lambda: "hello nebula" in list(state.get_log(actor_id=actor_id)), timeout=10)
    wait_for_condition(lambda: state.get_task(ref) is not None, timeout=10)
    task_log = list(state.get_log(task_id=(state.get_task(ref) or [])[0].task_id))
    assert "hello nebula" in task_log
    files = state.list_logs()
    assert set(files) == {n.node_id for n in two_nodes.nodes}
    assert any(name.endswith(".out") for names in files.values() for name in names)
    with pytest.raises(ValueError, match="say which log"):
        list(state.get_log())


def test_timeline_is_a_chrome_trace_of_the_tasks_that_ran(
    two_nodes: Cluster, tmp_path: Path
) -> None:
    nebula.get([square.remote(i) for i in range(4)])
    wait_for_condition(lambda: _finished("square", 4), timeout=15)
    path = tmp_path / "trace.json"
    assert nebula.timeline(str(path)) is None
    events = json.loads(path.read_text())
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and {"name", "ts", "dur", "pid", "tid", "args"} <= set(spans[0])
    assert all(isinstance(e["ts"], (int, float)) and e["dur"] > 0 for e in spans)
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert all(name.startswith("Node ") for name in names)
    assert any(e["name"] == "square" for e in spans)


def _cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NEBULA_CLUSTER_TOKEN=cluster.token)
    return subprocess.run(
        [sys.executable, "-m", "nebula._cli", *args, "--address", cluster.address],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_state_commands(two_nodes: Cluster, tmp_path: Path) -> None:
    greeter = Greeter.remote()
    nebula.get(greeter.greet.remote("cli"))
    failed = explode.remote(7)
    with pytest.raises(ValueError):
        nebula.get(failed)
    wait_for_condition(
        lambda: any(a.state == "FAILED" for a in state.get_task(failed) or []), timeout=15
    )
    jobs_before = len(state.list_jobs(limit=1000))

    listed = _cli(two_nodes, "list", "tasks", "--filter", "state=FAILED")
    assert listed.returncode == 0, listed.stderr
    assert "explode" in listed.stdout and "TASK_EXECUTION_EXCEPTION" in listed.stdout
    as_json = _cli(two_nodes, "list", "tasks", "--detail", "--format", "json", "--limit", "500")
    tasks: list[dict[str, Any]] = json.loads(as_json.stdout)
    assert any("boom 7" in (t["error_message"] or "") for t in tasks)

    summary = _cli(two_nodes, "summary", "tasks")
    assert summary.returncode == 0, summary.stderr
    assert "Greeter.greet" in summary.stdout and "FINISHED" in summary.stdout

    trace = tmp_path / "trace.json"
    timeline = _cli(two_nodes, "timeline", "-o", str(trace))
    assert timeline.returncode == 0, timeline.stderr
    assert any(e["ph"] == "X" for e in json.loads(trace.read_text()))

    logs = _cli(two_nodes, "logs", "--actor-id", greeter.object_id.hex())
    assert "hello cli" in logs.stdout, logs.stderr
    for kind in ("workers", "objects", "jobs", "nodes", "actors"):
        result = _cli(two_nodes, "list", kind)
        assert result.returncode == 0 and f"{kind})" in result.stdout, result.stderr
    memory = _cli(two_nodes, "memory")
    assert memory.returncode == 0 and "object store:" in memory.stdout, memory.stderr
    stack = _cli(two_nodes, "stack")
    assert stack.returncode == 0 and "Thread" in stack.stdout, stack.stderr
    token = _cli(two_nodes, "get-auth-token")
    assert token.stdout.strip() == two_nodes.token
    # Looking at the cluster started no job.
    assert len(state.list_jobs(limit=1000)) == jobs_before
