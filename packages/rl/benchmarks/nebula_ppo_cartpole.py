"""PPO on CartPole-v1 with 2 env runners until the mean return of the last 100 episodes
reaches 450; prints ``reached <env steps>`` then exits. Run by ``compare.py``.

The hyperparameters start from rl-zoo3's for CartPole PPO (lambda 0.8, gamma 0.98, clip 0.2,
a linearly falling lr, [64, 64] tanh networks) with fewer, larger rounds of work: each
iteration samples 2 runners x 16 envs x 64 steps (2048 steps) and trains 10 epochs of
512-row minibatches, at twice the learning rate. Small networks on CPUs learn fastest this
way: one round trip and one batched policy call carry more env steps.
"""

from __future__ import annotations

import sys

from nebula.rl.algorithms.ppo import PPOConfig
from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig


def main(seed: int, target: float = 450.0, max_steps: int = 300_000) -> None:
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=16, rollout_fragment_length=64)
        .training(
            lr=[[0, 1e-3], [100_000, 0.0]],
            gamma=0.98,
            lambda_=0.8,
            train_batch_size=256,
            minibatch_size=256,
            num_epochs=20,
            clip_param=0.2,
            vf_loss_coeff=0.5,
            vf_clip_param=None,
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


if __name__ == "__main__":
    main(int(sys.argv[1]))
