"""Task events without a cluster: the worker's buffer and the control store's table."""

from __future__ import annotations

from typing import Any

import pytest

from nebula import _protocol as p
from nebula._control_store.metrics import MetricsTable
from nebula._control_store.task_events import TaskEventTable
from nebula._worker.task_events import TaskEventBuffer

JOB = 1


def _spec(task: int, attempt: int = 0, job: int = JOB, name: str = "f") -> p.TaskSpec:
    return p.TaskSpec(
        task_id=bytes([task]) * 16,
        job_id=job,
        name=name,
        owner_address="tcp://127.0.0.1:1",
        function_id=b"f",
        function_bytes=None,
        args_blob=b"",
        ref_args=(),
        num_returns=1,
        attempt=attempt,
    )


def _definition(job: int = JOB, name: str = "f") -> tuple[Any, ...]:
    return (job, name, "NORMAL_TASK", None, None, {"CPU": 1.0})


def _batch(*rows: p.TaskEventRow, pid: int = 7, job: int = JOB, **kw: Any) -> p.TaskEvents:
    return p.TaskEvents(tuple(rows), b"n" * 16, b"w" * 16, pid, job, **kw)


def _task(n: int) -> bytes:
    return bytes([n]) * 16


def test_a_task_goes_through_its_states_from_two_processes_in_any_order() -> None:
    table = TaskEventTable(max_per_job=100)
    # The worker's RUNNING arrives before the owner's definition (different flushes).
    table.apply(_batch((_task(1), 0, "RUNNING", 10.5, None), pid=42))
    table.apply(
        _batch(
            (_task(1), 0, "PENDING_NODE_ASSIGNMENT", 10.0, _definition()),
            (_task(1), 0, "SUBMITTED_TO_WORKER", 10.2, None),
            (_task(1), 0, "FINISHED", 11.0, None),
            pid=1,
        )
    )
    (record,) = table.query([], 10, detail=True)[0]
    assert record["state"] == "FINISHED" and record["name"] == "f"
    assert record["worker_pid"] == 42, "the process that ran it, not the owner"
    assert record["start_time_ms"] == 10500 and record["end_time_ms"] == 11000
    assert record["duration_ms"] == 500.0
    assert record["required_resources"] == {"CPU": 1.0}
    assert record["events"][0]["state"] == "RUNNING"


def test_a_late_pending_event_does_not_undo_running() -> None:
    table = TaskEventTable(max_per_job=100)
    table.apply(_batch((_task(1), 0, "RUNNING", 2.0, None)))
    table.apply(_batch((_task(1), 0, "PENDING_ARGS_AVAIL", 1.0, _definition())))
    assert table.query([], 10, detail=False)[0][0]["state"] == "RUNNING"


def test_a_failure_keeps_its_error_and_each_attempt_is_its_own_record() -> None:
    table = TaskEventTable(max_per_job=100)
    table.apply(
        _batch(
            (_task(1), 0, "PENDING_NODE_ASSIGNMENT", 1.0, _definition()),
            (_task(1), 0, "FAILED", 2.0, ("WORKER_DIED", "the worker died")),
            (_task(1), 1, "PENDING_NODE_ASSIGNMENT", 2.1, _definition()),
            (_task(1), 1, "FAILED", 3.0, ("TASK_EXECUTION_EXCEPTION", "Traceback ... boom")),
        )
    )
    first, second = table.get(_task(1))
    assert (first.attempt, first.error_type) == (0, "WORKER_DIED")
    assert (second.attempt, second.error_message) == (1, "Traceback ... boom")
    failed, total = table.query([("state", "=", "failed")], 10, detail=True)
    assert total == 2 and {r["attempt_number"] for r in failed} == {0, 1}


def test_the_bound_forgets_finished_attempts_first_and_counts_them() -> None:
    table = TaskEventTable(max_per_job=3)
    table.apply(_batch((_task(1), 0, "RUNNING", 1.0, None)))  # never finishes
    for n in (2, 3, 4, 5):
        table.apply(
            _batch(
                (_task(n), 0, "PENDING_NODE_ASSIGNMENT", float(n), _definition()),
                (_task(n), 0, "FINISHED", n + 0.5, None),
            )
        )
    assert len(table) == 3
    kept = {r["task_id"] for r in table.query([], 10, detail=False)[0]}
    assert kept == {_task(1).hex(), _task(4).hex(), _task(5).hex()}
    assert table.dropped_by_job() == {f"{JOB:08x}": 2}
    # Another job has its own bound.
    table.apply(_batch((_task(9), 0, "RUNNING", 9.0, None), job=2))
    assert len(table) == 4


def test_the_bound_falls_back_to_the_oldest_unfinished_attempt() -> None:
    table = TaskEventTable(max_per_job=2)
    for n in (1, 2, 3):
        table.apply(_batch((_task(n), 0, "RUNNING", float(n), None)))
    kept = {r["task_id"] for r in table.query([], 10, detail=False)[0]}
    assert kept == {_task(2).hex(), _task(3).hex()}


def test_a_finished_job_fails_its_unfinished_attempts_until_a_real_ending_arrives() -> None:
    table = TaskEventTable(max_per_job=10)
    table.apply(_batch((_task(1), 0, "RUNNING", 1.0, None), (_task(2), 0, "RUNNING", 1.0, None)))
    table.job_finished(JOB, 5.0)
    states = {r["task_id"]: r for r in table.query([], 10, detail=True)[0]}
    assert {r["error_type"] for r in states.values()} == {"JOB_FINISHED"}
    # The worker's last flush arrives after the job ended: the task did finish.
    table.apply(_batch((_task(1), 0, "FINISHED", 4.0, None)))
    assert table.get(_task(1))[0].state == "FINISHED"
    assert table.get(_task(1))[0].error_type is None


def test_filters_summary_and_errors() -> None:
    table = TaskEventTable(max_per_job=10)
    table.apply(
        _batch(
            (_task(1), 0, "PENDING_NODE_ASSIGNMENT", 1.0, _definition(name="f")),
            (_task(1), 0, "FINISHED", 2.0, None),
            (_task(2), 0, "PENDING_NODE_ASSIGNMENT", 1.0, _definition(name="g")),
            (_task(3), 0, "PENDING_NODE_ASSIGNMENT", 1.0, _definition(name="g")),
            (_task(3), 0, "FAILED", 2.0, ("TASK_EXECUTION_EXCEPTION", "x")),
        )
    )
    records, total = table.query([("name", "=", "g"), ("state", "!=", "FAILED")], 10, detail=False)
    assert total == 1 and records[0]["task_id"] == _task(2).hex()
    assert "error_message" not in records[0], "detail-only columns stay out by default"
    one, total = table.query([], 1, detail=False)
    assert len(one) == 1 and total == 3
    summary = {g["func_or_class_name"]: g["state_counts"] for g in table.summary([])}
    assert summary == {"f": {"FINISHED": 1}, "g": {"PENDING_NODE_ASSIGNMENT": 1, "FAILED": 1}}
    with pytest.raises(ValueError, match="cannot filter on 'colour'"):
        table.query([("colour", "=", "red")], 10, detail=False)


def test_the_buffer_stops_at_its_bound_and_counts_what_it_dropped() -> None:
    buffer = TaskEventBuffer(enabled=True, max_buffered=3)
    for n in range(5):
        buffer.state(_spec(n), "RUNNING")
    assert buffer.take(period_s=1e9) is None, "nothing is due before the period"
    rows = buffer.take(force=True)
    assert rows is not None and len(rows) == 3
    assert buffer.take_dropped() == {JOB: 2}
    off = TaskEventBuffer(enabled=False, max_buffered=3)
    off.submitted(_spec(1), "PENDING_NODE_ASSIGNMENT", "NORMAL_TASK", None, None)
    assert off.take(force=True) is None


def test_buffer_rows_merge_into_the_table() -> None:
    buffer = TaskEventBuffer(enabled=True, max_buffered=100)
    spec = _spec(1, name="work")
    buffer.submitted(spec, "PENDING_NODE_ASSIGNMENT", "NORMAL_TASK", {"CPU": 2.0}, None)
    buffer.failed(spec, "TASK_EXECUTION_EXCEPTION", "boom")
    rows = buffer.take(force=True)
    assert rows is not None
    table = TaskEventTable(max_per_job=10)
    table.apply(p.decode(p.encode(_batch(*rows))))  # type: ignore[arg-type]
    (attempt,) = table.get(spec.task_id)
    assert (attempt.name, attempt.state, attempt.error_message) == ("work", "FAILED", "boom")
    assert attempt.resources == {"CPU": 2.0}


def test_metrics_sum_counters_and_histograms_and_keep_the_latest_gauge() -> None:
    table = MetricsTable(max_sources=2)
    tags = (("route", "/a"),)
    hist = ((1.0, 5.0), [1, 2, 0], 7.5, 3)
    table.report(
        p.MetricsReport(
            "w1",
            (
                ("requests", "counter", "", tags, 3.0),
                ("queue", "gauge", "", tags, 5.0),
                ("latency", "histogram", "", tags, hist),
            ),
        )
    )
    table.report(
        p.MetricsReport(
            "w2",
            (
                ("requests", "counter", "", tags, 4.0),
                ("queue", "gauge", "", tags, 2.0),
                ("latency", "histogram", "", tags, hist),
            ),
        )
    )
    metrics = {m["name"]: m["series"][0]["value"] for m in table.aggregate()}
    assert metrics["requests"] == 7.0
    assert metrics["queue"] == 2.0, "the most recent report of a gauge counts"
    assert metrics["latency"] == ((1.0, 5.0), [2, 4, 0], 15.0, 6)
    table.report(p.MetricsReport("w3", (("requests", "counter", "", tags, 1.0),)))
    metrics = {m["name"]: m["series"][0]["value"] for m in table.aggregate()}
    assert metrics["requests"] == 5.0, "past max_sources the oldest reporter is forgotten"
