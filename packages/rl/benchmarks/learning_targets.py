"""The full learning targets, each run until its evaluation return (10 episodes, greedy
actions) reaches the target: PPO CartPole >= 450, DQN CartPole >= 450, IMPALA CartPole >= 400,
PPO Pendulum >= -250, SAC Pendulum >= -250. One script for both libraries: with
``--lib rllib`` the same configs are built from ``ray.rllib`` (run it with RLlib's Python),
which is all a Ray user changes. Each run is a fresh process holding ``/work/bench.lock``;
prints one JSON line per run and, with ``--table``, a markdown table of them all::

    python packages/rl/benchmarks/learning_targets.py --seeds 3 \
        --peer /work/peers/ray/bin/python --table [NAME ...]
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
from collections.abc import Callable
from typing import Any

LOCK = "/work/bench.lock"
PPOConfig: Any = None
DQNConfig: Any = None
IMPALAConfig: Any = None
SACConfig: Any = None
DefaultModelConfig: Any = None


def use(lib: str) -> None:
    """Bind the config classes of ``lib`` ("nebula" or "rllib"): the only line that differs."""
    global PPOConfig, DQNConfig, IMPALAConfig, SACConfig, DefaultModelConfig
    if lib == "rllib":
        import ray
        from ray.rllib.algorithms.dqn import DQNConfig
        from ray.rllib.algorithms.impala import IMPALAConfig
        from ray.rllib.algorithms.ppo import PPOConfig
        from ray.rllib.algorithms.sac import SACConfig
        from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    else:
        from nebula.rl import DQNConfig, IMPALAConfig, PPOConfig, SACConfig
        from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig


GREEDY = {"explore": False}


def ppo_cartpole() -> Any:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=16, rollout_fragment_length=64)
        .training(
            lr=[[0, 2e-3], [100_000, 0.0]],
            gamma=0.98,
            lambda_=0.8,
            train_batch_size=2048,
            minibatch_size=512,
            num_epochs=10,
            clip_param=0.2,
            vf_loss_coeff=0.5,
            vf_clip_param=float("inf"),
            use_kl_loss=False,
            grad_clip=0.5,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], vf_share_layers=False))
    )


def dqn_cartpole() -> Any:
    return (
        DQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, rollout_fragment_length=256)
        .training(
            lr=2.3e-3,
            train_batch_size=64,
            training_intensity=32,
            gamma=0.99,
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 100_000},
            num_steps_sampled_before_learning_starts=1000,
            target_network_update_freq=10,
            epsilon=[(0, 1.0), (8000, 0.04)],
            double_q=False,
            dueling=False,
            hiddens=[],
            grad_clip=10.0,
        )
        .rl_module(
            model_config=DefaultModelConfig(fcnet_hiddens=[256, 256], fcnet_activation="relu")
        )
        .reporting(min_sample_timesteps_per_iteration=2048)
    )


def impala_cartpole() -> Any:
    return (
        IMPALAConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=8, rollout_fragment_length=50)
        .training(
            lr=1e-3, train_batch_size=800, vf_loss_coeff=0.5, entropy_coeff=0.0, grad_clip=40.0
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], vf_share_layers=False))
        .reporting(min_time_s_per_iteration=1)
    )


def ppo_pendulum() -> Any:
    return (
        PPOConfig()
        .environment("Pendulum-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=8, rollout_fragment_length=128)
        .training(
            lr=1e-3,
            gamma=0.9,
            lambda_=0.95,
            train_batch_size=2048,
            minibatch_size=256,
            num_epochs=10,
            clip_param=0.2,
            vf_loss_coeff=0.5,
            vf_clip_param=float("inf"),
            use_kl_loss=False,
            grad_clip=0.5,
            entropy_coeff=0.0,
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[64, 64], vf_share_layers=False, free_log_std=True
            )
        )
    )


def sac_pendulum() -> Any:
    return (
        SACConfig()
        .environment("Pendulum-v1")
        .env_runners(num_env_runners=0, rollout_fragment_length=4)
        .training(
            actor_lr=1e-3,
            critic_lr=1e-3,
            alpha_lr=1e-3,
            train_batch_size=256,
            training_intensity=256,
            num_steps_sampled_before_learning_starts=1000,
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 100_000},
            q_model_config={"fcnet_hiddens": [256, 256]},
            policy_model_config={"fcnet_hiddens": [256, 256]},
        )
        .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=1000)
    )


TARGETS: dict[str, tuple[Callable[[], Any], float, int]] = {
    # name: (config, target evaluation return, env-step budget)
    "PPO CartPole-v1": (ppo_cartpole, 450.0, 400_000),
    "DQN CartPole-v1": (dqn_cartpole, 450.0, 200_000),
    "IMPALA CartPole-v1": (impala_cartpole, 400.0, 1_000_000),
    "PPO Pendulum-v1": (ppo_pendulum, -250.0, 1_000_000),
    "SAC Pendulum-v1": (sac_pendulum, -250.0, 60_000),
}


def _eval_return(result: dict[str, Any]) -> float:
    """The evaluation's mean return (RLlib nests ``evaluate()``'s under ``evaluation``)."""
    runners = result.get("evaluation", result).get("env_runners", {})
    return float(runners.get("episode_return_mean", float("nan")))


def run(name: str, seed: int = 0, max_seconds: float = 900.0) -> dict[str, Any]:
    make, target, budget = TARGETS[name]
    start = time.perf_counter()
    config = (
        make()
        .evaluation(evaluation_interval=1_000_000, evaluation_duration=10)
        .evaluation(evaluation_config=GREEDY)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    built = time.perf_counter() - start
    best = float("-inf")
    steps = 0
    iteration = 0
    try:
        while steps < budget and time.perf_counter() - start < max_seconds:
            result = algo.train()
            iteration += 1
            steps = result["num_env_steps_sampled_lifetime"]
            training = result["env_runners"].get("episode_return_mean", float("-inf"))
            # Evaluate once training returns come near the target, and every third iteration:
            # exploration and the 100-episode window keep DQN's training returns far below
            # what its greedy policy already does.
            if training < target - 100 and iteration % 3:
                continue
            score = _eval_return(algo.evaluate())
            best = max(best, score)
            if score >= target:
                break
    finally:
        algo.stop()
    return {
        "run": name,
        "seed": seed,
        "target": target,
        "eval_return": round(best, 1),
        "reached": best >= target,
        "env_steps": int(steps),
        "start_up_s": round(built, 1),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _one(args: argparse.Namespace) -> None:
    use(args.lib)
    print(json.dumps({"lib": args.lib, **run(args.name, args.seed, args.max_seconds)}), flush=True)


def _launch(python: str, lib: str, name: str, seed: int, max_seconds: float) -> dict[str, Any]:
    """One run in a fresh process, under the benchmark lock."""
    cmd = [python, __file__, "--one", "--lib", lib, "--seed", str(seed)]
    cmd += ["--max-seconds", str(max_seconds), name]
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        launched = time.perf_counter()
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=max_seconds + 120,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"lib": lib, "run": name, "seed": seed, "error": "timed out"}
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            # The process's whole life: interpreter, imports and cluster start-up included.
            return {**json.loads(line), "process_s": round(time.perf_counter() - launched, 1)}
    return {"lib": lib, "run": name, "seed": seed, "error": done.stderr.strip()[-400:]}


def _cell(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "not run"
    if any("error" in r for r in rows):
        return "failed: " + next(r["error"] for r in rows if "error" in r).splitlines()[-1][:80]
    reached = [r for r in rows if r["reached"]]
    seconds = ", ".join(f"{r['process_s']:.0f}" if r["reached"] else "-" for r in rows)
    if not reached:
        best = max(r["eval_return"] for r in rows)
        return f"not reached (best {best:g} in {rows[0]['env_steps']:,} steps; s: {seconds})"
    steps = int(statistics.median(r["env_steps"] for r in reached))
    median_s = statistics.median(r["process_s"] for r in reached)
    return f"{len(reached)}/{len(rows)}: {median_s:.0f} s, {steps:,} steps (s: {seconds})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", help="runs to make (default: all)")
    parser.add_argument("--lib", default="nebula", choices=("nebula", "rllib"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 of nebula.rl")
    parser.add_argument("--peer-seeds", type=int, default=1, help="seeds of RLlib")
    parser.add_argument("--peer-skip", action="append", default=[], help="runs RLlib skips")
    parser.add_argument("--peer", default=None, help="RLlib's python (compare side by side)")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.name = args.names[0]
        _one(args)
        return
    names = args.names or list(TARGETS)
    rows: list[dict[str, Any]] = []
    for name in names:
        plan = [(sys.executable, "nebula", seed) for seed in range(args.seeds)]
        if args.peer and name not in args.peer_skip:
            plan += [(args.peer, "rllib", seed) for seed in range(args.peer_seeds)]
        for python, lib, seed in plan:
            row = _launch(python, lib, name, seed, args.max_seconds)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.table:
        print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, eval = 10 greedy episodes\n")
        print("Each cell: runs that reached the target / runs; median seconds of the whole process")
        print("(interpreter, imports and cluster start-up included); median env steps; per seed.\n")
        print("| target | nebula.rl | RLlib 2.60 |\n| --- | --- | --- |")
        for name in names:
            _, target, _ = TARGETS[name]
            cells = [
                _cell([r for r in rows if r.get("run") == name and r.get("lib") == lib])
                for lib in ("nebula", "rllib")
            ]
            print(f"| {name} >= {target:g} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
