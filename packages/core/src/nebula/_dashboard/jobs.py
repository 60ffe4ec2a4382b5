"""The job manager: runs submitted entrypoints on the head and records them.

A submitted job is a shell command (``python script.py``) run in its own process group, in
its working directory (unpacked from the package the client uploaded), with its output in
``logs/job-driver-<id>.log`` and the environment that makes its ``nebula.init()`` join this
cluster as a job with the submitted ``runtime_env``. The manager outlives the client that
submitted the job; every change of a job's status is written to the control store, whose
SQLite tables keep the history across head restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from nebula import _auth, _runtime_env
from nebula import _protocol as p
from nebula._state.connection import StateConnection
from nebula._state.logs import job_log_name

TERMINAL = ("STOPPED", "SUCCEEDED", "FAILED")
STOP_GRACE_S = 3.0


class JobError(ValueError):
    """A request about jobs that cannot be carried out (the message says why)."""


class JobManager:
    def __init__(
        self, conn: StateConnection, *, session_dir: str, cluster_address: str, token: str
    ) -> None:
        self.conn = conn
        self.session_dir = session_dir
        self.cluster_address = cluster_address
        self.token = token
        self.log_dir = os.path.join(session_dir, "logs")
        self._lock = threading.Lock()
        self._jobs: dict[str, p.JobSubmissionInfo] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping: set[str] = set()
        # The dashboard unpacks a job's packages on the head, for its entrypoint.
        _runtime_env.set_package_fetcher(self._fetch_package)
        self._recover()

    # ---------------------------------------------------------------- records

    def _recover(self) -> None:
        """Jobs a previous manager started and that no longer run end as FAILED."""
        for record in self.conn.query("jobs", [("type", "=", "SUBMISSION")], 1 << 30).records:
            info = self._fetch(record["submission_id"])
            if info is None or info.status in TERMINAL:
                continue
            self._save(
                replace(
                    info,
                    status="FAILED",
                    end_time=time.time(),
                    error_type="JOB_SUPERVISOR_LOST",
                    message="the head's job manager restarted while the job ran; "
                    "its outcome is unknown",
                )
            )

    def _fetch(self, submission_id: str) -> p.JobSubmissionInfo | None:
        with self._lock:
            known = self._jobs.get(submission_id)
        if known is not None:
            return known
        records = self.conn.query("jobs", [("submission_id", "=", submission_id)], 1).records
        if not records:
            return None
        record = records[0]
        return p.JobSubmissionInfo(
            submission_id=submission_id,
            entrypoint=record["entrypoint"],
            status=record["status"],
            message=record["message"],
            start_time=(record["start_time"] or 0) / 1000,
            end_time=None if record["end_time"] is None else record["end_time"] / 1000,
            metadata=dict(record["metadata"]),
            runtime_env=dict(record["runtime_env"]) or None,
            log_path=os.path.join(self.log_dir, job_log_name(submission_id)),
            error_type=record["error_type"],
            driver_exit_code=record["driver_exit_code"],
        )

    def _save(self, info: p.JobSubmissionInfo) -> None:
        with self._lock:
            self._jobs[info.submission_id] = info
        self.conn.cw.send(self.conn.control_store, p.PutJobSubmission(info))

    def info(self, submission_id: str) -> dict[str, Any]:
        """The job's record as ``GET /api/jobs/{id}`` shows it (by submission or job id)."""
        for key in ("submission_id", "job_id"):
            records = self.conn.query("jobs", [(key, "=", submission_id)], 1).records
            if records:
                return dict(records[0])
        raise KeyError(submission_id)

    # ----------------------------------------------------------------- submit

    def submit(
        self,
        entrypoint: str,
        *,
        submission_id: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        if not isinstance(entrypoint, str) or not entrypoint.strip():
            raise JobError("entrypoint must be a non-empty shell command, like 'python run.py'.")
        submission_id = submission_id or f"nebulasubmit_{secrets.token_hex(8)}"
        if not all(c.isalnum() or c in "_-." for c in submission_id):
            raise JobError(f"submission_id {submission_id!r} may hold letters, digits, _ - . only.")
        if self._fetch(submission_id) is not None:
            raise JobError(f"a job with submission_id {submission_id!r} already exists.")
        try:
            env = _runtime_env.validate(runtime_env)
        except (TypeError, ValueError) as exc:
            raise JobError(str(exc)) from None
        metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        log_path = os.path.join(self.log_dir, job_log_name(submission_id))
        info = p.JobSubmissionInfo(
            submission_id=submission_id,
            entrypoint=entrypoint,
            status="PENDING",
            message="the job is starting",
            start_time=time.time(),
            metadata=metadata,
            runtime_env=env,
            log_path=log_path,
        )
        self._save(info)
        try:
            process = self._launch(info)
        except Exception as exc:
            self._save(
                replace(
                    info,
                    status="FAILED",
                    end_time=time.time(),
                    error_type="JOB_SETUP_FAILED",
                    message=f"the job could not start: {exc}",
                )
            )
            return submission_id
        with self._lock:
            self._processes[submission_id] = process
        self._save(
            replace(info, status="RUNNING", message="the job is running", driver_pid=process.pid)
        )
        threading.Thread(
            target=self._supervise, args=(submission_id,), name=f"job-{submission_id}", daemon=True
        ).start()
        return submission_id

    def _launch(self, info: p.JobSubmissionInfo) -> subprocess.Popen[bytes]:
        env_spec = info.runtime_env or {}
        cwd = self.session_dir
        if env_spec.get("working_dir"):
            cwd = _runtime_env.local_directory(env_spec["working_dir"])
        environment = dict(os.environ)
        environment.update(env_spec.get("env_vars") or {})
        python_path = [cwd]
        for module in env_spec.get("py_modules") or ():
            python_path.append(_runtime_env.module_search_path(module))
        if environment.get("PYTHONPATH"):
            python_path.append(environment["PYTHONPATH"])
        # `python` in the entrypoint is the interpreter the cluster runs on.
        bin_dir = os.path.dirname(sys.executable)
        environment.update(
            {
                "PATH": os.pathsep.join([bin_dir, environment.get("PATH", "")]),
                "PYTHONPATH": os.pathsep.join(python_path),
                "PYTHONUNBUFFERED": "1",
                "NEBULA_ADDRESS": self.cluster_address,
                _auth.TOKEN_ENV: self.token,
                "NEBULA_JOB_SUBMISSION_ID": info.submission_id,
                "NEBULA_JOB_RUNTIME_ENV": json.dumps(env_spec),
            }
        )
        os.makedirs(self.log_dir, exist_ok=True)
        with open(info.log_path, "ab") as log:
            return subprocess.Popen(
                ["/bin/sh", "-c", info.entrypoint],
                cwd=cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _fetch_package(self, name: str) -> bytes | None:
        return self.conn.kv_get(_runtime_env.PACKAGE_KV_PREFIX + name)

    def _supervise(self, submission_id: str) -> None:
        with self._lock:
            process = self._processes[submission_id]
        code = process.wait()
        with self._lock:
            self._processes.pop(submission_id, None)
            stopped = submission_id in self._stopping
            self._stopping.discard(submission_id)
            info = self._jobs[submission_id]
        if stopped:
            final = replace(info, status="STOPPED", message="the job was stopped")
        elif code == 0:
            final = replace(info, status="SUCCEEDED", message="the job finished")
        else:
            final = replace(
                info,
                status="FAILED",
                error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
                message=f"the job's entrypoint command failed with exit code {code}",
            )
        self._save(replace(final, end_time=time.time(), driver_exit_code=code))

    # ------------------------------------------------------------- stop, logs

    def stop(self, submission_id: str) -> bool:
        """Stop a running job (SIGTERM to its process group, SIGKILL after a grace period);
        False if it was not running."""
        if self._fetch(submission_id) is None:
            raise KeyError(submission_id)
        with self._lock:
            process = self._processes.get(submission_id)
            if process is None:
                return False
            self._stopping.add(submission_id)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)

        def kill_later() -> None:
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)

        threading.Thread(target=kill_later, daemon=True).start()
        return True

    def logs(self, submission_id: str, offset: int = 0) -> tuple[str, int]:
        """The job's output from byte ``offset`` on, and the offset after it."""
        info = self._fetch(submission_id)
        if info is None:
            raise KeyError(submission_id)
        path = info.log_path or os.path.join(self.log_dir, job_log_name(submission_id))
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(8 << 20)
        except FileNotFoundError:
            return "", offset
        return data.decode(errors="replace"), offset + len(data)

    def shutdown(self) -> None:
        """Stop the jobs still running (the head is going away), and wait for them."""
        with self._lock:
            running = list(self._processes.items())
            self._stopping.update(submission_id for submission_id, _ in running)
        for _submission_id, process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for _submission_id, process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(2.0)
