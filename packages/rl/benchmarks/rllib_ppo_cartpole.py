"""RLlib 2.60 PPO (new API stack) on CartPole-v1 with 2 env runners, the same settings as
``nebula_ppo_cartpole.py``, until the mean return reaches 450. Runs in the RLlib peer venv."""

from __future__ import annotations

import sys

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig


def main(seed: int, target: float = 450.0, max_steps: int = 300_000) -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=16, rollout_fragment_length=64)
        .training(
            lr=[[0, 2e-3], [100_000, 0.0]],
            gamma=0.98,
            lambda_=0.8,
            train_batch_size_per_learner=2048,
            minibatch_size=512,
            num_epochs=10,
            clip_param=0.2,
            vf_loss_coeff=0.5,
            vf_clip_param=float("inf"),
            use_kl_loss=False,
            grad_clip=0.5,
            entropy_coeff=0.0,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], vf_share_layers=False))
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    print("built", flush=True)
    while True:
        result = algo.train()
        steps = result["num_env_steps_sampled_lifetime"]
        if result["env_runners"]["episode_return_mean"] >= target:
            print(f"reached {steps}", flush=True)
            break
        if steps >= max_steps:
            print(f"gave-up {steps}", flush=True)
            break
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]))
