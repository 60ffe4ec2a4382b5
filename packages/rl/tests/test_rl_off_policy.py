"""DQN and SAC learn from their replay buffers (small budgets, fixed seeds)."""

from __future__ import annotations

import pytest
from nebula.rl import DQN, DQNConfig, SACConfig
from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig

pytestmark = pytest.mark.usefixtures("local_cluster")


def test_dqn_learns_cartpole() -> None:
    config = (
        DQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=1, rollout_fragment_length=4)
        .training(
            lr=1e-3,
            train_batch_size=64,
            training_intensity=32,
            replay_buffer_config={"type": "ReplayBuffer", "capacity": 10000},
            num_steps_sampled_before_learning_starts=500,
            target_network_update_freq=200,
            epsilon=[(0, 1.0), (4000, 0.05)],
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]))
        .evaluation(evaluation_duration=10, evaluation_config={"explore": False})
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        assert isinstance(algo, DQN)
        first = algo.train()
        assert first["num_env_steps_sampled_lifetime"] >= 1000  # min_sample_timesteps_per_iteration
        assert first["learners"]["default_policy"]["qf_loss"] >= 0
        for _ in range(5):
            result = algo.train()
        assert result["env_runners"]["episode_return_mean"] > 45
        assert algo.evaluate()["env_runners"]["episode_return_mean"] > 60
        assert len(algo.replay_buffer) == min(10000, result["num_env_steps_sampled_lifetime"])
    finally:
        algo.stop()


def test_sac_learns_pendulum() -> None:
    config = (
        SACConfig()
        .environment("Pendulum-v1")
        .env_runners(num_env_runners=0, rollout_fragment_length=2)
        .training(
            actor_lr=1e-3,
            critic_lr=1e-3,
            alpha_lr=1e-3,
            train_batch_size=128,
            training_intensity=64,
            num_steps_sampled_before_learning_starts=400,
            replay_buffer_config={"type": "ReplayBuffer", "capacity": 20000},
            q_model_config={"fcnet_hiddens": [64, 64]},
            policy_model_config={"fcnet_hiddens": [64, 64]},
        )
        .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=1000)
        .evaluation(evaluation_duration=5, evaluation_config={"explore": False})
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        before = algo.evaluate()["env_runners"]["episode_return_mean"]
        for _ in range(4):
            result = algo.train()
        stats = result["learners"]["default_policy"]
        assert stats["alpha_value"] < 1.0  # the temperature is learned
        after = algo.evaluate()["env_runners"]["episode_return_mean"]
        assert after > before + 200, (before, after)
    finally:
        algo.stop()
