"""Run `nebula microbenchmark` and `ray microbenchmark` side by side and write RESULTS.md.

Ray is only a yardstick: install it in a separate virtual environment and point
``--ray-python`` at that environment's interpreter, e.g.::

    python3 -m venv /tmp/rayenv && /tmp/rayenv/bin/pip install "ray==2.60.0"
    python3 benchmarks/compare_ray.py --ray-python /tmp/rayenv/bin/python

Besides the microbenchmark lines it measures start-up (``init`` plus one task, in a fresh
interpreter) and the unique memory (USS) of an idle 2-CPU local cluster's processes. With
``--scaling`` it also runs Nebula's lines on a 1-CPU cluster, to show how each line grows
with the CPUs it is given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

LINE = re.compile(r"^(?P<name>.+?) per second (?P<mean>[\d.]+) \+- (?P<sd>[\d.]+)\s*$")

STARTUP = {
    "nebula": "import nebula\nnebula.init(num_cpus=2)\n@nebula.remote\ndef f():\n    return 1\n"
    "assert nebula.get(f.remote()) == 1\nnebula.shutdown()\n",
    "ray": "import ray\nray.init(num_cpus=2, include_dashboard=False)\n@ray.remote\ndef f():\n"
    "    return 1\nassert ray.get(f.remote()) == 1\nray.shutdown()\n",
}

IDLE_MEMORY = """
import os, time, psutil
import {module} as lib
lib.init(num_cpus=2{extra})
time.sleep(5)
me = psutil.Process()
total = me.memory_full_info().uss
procs = me.children(recursive=True)
for p in procs:
    try:
        total += p.memory_full_info().uss
    except psutil.Error:
        pass
print(len(procs) + 1, total)
lib.shutdown()
"""


def run_lines(command: list[str], env: dict[str, str], timeout: float) -> dict[str, float]:
    out = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    rates = {}
    for line in out.stdout.splitlines():
        match = LINE.match(line.strip())
        if match:
            rates[match["name"]] = float(match["mean"])
    if not rates:
        raise RuntimeError(f"{command[0]} printed no benchmark lines:\n{out.stdout}\n{out.stderr}")
    return rates


NOTES = [
    "Ray's `client:` lines measure its remote-client mode (Ray Client), which Nebula does not "
    "have; they are not targets.",
    "Both put-gigabytes workloads put arrays of zeros, as Ray's do: every source page is the "
    "kernel's one zero page, so reading them costs little and the copy runs faster than "
    "memory. A put of real data copies once at memory bandwidth (about 25 GB/s here, with "
    "two threads).",
]

# Lines where the target is twice Ray's rate (the synchronous round trips).
TWICE = ("single client tasks sync", "1:1 actor calls sync")


def startup_seconds(python: str, script: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        timer = (
            "import time, subprocess, sys\nstart = time.perf_counter()\n"
            f"subprocess.run([sys.executable, '-c', {script!r}], check=True)\n"
            "print(time.perf_counter() - start)\n"
        )
        out = subprocess.run(
            [python, "-c", timer], capture_output=True, text=True, timeout=300, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def idle_memory(python: str, module: str, extra: str) -> tuple[int, int]:
    script = textwrap.dedent(IDLE_MEMORY.format(module=module, extra=extra))
    out = subprocess.run(
        [python, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    processes, uss = out.stdout.strip().splitlines()[-1].split()
    return int(processes), int(uss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ray-python", required=True, help="python of the Ray environment")
    parser.add_argument("--filter", default="", help="only lines containing this text")
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    parser.add_argument(
        "--scaling", action="store_true", help="also run Nebula's lines on a 1-CPU cluster"
    )
    args = parser.parse_args()

    env = dict(os.environ)
    if args.filter:
        env["TESTS_TO_RUN"] = args.filter
    with tempfile.TemporaryDirectory() as tmp:
        json_path = os.path.join(tmp, "nebula.json")
        nebula_cmd = [sys.executable, "-m", "nebula._cli", "microbenchmark", "--json", json_path]
        if args.filter:
            nebula_cmd += ["--filter", args.filter]
        nebula = run_lines(nebula_cmd, env, timeout=3600)
        one_cpu = (
            run_lines([*nebula_cmd, "--num-cpus", "1"], env, timeout=3600) if args.scaling else {}
        )
    ray_bin = str(Path(args.ray_python).with_name("ray"))
    ray = run_lines([ray_bin, "microbenchmark"], env, timeout=3600)

    nebula_start = startup_seconds(sys.executable, STARTUP["nebula"])
    ray_start = startup_seconds(args.ray_python, STARTUP["ray"])
    nebula_procs, nebula_uss = idle_memory(sys.executable, "nebula", "")
    ray_procs, ray_uss = idle_memory(args.ray_python, "ray", ", include_dashboard=False")

    rows, short = [], []
    cpus = os.cpu_count() or 1
    for name in ray:
        mine = nebula.get(name)
        if not mine:
            rows.append(f"| {name} | n/a | {ray[name]:,.1f} | - |" + (" |" if one_cpu else ""))
            continue
        ratio = mine / ray[name]
        target = 2.0 if name in TWICE else 1.0
        if ratio < target:
            short.append(f"{name} ({ratio:.2f}x, target {target:.0f}x)")
        row = f"| {name} | {mine:,.1f} | {ray[name]:,.1f} | {ratio:.2f}x |"
        if one_cpu:
            single = one_cpu.get(name)
            row += f" {mine / single:.2f}x |" if single else " - |"
        rows.append(row)
    scaling_head = f" {cpus} CPUs / 1 CPU |" if one_cpu else ""
    scaling_rule = " ---: |" if one_cpu else ""
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    today = datetime.date.today().isoformat()
    text = [
        "# Nebula vs Ray: microbenchmarks",
        "",
        f"Produced by `benchmarks/compare_ray.py` on {today}; machine: {machine}.",
        "Both ran in the same session on the same machine; rates are per second (higher is "
        "better), ratio = Nebula / Ray.",
        "",
        f"| line | Nebula | Ray 2.60 | ratio |{scaling_head}",
        f"| --- | ---: | ---: | ---: |{scaling_rule}",
        *rows,
        "",
        "| start-up and footprint | Nebula | Ray 2.60 | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| init + first task (s, median of 5) | {nebula_start:.2f} | {ray_start:.2f} | "
        f"{nebula_start / ray_start:.2f}x |",
        f"| idle 2-CPU cluster, processes | {nebula_procs} | {ray_procs} | |",
        f"| idle 2-CPU cluster, USS (MiB) | {nebula_uss / 2**20:.0f} | {ray_uss / 2**20:.0f} | "
        f"{nebula_uss / ray_uss:.2f}x |",
        "",
        "Targets: every line at least Ray's rate, twice it on the synchronous task and actor "
        "round trips; start-up at most 0.2x, idle memory at most 0.33x of Ray's.",
        "Short of a target on this run: " + ("; ".join(short) if short else "none") + ".",
        "",
        *NOTES,
        "",
    ]
    if one_cpu:
        text[-1:-1] = [
            f"The last column is each Nebula line on {cpus} CPUs over the same line on a "
            "1-CPU cluster: above 1x the line uses the extra CPU; about 1x means it is bound "
            "by one process (the driver) rather than by the workers.",
            "",
        ]
    Path(args.out).write_text("\n".join(text))
    print("\n".join(text))
    json.dump({"nebula": nebula, "ray": ray}, sys.stderr)


if __name__ == "__main__":
    main()
