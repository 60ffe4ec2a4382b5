"""HTTP and handle throughput of a no-op deployment: nebula-serve, Ray Serve, bare uvicorn.

    flock /work/bench.lock python packages/serve/benchmarks/compare.py \\
        --ray-python /work/peers/ray/bin/python

Each server runs in its own process on loopback and is loaded by ``wrk`` from another
(2 threads, 32 connections, a warm-up, then the measured run). Before the HTTP load, each
serve driver times ``await handle.remote()`` in a loop. The bare starlette app under uvicorn
is the limit a proxy in front of a replica can approach. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any

HANDLE_SECONDS = 5.0


# ------------------------------------------------------------------ the servers


def _bare(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def noop(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", noop)])
    print(json.dumps({"ready": True}), flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _time_handle(handle: Any) -> float:
    for _ in range(200):
        await handle.remote()
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < HANDLE_SECONDS:
        await handle.remote()
        count += 1
    return count / (time.perf_counter() - start)


def _nebula(port: int, max_ongoing: int | None) -> None:
    import nebula
    from nebula import serve

    nebula.init(num_cpus=4)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    options = {} if max_ongoing is None else {"max_ongoing_requests": max_ongoing}

    @serve.deployment(**options)
    class NoOp:
        async def __call__(self, request: Any = None) -> str:
            return "ok"

    handle = serve.run(NoOp.bind())
    rate = asyncio.run(_time_handle(handle))
    print(json.dumps({"ready": True, "handle_calls_per_s": rate}), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    serve.shutdown()
    nebula.shutdown()


def _ray(port: int, max_ongoing: int | None) -> None:
    import ray
    from ray import serve

    ray.init(num_cpus=4, include_dashboard=False, logging_level="ERROR")
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    options = {} if max_ongoing is None else {"max_ongoing_requests": max_ongoing}

    @serve.deployment(**options)
    class NoOp:
        async def __call__(self, request: Any = None) -> str:
            return "ok"

    handle = serve.run(NoOp.bind(), logging_config={"enable_access_log": False})
    rate = asyncio.run(_time_handle(handle))
    print(json.dumps({"ready": True, "handle_calls_per_s": rate}), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    serve.shutdown()
    ray.shutdown()


# ------------------------------------------------------------------ the driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wrk(url: str, seconds: int, warmup: int) -> dict[str, Any]:
    subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{warmup}s", url], capture_output=True, text=True, check=True
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.MULTILINE))
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {
        "rate": rate,
        "p50": latency.get("50"),
        "p99": latency.get("99"),
        "errors": errors,
        "total": total,
    }


def _run_one(
    label: str, command: list[str], port: int, seconds: int, warmup: int
) -> dict[str, Any]:
    env = dict(os.environ, NEBULA_INCLUDE_DASHBOARD="0", RAY_USAGE_STATS_ENABLED="0")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline() or "{}")
        if not info.get("ready"):
            raise RuntimeError(f"{label} did not start")
        time.sleep(1.0)
        result = _wrk(f"http://127.0.0.1:{port}/", seconds, warmup)
        result["handle"] = info.get("handle_calls_per_s")
        result["label"] = label
        return result
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=["bare", "nebula", "ray"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-ongoing", type=int, default=None)
    parser.add_argument("--ray-python", default="/work/peers/ray/bin/python")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    if args.role == "bare":
        _bare(args.port)
        return
    if args.role == "nebula":
        _nebula(args.port, args.max_ongoing)
        return
    if args.role == "ray":
        _ray(args.port, args.max_ongoing)
        return
    me = os.path.abspath(__file__)
    runs: list[tuple[str, list[str]]] = [
        ("bare starlette + uvicorn", [sys.executable, me, "--role", "bare"]),
        (
            "nebula-serve (max_ongoing_requests=5, default)",
            [sys.executable, me, "--role", "nebula"],
        ),
        (
            "nebula-serve (max_ongoing_requests=64)",
            [sys.executable, me, "--role", "nebula", "--max-ongoing", "64"],
        ),
    ]
    if not args.skip_ray:
        runs += [
            (
                "Ray Serve 2.60 (max_ongoing_requests=5, default)",
                [args.ray_python, me, "--role", "ray"],
            ),
            (
                "Ray Serve 2.60 (max_ongoing_requests=64)",
                [args.ray_python, me, "--role", "ray", "--max-ongoing", "64"],
            ),
        ]
    results = []
    for label, command in runs:
        port = _free_port()
        result = _run_one(label, [*command, "--port", str(port)], port, args.seconds, args.warmup)
        print(json.dumps(result), file=sys.stderr, flush=True)
        results.append(result)
    print("| server | HTTP req/s | p50 | p99 | errors | handle calls/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        handle = f"{r['handle']:,.0f}" if r["handle"] else "n/a"
        print(
            f"| {r['label']} | {r['rate']:,.0f} | {r['p50']} | {r['p99']} | "
            f"{r['errors']} of {r['total']:,} | {handle} |"
        )


if __name__ == "__main__":
    main()
