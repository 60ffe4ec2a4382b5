"""The dashboard's web application: the page, its JSON API, the job API and ``/metrics``.

Access: on a loopback address anyone on this machine may use it (as with the cluster's own
ports, where the token file is what guards); on any other address every request must carry
the cluster token as a bearer token (``Authorization: Bearer <token>``). A browser signs in
once with the token (``/?token=...`` or the sign-in form), which sets a same-site cookie;
the cookie is honoured for reading only, so another site cannot make a signed-in browser
submit or stop a job. A request without the token gets 401 and runs nothing.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nebula._dashboard.api import Api

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
COOKIE = "nebula_token"
SAFE_METHODS = ("GET", "HEAD")

_SIGN_IN = """<!doctype html><html><head><meta charset="utf-8"><title>Nebula: sign in</title>
<style>body{font:15px system-ui,sans-serif;background:#0f172a;color:#e2e8f0;display:flex;
justify-content:center;padding-top:15vh}form{background:#1e293b;padding:2em;border-radius:8px;
width:26em}input{width:100%;padding:.5em;margin:.8em 0;box-sizing:border-box}
button{padding:.5em 1.2em}</style></head><body><form method="get" action="/">
<h2>Nebula dashboard</h2><p>This dashboard listens beyond its machine: enter the cluster
token (<code>nebula get-auth-token</code> prints it).</p>
<input name="token" type="password" placeholder="cluster token" autofocus>
<button type="submit">Sign in</button></form></body></html>"""


def _authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return request.method in SAFE_METHODS and bool(cookie) and hmac.compare_digest(cookie, token)


class TokenAuth(BaseHTTPMiddleware):
    def __init__(self, app: object, token: str) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.token = token

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.query_params.get("token")
        if request.url.path == "/" and given is not None:
            if not hmac.compare_digest(given, self.token):
                return HTMLResponse(_SIGN_IN, status_code=401)
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict")
            return response
        if _authorized(request, self.token):
            return await call_next(request)
        if request.url.path == "/":
            return HTMLResponse(_SIGN_IN, status_code=401)
        return JSONResponse(
            {
                "error": "this dashboard needs the cluster token: send 'Authorization: Bearer "
                "<token>' (`nebula get-auth-token` prints it)"
            },
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )


def build_app(api: Api, *, token: str | None, metrics: Callable[[], bytes]) -> Starlette:
    """The application; ``token``: require it on every request (None: loopback, open)."""

    async def index(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    async def prometheus(request: Request) -> Response:
        body = await run_in_threadpool(metrics)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    routes = [
        Route("/", index),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/metrics", prometheus),
        Route("/api/version", api.version),
        Route("/api/cluster_status", api.cluster_status),
        Route("/api/cluster_status/history", api.history_samples),
        Route("/api/v0/timeline", api.timeline),
        Route("/api/v0/stacks", api.stacks),
        Route("/api/v0/logs", api.log_files),
        Route("/api/v0/logs/file", api.log_file),
        Route("/api/v0/metrics", api.metrics_json),
        Route("/api/v0/{kind}/summarize", api.summarize),
        Route("/api/v0/tasks/{task_id}", api.task),
        Route("/api/v0/{kind}", api.list_kind),
        Route("/api/jobs/", api.list_jobs, methods=["GET"]),
        Route("/api/jobs/", api.submit_job, methods=["POST"]),
        Route("/api/jobs/{job_id}", api.get_job, methods=["GET"]),
        Route("/api/jobs/{job_id}", api.delete_job, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/logs", api.job_logs, methods=["GET"]),
        Route("/api/jobs/{job_id}/stop", api.stop_job, methods=["POST"]),
        Route("/api/packages/{protocol}/{name}", api.package_exists, methods=["GET"]),
        Route("/api/packages/{protocol}/{name}", api.upload_package, methods=["PUT"]),
    ]
    app = Starlette(routes=routes)
    if token is not None:
        app.add_middleware(TokenAuth, token=token)
    return app
