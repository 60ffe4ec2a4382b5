"""The tune workloads of the issue, for Nebula or Ray Tune (run in that framework's venv).

    python bench_tune.py nebula|ray [--workload A|B] [--json OUT]

(A) 200 trials of a trivial function trainable reporting 10 results each, 2 at a time.
(B) 8 trials reporting as fast as they can for 10 s; every result is persisted (result.json,
    progress.csv and the TensorBoard file by default) and counted back from result.json.

Both use each framework's defaults (actor reuse on for function trainables, the default
loggers and progress output), with the cluster started before the clock starts. The
printed JSON line has the wall time of ``Tuner.fit()`` and, for B, results per second.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import sys
import tempfile
import time


def _framework(name: str):
    if name == "ray":
        import ray as runtime
        from ray import tune
    else:
        import nebula as runtime
        from nebula import tune
    return runtime, tune


def trivial(config):
    from_framework = config["tune_module"]
    tune = __import__(from_framework, fromlist=["report"])
    for step in range(10):
        tune.report({"score": config["x"] * step})


def as_fast_as_possible(config):
    tune = __import__(config["tune_module"], fromlist=["report"])
    end = time.time() + config["seconds"]
    step = 0
    while time.time() < end:
        step += 1
        tune.report({"step": step, "value": step * 0.5})


def _count_results(path: str) -> int:
    total = 0
    for file in glob.glob(os.path.join(path, "*", "result.json")):
        with open(file) as f:
            total += sum(1 for _ in f)
    return total


def run_a(runtime, tune, module: str, storage: str, reuse: bool | None) -> dict:
    runtime.init(num_cpus=2)
    config_kw = {} if reuse is None else {"reuse_actors": reuse}
    tuner = tune.Tuner(
        trivial,
        param_space={"x": tune.uniform(0, 1), "tune_module": module},
        tune_config=tune.TuneConfig(num_samples=200, max_concurrent_trials=2, **config_kw),
        run_config=tune.RunConfig(name="bench_a", storage_path=storage),
    )
    start = time.perf_counter()
    results = tuner.fit()
    elapsed = time.perf_counter() - start
    persisted = _count_results(os.path.join(storage, "bench_a"))
    runtime.shutdown()
    assert len(results) == 200 and results.num_errors == 0, results.errors[:1]
    return {"workload": "A", "seconds": elapsed, "trials": 200, "results_persisted": persisted}


def run_b(runtime, tune, module: str, storage: str, seconds: float) -> dict:
    runtime.init(num_cpus=8)
    tuner = tune.Tuner(
        as_fast_as_possible,
        param_space={
            "i": tune.grid_search(list(range(8))),
            "seconds": seconds,
            "tune_module": module,
        },
        run_config=tune.RunConfig(name="bench_b", storage_path=storage),
    )
    start = time.perf_counter()
    results = tuner.fit()
    elapsed = time.perf_counter() - start
    persisted = _count_results(os.path.join(storage, "bench_b"))
    reported = sum(int(r.metrics["step"]) for r in results)
    runtime.shutdown()
    return {
        "workload": "B",
        "seconds": elapsed,
        "results_reported": reported,
        "results_persisted": persisted,
        "results_per_s": persisted / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("framework", choices=["nebula", "ray"])
    parser.add_argument("--workload", choices=["A", "B"], required=True)
    parser.add_argument("--reuse-actors", choices=["default", "true", "false"], default="default")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", help="append the result line to this file")
    args = parser.parse_args()
    runtime, tune = _framework(args.framework)
    module = "ray.tune" if args.framework == "ray" else "nebula.tune"
    storage = tempfile.mkdtemp(prefix=f"bench_tune_{args.framework}_")
    reuse = {"default": None, "true": True, "false": False}[args.reuse_actors]
    # Both frameworks print progress tables by default; keep the numbers readable.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        if args.workload == "A":
            record = run_a(runtime, tune, module, storage, reuse)
        else:
            record = run_b(runtime, tune, module, storage, args.seconds)
    record["framework"] = args.framework
    record["reuse_actors"] = args.reuse_actors
    line = json.dumps(record)
    print(line)
    if args.json:
        with open(args.json, "a") as file:
            file.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
