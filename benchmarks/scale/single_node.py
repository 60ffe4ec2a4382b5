"""Nebula and Ray side by side on Ray's single-node scale workloads; writes a table.

Each line runs in a fresh interpreter per library (Nebula first, then Ray), under
``flock /work/bench.lock`` when that lock exists, with a time limit; a run that fails or
passes its limit is reported as such. Usage::

    python benchmarks/scale/single_node.py --ray-python /work/peers/ray/bin/python
    python benchmarks/scale/single_node.py --quick   # sizes / 100, a smoke run

``--large-gib`` scales the large-object lines down on a machine with less memory
(they need about 1.1x the size in RAM for the store).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOCK = "/work/bench.lock"


def lines(large_gib: int, quick: bool) -> list[tuple[str, str, int, int | None]]:
    """(label, workload, Nebula's size, Ray's size or None when Ray is not run)."""
    d = 100 if quick else 1
    return [
        ("one task, 10,000 list args by value", "many_args", 10000 // d, 10000 // d),
        ("one task, 10,000 ObjectRef args", "many_ref_args", 10000 // d, 10000 // d),
        ("one task, num_returns=3,000", "many_returns", 3000 // d, 3000 // d),
        ("one task, num_returns=10,000", "many_returns", 10000 // d, 10000 // d),
        ("one get of 10,000 objects", "get_many", 10000 // d, 10000 // d),
        ("100,000 queued tasks, drained", "queued_tasks", 100000 // d, 100000 // d),
        ("1,000,000 queued tasks, drained", "queued_tasks", 1000000 // d, None),
        (f"{large_gib} GiB array put+get (fits)", "large_object", large_gib, large_gib),
        (
            f"{large_gib} GiB array put+get (store of half: to disk)",
            "large_object_spilled",
            large_gib,
            large_gib,
        ),
    ]


def run_one(python: str, lib: str, workload: str, size: int, timeout: float) -> dict[str, Any]:
    command = [python, str(HERE / "workloads.py"), "--lib", lib, "--workload", workload]
    command += ["--size", str(size)]
    if os.path.exists(LOCK) and shutil.which("flock"):
        command = ["flock", LOCK, *command]
    env = dict(os.environ, NEBULA_INCLUDE_DASHBOARD="0", RAY_DISABLE_USAGE_STATS="1")
    started = time.monotonic()
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"status": f"no result after {timeout:.0f} s"}
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            result["status"] = "ok"
            return result
    tail = (out.stderr.strip().splitlines() or ["?"])[-1][:160]
    return {"status": f"failed (exit {out.returncode}): {tail}", "wall": time.monotonic() - started}


def _cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "not run"
    if result["status"] != "ok":
        return result["status"]
    return f"{result['seconds']:.2f} s"


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| workload | Nebula | Ray 2.60 | Ray / Nebula time |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        neb, ray = row["nebula"], row["ray"]
        ratio = ""
        same_size = row["nebula_size"] == row["ray_size"]
        if neb and ray and neb["status"] == ray["status"] == "ok" and same_size:
            ratio = f"{ray['seconds'] / neb['seconds']:.2f}x"
        label = row["label"]
        if row["ray_size"] is None:
            label += " (Ray: see the 100,000 line)"
        out.append(f"| {label} | {_cell(neb)} | {_cell(ray)} | {ratio} |")
    memory = [r for r in rows if r["workload"] == "queued_tasks"]
    if memory:
        out += ["", "| queued tasks | Nebula bytes/task | Ray bytes/task |"]
        out += ["| --- | ---: | ---: |"]
        for row in memory:
            neb, ray = row["nebula"], row["ray"]
            n = f"{neb['bytes_per_task']:,.0f}" if neb and neb["status"] == "ok" else "-"
            r = f"{ray['bytes_per_task']:,.0f}" if ray and ray["status"] == "ok" else "-"
            out.append(f"| {row['nebula_size']:,} | {n} | {r} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ray-python", default="/work/peers/ray/bin/python")
    parser.add_argument("--nebula-python", default=sys.executable)
    parser.add_argument("--large-gib", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", default=str(HERE / "single_node.json"))
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    rows = []
    for label, workload, neb_size, ray_size in lines(args.large_gib, args.quick):
        if only and workload not in only:
            continue
        row: dict[str, Any] = {
            "label": label,
            "workload": workload,
            "nebula_size": neb_size,
            "ray_size": ray_size,
        }
        row["nebula"] = run_one(args.nebula_python, "nebula", workload, neb_size, args.timeout)
        row["ray"] = (
            run_one(args.ray_python, "ray", workload, ray_size, args.timeout)
            if ray_size is not None and os.path.exists(args.ray_python)
            else None
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
