"""The dashboard's JSON API: thin handlers over ``nebula._state`` and the job manager.

Routes under ``/api/v0/`` serve the state records the CLI prints (``filter=KEY=VALUE``,
``filter=KEY!=VALUE``, ``limit``, ``detail``); ``/api/jobs/`` and ``/api/packages/`` are
Ray's job REST routes, so Ray's job clients work against a Nebula head.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from nebula import _protocol as p
from nebula import _runtime_env
from nebula._dashboard.history import History
from nebula._dashboard.jobs import JobError, JobManager
from nebula._state import logs, records, timeline
from nebula._state.connection import StateConnection, StateError

_LISTS = {
    "actors": records.actors,
    "nodes": records.nodes,
    "placement_groups": records.placement_groups,
    "workers": records.workers,
    "objects": records.objects,
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _filters(request: Request) -> list[tuple[str, str, str]]:
    found = []
    for text in request.query_params.getlist("filter"):
        for predicate in ("!=", "="):
            key, hit, value = text.partition(predicate)
            if hit and key:
                found.append((key, predicate, value))
                break
        else:
            raise ValueError(f"filter takes KEY=VALUE or KEY!=VALUE, got {text!r}.")
    return found


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


class Api:
    def __init__(self, conn: StateConnection, jobs: JobManager, history: History) -> None:
        self.conn = conn
        self.jobs = jobs
        self.history = history

    async def _run(self, function: Any, *args: Any) -> Response:
        """Run a blocking state call off the event loop; errors become JSON answers."""
        try:
            value = await run_in_threadpool(function, *args)
        except (ValueError, KeyError) as exc:
            return _error(400, str(exc).strip("'\""))
        except StateError as exc:
            return _error(503, str(exc))
        if isinstance(value, Response):
            return value
        return JSONResponse(value)

    # ------------------------------------------------------------------ state

    async def list_kind(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in (*_LISTS, "tasks", "jobs"):
            return _error(404, f"unknown kind {kind!r}")
        try:
            filters = _filters(request)
            limit = int(request.query_params.get("limit", "100"))
            records.check_arguments(filters, limit)
        except ValueError as exc:
            return _error(400, str(exc))
        detail = _flag(request, "detail")

        def gather() -> dict[str, Any]:
            if kind == "tasks":
                found, total, dropped = records.tasks(self.conn, filters, limit, detail)
                return {"result": found, "total": total, "dropped": dropped}
            if kind == "jobs":
                found, total = records.jobs(self.conn, filters, limit)
                return {"result": found, "total": total}
            found, total = records.pick(kind, _LISTS[kind](self.conn), filters, limit, detail)
            return {"result": found, "total": total}

        return await self._run(gather)

    async def task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]

        def attempts() -> Any:
            found = records.task_attempts(self.conn, task_id)
            return found if found else _error(404, f"there is no task {task_id!r}")

        return await self._run(attempts)

    async def summarize(self, request: Request) -> Response:
        function = {
            "tasks": records.task_summary,
            "actors": records.actor_summary,
            "objects": records.object_summary,
        }.get(request.path_params["kind"])
        if function is None:
            return _error(404, "summaries are of tasks, actors or objects")
        return await self._run(function, self.conn)

    async def cluster_status(self, request: Request) -> Response:
        def status() -> dict[str, Any]:
            stores = {s["node_id"]: s for s in records.node_stores(self.conn)}
            nodes = records.nodes(self.conn)
            for node in nodes:
                node["store"] = stores.get(node["node_id"])
            return {
                "nodes": nodes,
                "totals": self.history.samples[-1] if self.history.samples else None,
            }

        return await self._run(status)

    async def history_samples(self, request: Request) -> Response:
        after = float(request.query_params.get("after", "0") or 0)
        return JSONResponse({"samples": self.history.since(after)})

    async def timeline(self, request: Request) -> Response:
        return await self._run(timeline.chrome_trace, self.conn)

    async def stacks(self, request: Request) -> Response:
        return await self._run(records.stacks, self.conn)

    async def log_files(self, request: Request) -> Response:
        node_id = request.query_params.get("node_id")
        return await self._run(records.log_files, self.conn, node_id)

    async def log_file(self, request: Request) -> Response:
        query = request.query_params
        lines = int(query.get("lines", "1000"))

        def read() -> Response:
            pid = query.get("pid")
            target = logs.resolve(
                self.conn,
                node_id=query.get("node_id"),
                filename=query.get("filename"),
                actor_id=query.get("actor_id"),
                task_id=query.get("task_id"),
                pid=int(pid) if pid else None,
                submission_id=query.get("submission_id"),
                suffix=query.get("suffix", "out"),
            )
            found, _offset = logs.read_tail(self.conn, target, lines)
            return PlainTextResponse("\n".join(found) + ("\n" if found else ""))

        return await self._run(read)

    async def metrics_json(self, request: Request) -> Response:
        return await self._run(lambda: list(self.conn.query("metrics", limit=1 << 30).records))

    # ------------------------------------------------------------------- jobs

    async def version(self, request: Request) -> Response:
        from nebula import __version__

        return JSONResponse(
            {"version": "4", "ray_version": __version__, "nebula_version": __version__}
        )

    async def submit_job(self, request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "the body must be a JSON object")
        if not isinstance(body, dict) or "entrypoint" not in body:
            return _error(400, "the body must be a JSON object with an 'entrypoint'")
        submission_id = body.get("submission_id") or body.get("job_id")

        def submit() -> dict[str, Any]:
            try:
                made = self.jobs.submit(
                    body["entrypoint"],
                    submission_id=submission_id,
                    runtime_env=body.get("runtime_env"),
                    metadata=body.get("metadata"),
                )
            except JobError as exc:
                raise ValueError(str(exc)) from None
            return {"job_id": made, "submission_id": made}

        return await self._run(submit)

    async def list_jobs(self, request: Request) -> Response:
        return await self._run(lambda: records.jobs(self.conn, (), 1 << 30)[0])

    async def get_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]

        def info() -> Any:
            try:
                return self.jobs.info(job_id)
            except KeyError:
                return _error(404, f"there is no job {job_id!r}")

        return await self._run(info)

    async def job_logs(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        offset = int(request.query_params.get("offset", "0") or 0)

        def read() -> Any:
            try:
                text, end = self.jobs.logs(job_id, offset)
            except KeyError:
                return _error(404, f"there is no job {job_id!r}")
            return {"logs": text, "offset": end}

        return await self._run(read)

    async def stop_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]

        def stop() -> Any:
            try:
                return {"stopped": self.jobs.stop(job_id)}
            except KeyError:
                return _error(404, f"there is no job {job_id!r}")

        return await self._run(stop)

    async def delete_job(self, request: Request) -> Response:
        return _error(
            405, "finished jobs are kept as the cluster's history; they cannot be deleted"
        )

    async def package_exists(self, request: Request) -> Response:
        name = request.path_params["name"]

        def exists() -> Response:
            key = _runtime_env.PACKAGE_KV_PREFIX + _runtime_env.package_name(f"pkg://{name}")
            found = self.conn.kv_get(key) is not None
            return JSONResponse({"exists": found}, status_code=200 if found else 404)

        return await self._run(exists)

    async def upload_package(self, request: Request) -> Response:
        name = request.path_params["name"]
        data = await request.body()
        if len(data) > _runtime_env.MAX_PACKAGE_BYTES:
            return _error(413, f"packages are limited to {_runtime_env.MAX_PACKAGE_BYTES} bytes")

        def store() -> dict[str, Any]:
            key = _runtime_env.PACKAGE_KV_PREFIX + _runtime_env.package_name(f"pkg://{name}")
            reply = self.conn.call(
                self.conn.control_store, lambda rid, to: p.KvPut(rid, to, key, data, False)
            )
            assert isinstance(reply, p.KvReply)
            return {"uri": f"pkg://{name}", "stored": reply.ok}

        return await self._run(store)
