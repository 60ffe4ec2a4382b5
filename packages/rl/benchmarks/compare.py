"""Time to PPO CartPole-v1 450 (start-up included): nebula.rl, Stable-Baselines3 and RLlib 2.60,
3 seeds each, plus sampling throughput; writes RESULTS.md beside this file.

Each run is a fresh process, timed from its launch to the line saying the mean return of the
last 100 episodes reached 450; each holds ``/work/bench.lock`` (flock) while it runs, so
benchmarks of other packages never overlap with it. Peers run from their own virtual
environments (never dependencies of nebula-rl)::

    python packages/rl/benchmarks/compare.py [--seeds 3] [--sb3 /work/peers/sb3/bin/python]
        [--rllib /work/peers/rllib/bin/python]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = "/work/bench.lock"


def locked_run(cmd: list[str], timeout: float) -> tuple[float | None, float | None, int | None]:
    """(seconds to 'built', seconds to 'reached', env steps) of one run, under the lock."""
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            built = reached = steps = None
            assert proc.stdout is not None
            for line in proc.stdout:
                now = time.perf_counter() - start
                if line.startswith("built"):
                    built = now
                elif line.startswith("reached"):
                    reached, steps = now, int(float(line.split()[1]))
                    break
                elif line.startswith("gave-up"):
                    steps = int(float(line.split()[1]))
                    break
                if now > timeout:
                    break
            proc.kill() if reached is None else None
            proc.wait(timeout=120)
            return built, reached, steps
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def median(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if len(got) < len(values):
        return f"{statistics.median(got):.1f} ({len(values) - len(got)} failed)" if got else "-"
    return f"{statistics.median(got):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sb3", default="/work/peers/sb3/bin/python")
    parser.add_argument("--rllib", default="/work/peers/rllib/bin/python")
    parser.add_argument("--only", default=None, help="nebula, sb3 or rllib")
    args = parser.parse_args()
    systems = {
        "nebula.rl PPO (2 env runners)": [sys.executable, str(HERE / "nebula_ppo_cartpole.py")],
        "Stable-Baselines3 PPO (1 process, rl-zoo3 settings)": [
            args.sb3,
            str(HERE / "sb3_ppo_cartpole.py"),
        ],
        "RLlib 2.60 PPO (2 env runners)": [args.rllib, str(HERE / "rllib_ppo_cartpole.py")],
    }
    rows = []
    for name, cmd in systems.items():
        if args.only and args.only not in name.lower():
            continue
        runs = [locked_run([*cmd, str(seed)], timeout=600) for seed in range(args.seeds)]
        for seed, run in enumerate(runs):
            print(
                json.dumps(
                    {
                        "system": name,
                        "seed": seed,
                        "built_s": run[0],
                        "reached_s": run[1],
                        "env_steps": run[2],
                    }
                ),
                flush=True,
            )
        rows.append(
            (
                name,
                median([r[1] for r in runs]),
                median([r[0] for r in runs]),
                median([float(r[2]) if r[2] else None for r in runs]),
            )
        )
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sampling = subprocess.run(
            [sys.executable, str(HERE / "bench_sampling.py")],
            capture_output=True,
            text=True,
            timeout=900,
        ).stdout
        fcntl.flock(lock, fcntl.LOCK_UN)
    table = [
        "| system | time to 450 (s) | start-up until built (s) | env steps to 450 |",
        "| --- | --- | --- | --- |",
    ]
    table += [f"| {n} | {t} | {b} | {s} |" for n, t, b, s in rows]
    table += ["", "| sampling (CartPole-v1, 8 envs per process) | env steps/s |", "| --- | --- |"]
    for line in sampling.strip().splitlines():
        item = json.loads(line)
        table.append(f"| {item['variant']} | {item['env_steps_per_s']:,} |")
    text = "\n".join(table) + "\n"
    print(text)
    (HERE / "RESULTS.md").write_text(
        "# nebula.rl benchmark results\n\nMedians of "
        f"{args.seeds} seeds, written by `python packages/rl/benchmarks/compare.py` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs.\n\n" + text
    )


if __name__ == "__main__":
    main()
