"""Config builders: settings checked where they are set, dict round trips, tune values."""

from __future__ import annotations

import pytest
from nebula.rl import ConfigError, DefaultModelConfig, DQNConfig, IMPALAConfig, PPOConfig, SACConfig
from nebula.rl._envs import resolve_env_creator


def test_a_misspelled_setting_fails_at_its_call_naming_the_closest() -> None:
    config = PPOConfig()
    with pytest.raises(ConfigError, match=r"training\(\) has no setting 'lrr'; did you mean 'lr'"):
        config.training(lrr=0.1)
    with pytest.raises(TypeError, match="did you mean 'num_env_runners'"):
        config.env_runners(num_env_runner=2)
    with pytest.raises(ConfigError, match=r"belongs to \.env_runners"):
        config.training(num_env_runners=2)
    with pytest.raises(AttributeError, match="did you mean 'gamma'"):
        config.gama  # noqa: B018


def test_a_bad_value_fails_at_its_call_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="gamma must be a number >= 0 and <= 1"):
        PPOConfig().training(gamma=1.5)
    with pytest.raises(ConfigError, match="num_env_runners must be an integer >= 0"):
        PPOConfig().env_runners(num_env_runners=-1)
    with pytest.raises(ConfigError, match="did you mean 'complete_episodes'"):
        PPOConfig().env_runners(batch_mode="complete_episode")
    with pytest.raises(ConfigError, match="framework must be one of 'torch'"):
        PPOConfig().framework("tf2")
    with pytest.raises(ConfigError, match="did you mean 'fcnet_hiddens'"):
        PPOConfig().training(model={"fcnet_hidden": [32]})
    with pytest.raises(ConfigError, match="did you mean 'capacity'"):
        DQNConfig().training(replay_buffer_config={"capacty": 10})
    # RLlib scripts turn value clipping off with an infinite bound.
    assert PPOConfig().training(vf_clip_param=float("inf")).vf_clip_param == float("inf")
    with pytest.raises(ConfigError, match="vf_clip_param must be None or a number > 0"):
        PPOConfig().training(vf_clip_param=float("nan"))


def test_sections_chain_and_store_what_they_set() -> None:
    config = (
        PPOConfig()
        .environment("CartPole-v1", env_config={"a": 1})
        .env_runners(num_env_runners=3, num_envs_per_env_runner=4, rollout_fragment_length=25)
        .training(
            lr=0.01,
            gamma=0.9,
            train_batch_size=600,
            minibatch_size=100,
            num_epochs=3,
            lambda_=0.95,
            clip_param=0.1,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32], vf_share_layers=False))
        .learners(num_learners=0)
        .resources(num_gpus=0)
        .evaluation(evaluation_interval=2, evaluation_duration=3, evaluation_num_env_runners=1)
        .debugging(seed=7)
    )
    assert config.env == "CartPole-v1" and config.env_config == {"a": 1}
    assert (config.num_env_runners, config.num_envs_per_env_runner) == (3, 4)
    assert config.lr == 0.01 and config.lambda_ == 0.95 and config["clip_param"] == 0.1
    assert config.model_config["fcnet_hiddens"] == [32]
    assert config.model_config["vf_share_layers"] is False
    assert config.algo_class.__name__ == "PPO"
    assert config.get_rollout_fragment_length() == 25


def test_older_names_still_work() -> None:
    config = PPOConfig().training(
        num_sgd_iter=4,
        sgd_minibatch_size=64,
        model={"fcnet_hiddens": [16, 16], "fcnet_activation": "relu"},
    )
    config.rollouts(num_rollout_workers=1)
    assert config.num_epochs == 4 and config.minibatch_size == 64
    assert config.num_env_runners == 1
    assert config.model_config["fcnet_hiddens"] == [16, 16]
    assert config.model_config["fcnet_activation"] == "relu"


def test_auto_fragment_length_splits_the_batch_over_runners_and_envs() -> None:
    config = (
        PPOConfig()
        .training(train_batch_size=1000)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=5)
    )
    assert config.get_rollout_fragment_length() == 100


def test_to_dict_rebuilds_the_same_config() -> None:
    config = SACConfig().environment("Pendulum-v1").training(tau=0.01, actor_lr=1e-3)
    again = SACConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert again.tau == 0.01 and again.q_model_config["fcnet_hiddens"] == [256, 256]
    copied = config.copy()
    copied.training(tau=0.5)
    assert config.tau == 0.01


def test_tune_search_spaces_pass_through_unchecked() -> None:
    grid = {"grid_search": [1e-3, 1e-4]}
    sampler_class = type(
        "Float", (), {"sample": lambda self: 0.1, "__module__": "nebula.tune.search.sample"}
    )
    sampler = sampler_class()
    config = PPOConfig().training(lr=grid, gamma=sampler)
    assert config.lr is grid and config.gamma is sampler
    not_tune = type("Float", (), {"sample": lambda self: 0.1, "__module__": "elsewhere"})()
    with pytest.raises(ConfigError):
        PPOConfig().training(gamma=not_tune)


def test_each_algorithm_has_its_own_defaults_and_settings() -> None:
    assert PPOConfig().num_env_runners == 2 and PPOConfig().lr == 5e-5
    assert DQNConfig().replay_buffer_config["type"] == "PrioritizedEpisodeReplayBuffer"
    assert IMPALAConfig().vtrace is True and IMPALAConfig().rollout_fragment_length == 50
    assert SACConfig().twin_q is True
    with pytest.raises(ConfigError, match="has no setting 'vtrace'"):
        PPOConfig().training(vtrace=True)
    # a partial replay config merges over the default
    dqn = DQNConfig().training(replay_buffer_config={"capacity": 123})
    assert dqn.replay_buffer_config["capacity"] == 123
    assert dqn.replay_buffer_config["type"] == "PrioritizedEpisodeReplayBuffer"


def test_validate_checks_settings_against_each_other() -> None:
    with pytest.raises(ConfigError, match="no env is set"):
        PPOConfig().validate()
    with pytest.raises(ConfigError, match="minibatch_size=512"):
        PPOConfig().environment("CartPole-v1").training(
            train_batch_size=256, minibatch_size=512
        ).validate()


def test_an_unknown_env_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'CartPole-v1'"):
        resolve_env_creator("CartPole-v2")
