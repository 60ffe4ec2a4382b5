"""Stable-Baselines3 PPO with rl-zoo3's CartPole-v1 settings, single process, until the mean
return of the last 100 episodes reaches 450. Runs in the SB3 peer venv (``compare.py``)."""

from __future__ import annotations

import sys

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env


def linear(start: float):  # rl-zoo3's "lin_<start>"
    return lambda progress_remaining: progress_remaining * start


class StopAt(BaseCallback):
    def __init__(self, target: float) -> None:
        super().__init__()
        self.target = target

    def _on_step(self) -> bool:
        buf = self.model.ep_info_buffer
        if len(buf) and np.mean([e["r"] for e in buf]) >= self.target:
            print(f"reached {self.num_timesteps}", flush=True)
            return False
        return True


def main(seed: int) -> None:
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        verbose=0,
    )
    print("built", flush=True)
    model.learn(total_timesteps=100_000, callback=StopAt(450.0))
    if not model.ep_info_buffer or np.mean([e["r"] for e in model.ep_info_buffer]) < 450:
        print(f"gave-up {model.num_timesteps}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
