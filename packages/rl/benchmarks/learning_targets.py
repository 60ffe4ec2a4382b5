"""The full learning targets, each run until its evaluation return (10 episodes, greedy
actions) reaches the target: PPO CartPole >= 450, DQN CartPole >= 450, IMPALA CartPole >= 400,
PPO Pendulum >= -250, SAC Pendulum >= -250. Prints one JSON line per run.

    flock /work/bench.lock python packages/rl/benchmarks/learning_targets.py [NAME ...]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

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
            vf_clip_param=None,
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
            replay_buffer_config={"type": "ReplayBuffer", "capacity": 100_000},
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
            vf_clip_param=None,
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
            replay_buffer_config={"type": "ReplayBuffer", "capacity": 100_000},
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


def run(name: str, seed: int = 0) -> dict[str, Any]:
    make, target, budget = TARGETS[name]
    start = time.perf_counter()
    config = (
        make().evaluation(evaluation_duration=10, evaluation_config=GREEDY).debugging(seed=seed)
    )
    algo = config.build_algo()
    best = float("-inf")
    steps = 0
    try:
        while steps < budget:
            result = algo.train()
            steps = result["num_env_steps_sampled_lifetime"]
            if result["env_runners"]["episode_return_mean"] < target - 100 and steps < budget:
                continue  # evaluate once training returns come near the target
            score = algo.evaluate()["env_runners"]["episode_return_mean"]
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
        "env_steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
    }


if __name__ == "__main__":
    for name in sys.argv[1:] or list(TARGETS):
        print(json.dumps(run(name)), flush=True)
