"""Jobs as ``list_jobs()`` shows them: submitted jobs and plain drivers, in Ray's shape.

A job submitted through the job API has a submission record (status, entrypoint, logs) and,
once its entrypoint connects, a driver job; a driver started by hand has only the latter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from nebula import _protocol as p


class DriverJob(Protocol):
    job_id: int
    driver_address: str
    driver_pid: int
    namespace: str
    alive: bool
    start_time: float
    end_time: float | None
    entrypoint: str
    submission_id: str
    driver_ip: str


def job_records(
    drivers: Iterable[DriverJob], submissions: Iterable[p.JobSubmissionInfo]
) -> list[dict[str, Any]]:
    by_submission = {d.submission_id: d for d in drivers if d.submission_id}
    records = []
    for info in submissions:
        driver = by_submission.pop(info.submission_id, None)
        records.append(_submission_record(info, driver))
    for driver in drivers:
        if not driver.submission_id or driver.submission_id in by_submission:
            records.append(_driver_record(driver))
    records.sort(key=lambda r: r["start_time"] or 0, reverse=True)
    return records


def _driver_info(driver: DriverJob | None) -> dict[str, Any] | None:
    if driver is None:
        return None
    return {
        "id": f"{driver.job_id:08x}",
        "node_ip_address": driver.driver_ip,
        "pid": str(driver.driver_pid),
    }


def _submission_record(info: p.JobSubmissionInfo, driver: DriverJob | None) -> dict[str, Any]:
    return {
        "type": "SUBMISSION",
        "job_id": f"{driver.job_id:08x}" if driver is not None else None,
        "submission_id": info.submission_id,
        "status": info.status,
        "entrypoint": info.entrypoint,
        "message": info.message,
        "error_type": info.error_type,
        "start_time": _ms(info.start_time),
        "end_time": _ms(info.end_time),
        "metadata": dict(info.metadata),
        "runtime_env": dict(info.runtime_env or {}),
        "driver_info": _driver_info(driver),
        "driver_exit_code": info.driver_exit_code,
    }


def _driver_record(driver: DriverJob) -> dict[str, Any]:
    return {
        "type": "DRIVER",
        "job_id": f"{driver.job_id:08x}",
        "submission_id": None,
        "status": "RUNNING" if driver.alive else "SUCCEEDED",
        "entrypoint": driver.entrypoint,
        "message": "",
        "error_type": None,
        "start_time": _ms(driver.start_time),
        "end_time": _ms(driver.end_time),
        "metadata": {},
        "runtime_env": {},
        "driver_info": _driver_info(driver),
        "driver_exit_code": None,
    }


def _ms(at: float | None) -> int | None:
    return None if not at else int(at * 1000)
