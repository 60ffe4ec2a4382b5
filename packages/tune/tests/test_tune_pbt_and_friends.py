"""PBT beats the same budget without it; HyperBand and the median rule in real sweeps."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nebula
from nebula import tune


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def climber(config):
    """``value`` grows by ``lr`` per step: a larger lr (up to 1) is better."""
    value, step = 0.0, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = json.loads(Path(directory, "state.json").read_text())
        value, step = state["value"], state["step"]
    while step < 20:
        time.sleep(0.05)  # slow enough that a restarted trial catches up with the population
        step += 1
        value += min(config["lr"], 1.0)
        directory = tempfile.mkdtemp(dir=config["scratch"])
        with open(os.path.join(directory, "state.json"), "w") as file:
            json.dump({"value": value, "step": step}, file)
        tune.report(
            {"value": value, "lr": config["lr"]},
            checkpoint=tune.Checkpoint.from_directory(directory),
        )


def sweep(tmp_path, name, scheduler=None):
    return tune.Tuner(
        tune.with_resources(climber, {"cpu": 0.5}),
        param_space={
            "lr": tune.grid_search([0.001, 0.002, 0.004, 0.008]),
            "scratch": str(tmp_path),
        },
        tune_config=tune.TuneConfig(metric="value", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tmp_path),
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=4),
        ),
    ).fit()


def test_pbt_beats_the_same_budget_without_it(tmp_path):
    baseline = sweep(tmp_path, "fifo").get_best_result().metrics["value"]
    assert baseline == pytest.approx(20 * 0.008)
    pbt = tune.schedulers.PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=2,
        hyperparam_mutations={"lr": [0.001 * 2**i for i in range(10)]},
        quantile_fraction=0.5,
        resample_probability=0.25,
        seed=3,
    )
    results = sweep(tmp_path, "pbt", pbt)
    assert pbt.num_perturbations > 0
    best = results.get_best_result()
    assert best.metrics["value"] > 1.3 * baseline
    assert best.metrics["training_iteration"] == 20
    # Exploited trials carry their donor's progress: nobody restarted from zero.
    assert all(r.metrics["training_iteration"] >= 10 for r in results)


def test_hyperband_runs_brackets_to_the_end(tmp_path):
    class Steps(tune.Trainable):
        def setup(self, config):
            self.total = 0.0

        def step(self):
            self.total += self.config["q"]
            return {"total": self.total}

        def save_checkpoint(self, checkpoint_dir):
            return {"total": self.total}

        def load_checkpoint(self, checkpoint):
            self.total = checkpoint["total"]

    scheduler = tune.schedulers.HyperBandScheduler(max_t=9, reduction_factor=3)
    results = tune.Tuner(
        tune.with_resources(Steps, {"cpu": 0.5}),
        param_space={"q": tune.grid_search([1, 2, 3, 4, 5, 6, 7, 8, 9])},
        tune_config=tune.TuneConfig(metric="total", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert results.num_errors == 0 and len(results) == 9
    iterations = sorted(r.metrics["training_iteration"] for r in results)
    assert iterations[-1] == 9 and iterations[0] < 9
    best = results.get_best_result()
    assert best.config["q"] == 9 and best.metrics["total"] == 81


def test_median_stopping_rule_ends_weak_trials(tmp_path):
    def linear(config):
        for step in range(1, 21):
            tune.report({"acc": config["slope"] * step})
            time.sleep(0.1)  # room for the scheduler's decision to arrive mid-run

    scheduler = tune.schedulers.MedianStoppingRule(
        time_attr="training_iteration", grace_period=3, min_samples_required=2
    )
    results = tune.Tuner(
        tune.with_resources(linear, {"cpu": 0.5}),
        param_space={"slope": tune.grid_search([1.0, 2.0, 3.0, 0.1])},
        # Two at a time, in order: the weak trial starts once two others have finished,
        # so the rule always has its two samples however slowly trials start.
        tune_config=tune.TuneConfig(
            metric="acc", mode="max", scheduler=scheduler, max_concurrent_trials=2
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    by_slope = {r.config["slope"]: r.metrics["training_iteration"] for r in results}
    assert by_slope[3.0] == 20
    assert by_slope[0.1] < 20
