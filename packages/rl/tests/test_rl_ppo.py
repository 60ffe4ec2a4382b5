"""PPO end to end on a real cluster: learning, results, checkpoints, acting, tune's protocol."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from nebula.rl import PPO, Algorithm, PPOConfig
from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig

pytestmark = pytest.mark.usefixtures("local_cluster")


def fast_cartpole(runners: int = 2) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=4, rollout_fragment_length=32)
        .training(
            lr=1e-3,
            gamma=0.98,
            lambda_=0.8,
            train_batch_size=256,
            minibatch_size=256,
            num_epochs=20,
            clip_param=0.2,
            use_kl_loss=False,
            vf_loss_coeff=0.5,
            vf_clip_param=None,
            grad_clip=0.5,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], vf_share_layers=False))
        .debugging(seed=3)
    )


def optimizer_tensors(algo: Algorithm) -> list[np.ndarray]:
    state = algo.learner_group.get_state()["optimizers"]["default_policy"]["state"]
    return [np.asarray(v) for s in state.values() for v in s.values()]


def test_ppo_learns_cartpole_and_reports_like_ray(tmp_path: Path) -> None:
    algo = fast_cartpole().build_algo()
    try:
        first = algo.train()
        # The layout scripts read.
        runners = first["env_runners"]
        for key in (
            "episode_return_mean",
            "episode_return_max",
            "episode_return_min",
            "episode_len_mean",
            "num_episodes",
            "num_env_steps_sampled",
            "num_env_steps_sampled_lifetime",
        ):
            assert key in runners
        assert runners["num_env_steps_sampled"] == 256
        stats = first["learners"]["default_policy"]
        for key in ("policy_loss", "vf_loss", "entropy", "total_loss"):
            assert math.isfinite(stats[key])
        assert first["training_iteration"] == 1 and first["time_this_iter_s"] > 0
        assert first["num_env_steps_sampled_lifetime"] == 256
        assert first["episode_return_mean"] == runners["episode_return_mean"]
        assert first["fault_tolerance"]["num_healthy_workers"] == 2
        random_return = runners["episode_return_mean"]
        best = random_return
        for _ in range(60):
            result = algo.train()
            best = max(best, result["env_runners"]["episode_return_mean"])
            if best > 100:
                break
        assert random_return < 40 and best > 100, (random_return, best)
        assert result["num_env_steps_sampled_lifetime"] == 256 * result["training_iteration"]

        # Acting with the trained policy.
        obs = np.zeros(4, dtype=np.float32)
        action = algo.compute_single_action(obs, explore=False)
        assert action in (0, 1)
        policy = algo.get_policy()
        assert policy.compute_single_action(obs, explore=False)[0] == action
        weights = algo.get_weights()["default_policy"]
        assert all(isinstance(w, np.ndarray) for w in weights.values())
        assert {k: v.shape for k, v in policy.get_weights().items()} == {
            k: v.shape for k, v in weights.items()
        }

        # Evaluation rolls out whole episodes.
        evaluation = algo.evaluate()
        assert evaluation["env_runners"]["num_episodes"] == 10
        assert evaluation["evaluation"]["env_runners"]["episode_return_mean"] > 50

        # A checkpoint brings back the iteration, the weights and the optimizer state.
        saved = algo.save(str(tmp_path / "ckpt"))
        assert saved.checkpoint.path == str(tmp_path / "ckpt")
        iteration = algo.iteration
        saved_opt = optimizer_tensors(algo)
        algo.train()
        assert algo.iteration == iteration + 1
        algo.restore(saved)
        assert algo.iteration == iteration
        for k, v in algo.get_weights()["default_policy"].items():
            np.testing.assert_array_equal(v, weights[k])
        for a, b in zip(optimizer_tensors(algo), saved_opt):
            np.testing.assert_array_equal(a, b)
        assert algo.train()["training_iteration"] == iteration + 1
    finally:
        algo.stop()

    restored = Algorithm.from_checkpoint(str(tmp_path / "ckpt"))
    try:
        assert isinstance(restored, PPO) and restored.iteration == iteration
        for k, v in restored.get_weights()["default_policy"].items():
            np.testing.assert_array_equal(v, weights[k])
        for a, b in zip(optimizer_tensors(restored), saved_opt):
            np.testing.assert_array_equal(a, b)
        result = restored.train()
        assert result["training_iteration"] == iteration + 1
        # the return window came back with the checkpoint: no fall back to random
        assert result["env_runners"]["episode_return_mean"] > 60
    finally:
        restored.stop()


def test_the_tune_trainable_protocol(tmp_path: Path) -> None:
    """Tune builds ``cls(config_dict)``, calls ``train``, ``save_checkpoint`` and
    ``load_checkpoint`` on a fresh instance, and reads ``default_resource_request``."""
    config = fast_cartpole(runners=1).to_dict()
    # One bundle for the algorithm itself, one per env runner (tune captures them there).
    assert PPO.default_resource_request(config) == [{"CPU": 1.0}, {"CPU": 1.0}]
    trial = PPO(config)
    try:
        result = trial.train()
        assert isinstance(result, dict) and result["training_iteration"] == 1
        trial.train()
        assert trial.save_checkpoint(str(tmp_path)) is None
        weights = trial.get_weights()["default_policy"]
    finally:
        trial.stop()
    fresh = PPO(config)
    try:
        fresh.load_checkpoint(str(tmp_path))
        assert fresh.iteration == 2
        for k, v in fresh.get_weights()["default_policy"].items():
            np.testing.assert_array_equal(v, weights[k])
        assert fresh.train()["training_iteration"] == 3
    finally:
        fresh.stop()


def test_local_sampling_without_runners_and_evaluation_in_train() -> None:
    config = (
        fast_cartpole(runners=0)
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=50)
        .training(train_batch_size=100, minibatch_size=50, num_epochs=2)
        .evaluation(
            evaluation_interval=2, evaluation_duration=3, evaluation_config={"explore": False}
        )
    )
    algo = config.build_algo()
    try:
        one, two = algo.train(), algo.train()
        assert "evaluation" not in one
        assert two["evaluation"]["env_runners"]["num_episodes"] == 3
        assert two["fault_tolerance"]["num_healthy_workers"] == 1
    finally:
        algo.stop()
