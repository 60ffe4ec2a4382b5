"""The job client: Ray's documented REST routes (``/api/jobs/``, ``/api/packages/``) over
the standard library's HTTP client, so it needs nothing beyond nebula-core.

A local ``working_dir`` (and each local ``py_modules`` entry) is zipped, uploaded once (a
package is named by its content's hash) and replaced by its ``pkg://`` URI; every node
fetches it from the cluster when a task needs it.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

from nebula import _runtime_env

DEFAULT_ADDRESS = "http://127.0.0.1:8265"


class JobStatus(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    def is_terminal(self) -> bool:
        return self in (JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobType(str, enum.Enum):
    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"


class JobDetails(dict[str, Any]):
    """A job's record (``status``, ``entrypoint``, ``message``, ``submission_id``,
    ``job_id``, ``start_time``, ...); reads as a dict or by attribute."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        if name == "status" and value is not None:
            return JobStatus(value)
        return value


def default_address() -> str:
    """``NEBULA_ADDRESS`` if it is an http address, else this machine's cluster's dashboard
    (as ``nebula start --head`` recorded it), else ``http://127.0.0.1:8265``."""
    given = os.environ.get("NEBULA_ADDRESS", "")
    if given.startswith(("http://", "https://")):
        return given
    from nebula._api import services

    info = services.read_address_file() or {}
    return str(info.get("dashboard_url") or DEFAULT_ADDRESS)


class JobSubmissionClient:
    """A client of a cluster's job API.

    ``headers`` go with every request; without an ``Authorization`` header the client sends
    ``NEBULA_CLUSTER_TOKEN`` as a bearer token when it is set (a dashboard that listens
    beyond its machine requires it).
    """

    def __init__(
        self,
        address: str | None = None,
        create_cluster_if_needed: bool = False,
        cookies: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        verify: bool | str | None = True,
        timeout_s: float = 60.0,
    ) -> None:
        address = address or default_address()
        if "://" not in address:
            address = f"http://{address}"
        self.address = address.rstrip("/")
        self._metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._headers = dict(headers or {})
        token = os.environ.get("NEBULA_CLUSTER_TOKEN")
        if token and not any(k.lower() == "authorization" for k in self._headers):
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout_s = timeout_s
        self._request("GET", "/api/version")  # fails early, and clearly, if nothing is there

    # -------------------------------------------------------------- plumbing

    def _request(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.address + path, data=data, method=method)
        for key, value in self._headers.items():
            request.add_header(key, value)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            payload = _decode(exc.read())
            message = payload.get("error") if isinstance(payload, dict) else payload
            if exc.code == 404 and method == "GET" and path.startswith("/api/packages/"):
                return 404, payload
            if exc.code == 401:
                raise PermissionError(
                    f"{self.address} refused the request (401): {message}; set "
                    "NEBULA_CLUSTER_TOKEN to the cluster token (`nebula get-auth-token`)."
                ) from None
            raise RuntimeError(f"{method} {path} failed ({exc.code}): {message}") from None
        except urllib.error.URLError as exc:
            raise ConnectionError(
                f"no Nebula dashboard answers at {self.address} ({exc.reason}); is the "
                "cluster running, and is this its dashboard's address?"
            ) from None

    # ---------------------------------------------------------------- upload

    def _upload(self, directory: str, *, top_level: bool = False) -> str:
        name, data = _runtime_env.pack_directory(directory, top_level=top_level)
        status, _ = self._request("GET", f"/api/packages/pkg/{name}")
        if status != 200:
            self._request("PUT", f"/api/packages/pkg/{name}", raw=data)
        return f"pkg://{name}"

    def _upload_runtime_env(self, runtime_env: dict[str, Any] | None) -> dict[str, Any] | None:
        if not runtime_env:
            return runtime_env
        env = dict(runtime_env)
        working_dir = env.get("working_dir")
        if working_dir and not _runtime_env.is_package_uri(working_dir):
            if not os.path.isdir(working_dir):
                raise ValueError(f"working_dir {working_dir!r} is not a directory.")
            env["working_dir"] = self._upload(working_dir)
        modules = env.get("py_modules")
        if modules:
            env["py_modules"] = [
                m if _runtime_env.is_package_uri(m) else self._upload(m, top_level=True)
                for m in modules
            ]
        return env

    # ------------------------------------------------------------------ jobs

    def submit_job(
        self,
        *,
        entrypoint: str,
        job_id: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        submission_id: str | None = None,
        entrypoint_num_cpus: float | None = None,
        entrypoint_num_gpus: float | None = None,
        entrypoint_memory: int | None = None,
        entrypoint_resources: dict[str, float] | None = None,
    ) -> str:
        """Submit ``entrypoint`` (a shell command); returns the job's submission id.

        The entrypoint runs on the head and connects to the cluster with
        ``nebula.init()``; the ``entrypoint_*`` resource arguments are accepted for Ray's
        signature and not reserved.
        """
        body = {
            "entrypoint": entrypoint,
            "submission_id": submission_id or job_id,
            "runtime_env": self._upload_runtime_env(runtime_env),
            "metadata": {**self._metadata, **(metadata or {})},
        }
        _status, reply = self._request("POST", "/api/jobs/", body)
        return str(reply["submission_id"])

    def get_job_info(self, job_id: str) -> JobDetails:
        _status, reply = self._request("GET", f"/api/jobs/{job_id}")
        return JobDetails(reply)

    def list_jobs(self) -> list[JobDetails]:
        _status, reply = self._request("GET", "/api/jobs/")
        return [JobDetails(r) for r in reply]

    def get_job_status(self, job_id: str) -> JobStatus:
        return JobStatus(self.get_job_info(job_id)["status"])

    def get_job_logs(self, job_id: str) -> str:
        _status, reply = self._request("GET", f"/api/jobs/{job_id}/logs")
        return str(reply["logs"])

    def stop_job(self, job_id: str) -> bool:
        _status, reply = self._request("POST", f"/api/jobs/{job_id}/stop")
        return bool(reply["stopped"])

    def delete_job(self, job_id: str) -> bool:
        self._request("DELETE", f"/api/jobs/{job_id}")
        return True

    def iter_job_logs(self, job_id: str, poll_s: float = 0.5) -> Iterator[str]:
        """The job's output as it is written, until the job has ended and all is read."""
        offset = 0
        while True:
            terminal = self.get_job_status(job_id).is_terminal()
            _status, reply = self._request("GET", f"/api/jobs/{job_id}/logs?offset={offset}")
            if reply["logs"]:
                offset = int(reply["offset"])
                yield str(reply["logs"])
            elif terminal:
                return
            else:
                time.sleep(poll_s)

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """``async for chunk in client.tail_job_logs(id)``: the output as it comes."""
        chunks = self.iter_job_logs(job_id)
        while True:
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                return
            yield chunk


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode(errors="replace")
