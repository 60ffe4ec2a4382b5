"""Task events on vs off: every `nebula microbenchmark` line, side by side.

Runs the microbenchmark alternately with ``NEBULA_TASK_EVENTS_ENABLED=1`` and ``=0`` (each
run a fresh local cluster), ``--rounds`` times, and prints the median rate of each line for
both settings and their ratio as a Markdown table. Alternating the settings spreads the
machine's noise evenly over both.

    python packages/core/benchmarks/task_events_overhead.py --rounds 5 --duration 2

Run it alone on the machine (``flock /work/bench.lock ...`` where machines are shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run_once(enabled: bool, duration: float, name_filter: str | None) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        command = [sys.executable, "-m", "nebula._cli", "microbenchmark", "--json", path]
        command += ["--duration", str(duration)]
        if name_filter:
            command += ["--filter", name_filter]
        env = {**os.environ, "NEBULA_TASK_EVENTS_ENABLED": "1" if enabled else "0"}
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return {r["name"]: float(r["rate"]) for r in json.load(f)}
    finally:
        os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--filter", default=None)
    args = parser.parse_args()
    rates: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    for round_no in range(args.rounds):
        order = (True, False) if round_no % 2 == 0 else (False, True)
        for enabled in order:
            for name, rate in run_once(enabled, args.duration, args.filter).items():
                rates[enabled].setdefault(name, []).append(rate)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print("| line | events off | events on | on / off |")
    print("| --- | ---: | ---: | ---: |")
    for name, off in rates[False].items():
        on = rates[True].get(name)
        if not on:
            continue
        off_median, on_median = statistics.median(off), statistics.median(on)
        print(f"| {name} | {off_median:,.1f} | {on_median:,.1f} | {on_median / off_median:.3f} |")


if __name__ == "__main__":
    main()
