"""An RL algorithm swept by tune, as a Ray script writes it: ``Tuner("PPO", param_space=config)``.

Each trial reserves a placement group of one bundle for the algorithm and one per env runner;
the runners the algorithm starts land in that group, so trials never wait on each other's
nested actors. The cluster holds one trial's group at a time, so the sweep also shows a
finished trial handing its bundles to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nebula.rl.algorithms.ppo import PPOConfig
from nebula.tune import RunConfig, TuneConfig, Tuner

import nebula
from nebula import tune
from nebula.testing import (
    leaked_processes,
    leaked_shm_files,
    shm_files,
    wait_for_condition,
)
from nebula.util import placement_group_table

pytestmark = pytest.mark.timeout(240)

METRIC = "env_runners/episode_return_mean"


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    before = shm_files()
    nebula.init(num_cpus=2)
    try:
        yield
    finally:
        nebula.shutdown()
    wait_for_condition(lambda: not leaked_processes() and not leaked_shm_files(before), 15)


def _ppo(lr: object) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=1, num_envs_per_env_runner=1, rollout_fragment_length=128)
        .training(lr=lr, train_batch_size=256, minibatch_size=64, num_epochs=2)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )


def test_ppo_config_asks_for_a_bundle_per_env_runner() -> None:
    from nebula.rl.algorithms.ppo import PPO

    assert PPO.default_resource_request(_ppo(1e-3).to_dict()) == [{"CPU": 1.0}, {"CPU": 1.0}]


def test_a_grid_over_lr_runs_every_ppo_trial_to_its_stop(tmp_path: Path) -> None:
    tuner = Tuner(
        "PPO",
        param_space=_ppo(tune.grid_search([1e-3, 3e-4])),
        tune_config=TuneConfig(metric=METRIC, mode="max"),
        run_config=RunConfig(stop={"training_iteration": 2}, storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()

    assert results.num_errors == 0, [str(e) for e in results.errors]
    assert len(results) == 2 and results.num_terminated == 2
    assert sorted(r.config["lr"] for r in results) == [3e-4, 1e-3]
    for result in results:
        assert result.metrics["training_iteration"] == 2
        assert result.metrics["env_runners"]["num_env_steps_sampled_lifetime"] >= 512
        assert result.metrics["env_runners"]["episode_return_mean"] > 0
    best = results.get_best_result()
    returns = [r.metrics["env_runners"]["episode_return_mean"] for r in results]
    assert best.metrics["env_runners"]["episode_return_mean"] == max(returns)
    assert best.config["lr"] in (1e-3, 3e-4)
    # Every trial's group was given back.
    assert all(g["state"] == "REMOVED" for g in placement_group_table().values())
