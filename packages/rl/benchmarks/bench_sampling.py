"""Env steps per second of sampling alone (CartPole-v1, 8 envs per process, a [64, 64] MLP
policy): a plain gymnasium vector-env loop in one process is the limit one core reaches;
nebula.rl's env runners add batched inference, fragments and the round trip to the driver.

    python bench_sampling.py            # prints one JSON line per variant
"""

from __future__ import annotations

import json
import sys
import time

import gymnasium as gym
import numpy as np
import torch

STEPS = 40_000


def plain_loop(with_policy: bool) -> float:
    torch.set_num_threads(1)
    env = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1") for _ in range(8)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs, _ = env.reset(seed=0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 2),
    )
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(STEPS // 8):
        if with_policy:
            with torch.no_grad():
                logits = net(torch.from_numpy(obs.astype(np.float32)))
                actions = torch.distributions.Categorical(logits=logits).sample().numpy()
        else:
            actions = rng.integers(0, 2, 8)
        obs, *_ = env.step(actions)
    return STEPS / (time.perf_counter() - start)


def nebula_runners(num_runners: int) -> float:
    from nebula.rl.algorithms.ppo import PPOConfig
    from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig

    import nebula

    nebula.init(num_cpus=2)
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(
            num_env_runners=num_runners, num_envs_per_env_runner=8, rollout_fragment_length=250
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]))
    )
    algo = config.build_algo()
    group = algo.env_runner_group
    group.sample(250, 1, True, 0)  # warm up: runners started, weights loaded
    per_round = 250 * 8 * max(1, num_runners)
    rounds = max(1, STEPS // per_round)
    start = time.perf_counter()
    for _ in range(rounds):
        group.sample(250, 1, True, 0)
    rate = rounds * per_round / (time.perf_counter() - start)
    algo.stop()
    nebula.shutdown()
    return rate


if __name__ == "__main__":
    variant = sys.argv[1] if len(sys.argv) > 1 else "all"
    runs = {
        "gymnasium loop, random actions": lambda: plain_loop(False),
        "gymnasium loop + torch policy": lambda: plain_loop(True),
        "nebula.rl, 1 env runner": lambda: nebula_runners(1),
        "nebula.rl, 2 env runners": lambda: nebula_runners(2),
    }
    for name, fn in runs.items():
        if variant in ("all", name):
            print(json.dumps({"variant": name, "env_steps_per_s": round(fn())}), flush=True)
