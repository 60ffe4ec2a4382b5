"""Env runners that crash are replaced; IMPALA samples asynchronously; learners average
gradients; multi-agent PPO trains only the policies it is told to."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from nebula.rl import DQNConfig, IMPALAConfig, PolicySpec, PPOConfig, register_env
from nebula.rl._dqn import DQNLearner, build_module
from nebula.rl._learner import LearnerGroup
from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig
from rl_test_envs import CrashOnce, MatchTarget

import nebula

pytestmark = pytest.mark.usefixtures("local_cluster")


def small_ppo(env: object = "CartPole-v1") -> PPOConfig:
    return (
        PPOConfig()
        .environment(env)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2, rollout_fragment_length=25)
        .training(lr=1e-3, train_batch_size=100, minibatch_size=50, num_epochs=2)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[16]))
        .debugging(seed=0)
    )


def test_a_runner_whose_env_raises_is_replaced_and_counted(tmp_path: Path) -> None:
    register_env("crash_once", CrashOnce)
    marker = str(tmp_path / "crashed")
    algo = small_ppo("crash_once").environment(env_config={"marker": marker}).build_algo()
    try:
        result = algo.train()
        assert os.path.exists(marker)
        assert result["fault_tolerance"]["num_remote_worker_restarts"] == 1
        assert result["fault_tolerance"]["num_healthy_workers"] == 2
        assert result["env_runners"]["num_env_steps_sampled"] >= 100
        assert algo.train()["fault_tolerance"]["num_remote_worker_restarts"] == 1
    finally:
        algo.stop()


def test_a_killed_runner_process_is_replaced_and_counted() -> None:
    algo = small_ppo().build_algo()
    try:
        algo.train()
        runner = algo.env_runner_group.actors[2]
        os.kill(nebula.get(runner.get_pid.remote()), signal.SIGKILL)
        result = algo.train()
        assert result["fault_tolerance"]["num_remote_worker_restarts"] == 1
        assert result["env_runners"]["num_env_steps_sampled"] >= 100
        assert result["training_iteration"] == 2
    finally:
        algo.stop()


def test_failures_raise_when_restarts_are_off(tmp_path: Path) -> None:
    register_env("crash_once", CrashOnce)
    config = (
        small_ppo("crash_once")
        .environment(env_config={"marker": str(tmp_path / "crashed")})
        .fault_tolerance(restart_failed_env_runners=False)
    )
    algo = config.build_algo()
    try:
        with pytest.raises(RuntimeError, match="env runner 1 failed"):
            algo.train()
    finally:
        algo.stop()


def test_impala_learns_with_asynchronous_runners() -> None:
    config = (
        IMPALAConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=4, rollout_fragment_length=50)
        .training(lr=1e-3, train_batch_size=400, entropy_coeff=0.0)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], vf_share_layers=False))
        .reporting(min_time_s_per_iteration=0)
        .debugging(seed=1)
    )
    algo = config.build_algo()
    try:
        first = algo.train()
        assert first["learners"]["default_policy"]["vf_loss"] > 0
        best = first["env_runners"]["episode_return_mean"]
        for _ in range(80):
            result = algo.train()
            best = max(best, result["env_runners"]["episode_return_mean"])
            if best > 50:
                break
        assert best > 50  # random play lasts 22 steps
        # sample calls stay in flight between iterations
        assert result["env_runner_group"]["actor_manager_num_outstanding_async_reqs"] == 2
    finally:
        algo.stop()


def test_two_learners_average_gradients_like_one_learner_on_the_whole_batch() -> None:
    config = DQNConfig().environment("CartPole-v1").training(lr=0.01, grad_clip=None)
    config.rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[8]))
    import functools

    import gymnasium as gym
    from nebula.rl._algorithm import ModuleSpec, _build_learner

    space = gym.make("CartPole-v1")
    specs = {"default_policy": ModuleSpec(space.observation_space, space.action_space)}
    factory = functools.partial(_build_learner, DQNLearner, build_module, config, specs)
    rng = np.random.default_rng(0)
    n = 64
    batch = {
        "default_policy": {
            "obs": rng.normal(size=(n, 4)).astype(np.float32),
            "actions": rng.integers(0, 2, n),
            "rewards": rng.random(n).astype(np.float32),
            "new_obs": rng.normal(size=(n, 4)).astype(np.float32),
            "terminateds": np.zeros(n, np.float32),
            "discounts": np.full(n, 0.99, np.float32),
            "weights": np.ones(n, np.float32),
        }
    }
    config.training(td_error_loss_fn="mse")
    local = LearnerGroup(factory, 0)
    remote = LearnerGroup(factory, 2)
    try:
        start = local.get_state()["modules"]
        remote.set_state(local.get_state())
        local.update(batch, 0)
        stats = remote.update(batch, 0)
        assert stats["default_policy"]["td_error"].shape == (n,)
        one = local.get_state()["modules"]["default_policy"]
        first, second = (
            nebula.get(a.get_state.remote())["modules"]["default_policy"] for a in remote.actors
        )
        for k in one:
            np.testing.assert_array_equal(first[k], second[k])
            np.testing.assert_allclose(first[k], one[k], rtol=1e-4, atol=1e-6)
            assert not np.array_equal(one[k], start["default_policy"][k])
    finally:
        remote.stop()


def test_multi_agent_ppo_trains_the_policies_to_train() -> None:
    config = (
        PPOConfig()
        .environment(MatchTarget)
        .env_runners(num_env_runners=1, num_envs_per_env_runner=4, rollout_fragment_length=50)
        .multi_agent(
            policies={"p0": PolicySpec(), "p1": PolicySpec()},
            policy_mapping_fn=lambda agent_id, episode, **kwargs: (
                "p0" if agent_id == "a0" else "p1"
            ),
            policies_to_train=["p0"],
        )
        .training(lr=3e-3, train_batch_size=200, minibatch_size=100, num_epochs=5)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32]))
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        frozen = algo.get_weights(["p1"])["p1"]
        for _ in range(12):
            result = algo.train()
        assert set(result["learners"]) == {"p0", "__all_modules__"}
        returns = result["env_runners"]["module_episode_returns_mean"]
        assert returns["p0"] > 5.5  # random play names 1 target in 3: 3.3 of 10
        assert returns["p1"] < 4.5
        for k, v in algo.get_weights(["p1"])["p1"].items():
            np.testing.assert_array_equal(v, frozen[k])
        action = algo.compute_single_action(
            np.eye(3, dtype=np.float32)[2], policy_id="p0", explore=False
        )
        assert action == 2
    finally:
        algo.stop()


def test_more_actors_than_cpus_is_refused_up_front() -> None:
    from nebula.rl import ConfigError

    with pytest.raises(ConfigError, match="need 5 CPUs but the cluster has 2"):
        small_ppo().env_runners(num_env_runners=5).build_algo()
