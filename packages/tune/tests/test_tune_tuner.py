"""Sweeps on a real cluster: trainables, results, files, reuse, failures, stopping."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import nebula
from nebula import tune


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2, resources={"accelerator": 1})
    yield
    nebula.shutdown()


@pytest.fixture
def storage(tmp_path) -> str:
    return str(tmp_path / "results")


def quadratic(config):
    for step in range(1, 6):
        tune.report({"score": -((config["x"] - 3) ** 2) + step, "step": step})


def run(trainable, storage, space=None, name="exp", **tune_kw):
    run_kw = {
        k: tune_kw.pop(k)
        for k in list(tune_kw)
        if k in ("stop", "callbacks", "failure_config", "checkpoint_config")
    }
    tuner = tune.Tuner(
        trainable,
        param_space=space if space is not None else {},
        tune_config=tune.TuneConfig(**tune_kw),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0, **run_kw),
    )
    return tuner.fit()


def test_grid_and_random_search_finds_the_best_config_and_writes_trial_files(storage):
    results = run(
        quadratic,
        storage,
        {"x": tune.grid_search([1, 3, 5]), "noise": tune.uniform(0, 1)},
        metric="score",
        mode="max",
        num_samples=2,
    )
    assert len(results) == 6 and results.num_errors == 0 and results.num_terminated == 6
    best = results.get_best_result()
    assert best.config["x"] == 3 and best.metrics["score"] == 5
    assert best.metrics["training_iteration"] == 5 and best.metrics["done"] is True
    frame = results.get_dataframe()
    assert sorted(frame["config/x"]) == [1, 1, 3, 3, 5, 5]
    assert list(best.metrics_dataframe["step"]) == [1, 2, 3, 4, 5]
    assert results.get_best_result("step", "min", scope="all").metrics["step"] == 5
    files = os.listdir(best.path)
    assert {"result.json", "progress.csv", "params.json", "params.pkl"} <= set(files)
    with open(os.path.join(best.path, "result.json")) as file:
        lines = [json.loads(line) for line in file]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["config"]["x"] == 3 and lines[0]["trial_id"] == best.metrics["trial_id"]
    assert os.path.exists(os.path.join(storage, "exp", "experiment_state.pkl"))


def test_function_trainables_reuse_actors_by_default(storage):
    def pid_reporter(config):
        tune.report({"pid": os.getpid()})

    results = run(pid_reporter, storage, {"i": tune.grid_search(list(range(6)))})
    assert len({r.metrics["pid"] for r in results}) <= 2
    results = run(
        pid_reporter, storage, {"i": tune.grid_search(list(range(4)))}, name="b", reuse_actors=False
    )
    assert len({r.metrics["pid"] for r in results}) == 4


class Counter(tune.Trainable):
    def setup(self, config):
        self.value = 0.0
        self.rate = config["rate"]

    def step(self):
        self.value += self.rate
        return {"value": self.value}

    def save_checkpoint(self, checkpoint_dir):
        return {"value": self.value}

    def load_checkpoint(self, checkpoint):
        self.value = checkpoint["value"]


def test_class_trainable_checkpoints_by_frequency_and_keeps_num_to_keep(storage):
    results = run(
        Counter,
        storage,
        {"rate": tune.grid_search([1.0, 2.0])},
        metric="value",
        mode="max",
        stop={"training_iteration": 6},
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_frequency=2),
    )
    best = results.get_best_result()
    assert best.config["rate"] == 2.0 and best.metrics["value"] == 12.0
    assert best.metrics["training_iteration"] == 6
    kept = sorted(name for name in os.listdir(best.path) if name.startswith("checkpoint_"))
    assert kept == ["checkpoint_000001", "checkpoint_000002"]
    assert best.checkpoint.path.endswith("checkpoint_000002")
    assert len(best.best_checkpoints) == 2
    restored = Counter({"rate": 0})
    restored.restore(best.checkpoint.path)
    assert restored.value == 12.0


class DuckTyped:
    """An RL-style algorithm: no tune base class, results carry training_iteration."""

    def __init__(self, config):
        self.config = config
        self.iteration = 0

    def train(self):
        self.iteration += 1
        return {
            "training_iteration": self.iteration,
            "episode_return_mean": self.config["lr"] * self.iteration,
        }

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as file:
            json.dump({"iteration": self.iteration}, file)

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json")) as file:
            self.iteration = json.load(file)["iteration"]

    @classmethod
    def default_resource_request(cls, config):
        return {"cpu": 1, "accelerator": 1}


class AlgoConfig:
    def to_dict(self):
        return {"lr": tune.grid_search([0.1, 0.2])}


def test_a_duck_typed_class_registered_by_name_with_a_config_object(storage):
    tune.register_trainable("DuckAlgo", DuckTyped)
    results = run(
        "DuckAlgo",
        storage,
        AlgoConfig(),
        metric="episode_return_mean",
        mode="max",
        stop={"training_iteration": 3},
        checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
    )
    best = results.get_best_result()
    assert best.config["lr"] == 0.2 and best.metrics["training_iteration"] == 3
    assert best.metrics["episode_return_mean"] == pytest.approx(0.6)
    with best.checkpoint.as_directory() as directory:
        assert json.loads(Path(directory, "state.json").read_text())["iteration"] == 3


def test_with_parameters_sends_large_objects_once(storage):
    data = np.arange(1_000_000, dtype=np.float64)

    def uses_data(config, data):
        tune.report(
            {"total": float(data.sum()) * config["k"], "writable": bool(data.flags.writeable)}
        )

    results = run(
        tune.with_parameters(uses_data, data=data), storage, {"k": tune.grid_search([1, 2])}
    )
    assert sorted(r.metrics["total"] for r in results) == [data.sum(), 2 * data.sum()]


def test_with_resources_places_trials_by_their_request(storage):
    def one_at_a_time(config):
        tune.report({"gpu_free": nebula.available_resources().get("accelerator", 0.0)})

    trainable = tune.with_resources(one_at_a_time, {"cpu": 1, "accelerator": 1})
    results = run(trainable, storage, {"i": tune.grid_search([0, 1, 2])})
    assert [r.metrics["gpu_free"] for r in results] == [0.0, 0.0, 0.0]
    group = tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 1}])
    results = run(
        tune.with_resources(one_at_a_time, group), storage, {"i": tune.grid_search([0])}, name="pg"
    )
    assert results.num_errors == 0, results.errors


def test_a_raising_trial_is_reported_and_the_others_finish(storage):
    def sometimes_fails(config):
        tune.report({"score": 1})
        if config["fail"]:
            raise ValueError("bad config")
        tune.report({"score": 2})

    results = run(sometimes_fails, storage, {"fail": tune.grid_search([False, True, False])})
    assert results.num_errors == 1
    assert "ValueError: bad config" in str(results.errors[0])
    assert sorted(r.metrics["score"] for r in results) == [1, 2, 2]
    assert results[1].error is not None and results[0].error is None


def test_failure_config_retries_from_the_last_checkpoint(storage, tmp_path):
    marker = tmp_path / "crashed"

    def crashes_once(config):
        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = int(Path(directory, "step").read_text())
        for step in range(start + 1, 6):
            directory = os.path.join(str(tmp_path), f"ckpt-{step}")
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "step"), "w") as file:
                file.write(str(step))
            tune.report(
                {"step": step, "resumed_from": start},
                checkpoint=tune.Checkpoint.from_directory(directory),
            )
            if step == 3 and not marker.exists():
                marker.write_text("x")
                os._exit(1)  # the trial's process dies

    results = run(crashes_once, storage, failure_config=tune.FailureConfig(max_failures=1))
    assert results.num_errors == 0
    metrics = results[0].metrics
    assert metrics["step"] == 5 and metrics["resumed_from"] == 3
    assert metrics["training_iteration"] == 5


def test_stop_by_dict_and_by_function(storage):
    def forever(config):
        step = 0
        while True:
            step += 1
            tune.report({"step": step})

    results = run(forever, storage, {"i": tune.grid_search([0, 1])}, stop={"step": 4})
    assert [r.metrics["step"] for r in results] == [4, 4]
    results = run(forever, storage, name="fn", stop=lambda trial_id, result: result["step"] >= 7)
    assert results[0].metrics["step"] == 7


def test_asha_stops_poor_trials_early(storage):
    def learner(config):
        for step in range(1, 17):
            tune.report({"acc": config["quality"] * step})

    scheduler = tune.schedulers.ASHAScheduler(grace_period=2, reduction_factor=2, max_t=16)
    results = run(
        learner,
        storage,
        {"quality": tune.grid_search([0.1, 0.2, 0.5, 1.0, 0.05, 0.9])},
        metric="acc",
        mode="max",
        scheduler=scheduler,
    )
    iterations = {r.config["quality"]: r.metrics["training_iteration"] for r in results}
    assert iterations[1.0] == 16
    assert min(iterations.values()) < 16
    assert results.get_best_result().config["quality"] == 1.0


def test_scheduler_by_registered_name(storage):
    results = run(
        quadratic,
        storage,
        {"x": tune.grid_search([1, 3])},
        metric="score",
        mode="max",
        scheduler="asha",
    )
    assert results.get_best_result().config["x"] == 3


def test_optuna_search_in_a_sweep(storage):
    pytest.importorskip("optuna")
    from nebula.tune.search.optuna import OptunaSearch

    results = run(
        quadratic,
        storage,
        {"x": tune.uniform(0, 6)},
        metric="score",
        mode="max",
        num_samples=8,
        search_alg=tune.search.ConcurrencyLimiter(OptunaSearch(seed=1), max_concurrent=2),
    )
    assert len(results) == 8
    assert abs(results.get_best_result().config["x"] - 3) < 1.5


def test_callbacks_see_the_sweep(storage):
    class Recorder(tune.Callback):
        def __init__(self):
            self.events = []

        def on_trial_start(self, iteration, trials, trial, **info):
            self.events.append(("start", trial.trial_id))
            self.name = str(trial)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.events.append(("result", result["step"]))

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.events.append(("complete", trial.trial_id))

    recorder = Recorder()
    results = run(
        quadratic,
        storage,
        {"x": 1},
        callbacks=[recorder],
        trial_name_creator=lambda trial: f"quadratic-x{trial.config['x']}",
    )
    assert recorder.name == "quadratic-x1"
    trial_id = results[0].metrics["trial_id"]
    assert recorder.events == [("start", trial_id)] + [("result", s) for s in range(1, 6)] + [
        ("complete", trial_id)
    ]


def test_scripts_written_with_ray_train_names_run_unchanged(storage):
    from nebula import train

    def objective(config):
        start = train.get_checkpoint()
        assert start is None
        for step in range(3):
            train.report(
                {"score": config["x"] * step, "trial": train.get_context().get_trial_name()}
            )

    results = tune.Tuner(
        objective,
        param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(metric="score", mode="max"),
        run_config=train.RunConfig(name="train-names", storage_path=storage),
    ).fit()
    best = results.get_best_result()
    assert best.config == {"x": 2} and best.metrics["score"] == 4
    assert best.metrics["trial"].startswith("objective_")
    assert train.Checkpoint is tune.Checkpoint
    with pytest.raises(AttributeError, match="distributed trainers"):
        train.TorchTrainer  # noqa: B018


@nebula.remote(num_cpus=1)
class _Worker:
    def group(self):
        from nebula.util import get_current_placement_group

        current = get_current_placement_group()
        return current.id if current is not None else None


class StartsAWorker(tune.Trainable):
    """Asks for a bundle for itself and one for the actor it starts, as RL algorithms do."""

    def setup(self, config):
        self.worker = _Worker.remote()
        self.steps = 0

    def step(self):
        self.steps += 1
        group = nebula.get(self.worker.group.remote(), timeout=30)
        return {"nested": {"score": self.config["x"] * self.steps}, "group": group}

    @classmethod
    def default_resource_request(cls, config):
        return [{"CPU": 1}, {"CPU": 1}]


def test_a_list_of_bundles_holds_the_actors_a_trial_starts(storage):
    # The cluster's 2 CPUs fit one trial's group at a time; the worker lands in its bundle.
    results = run(
        StartsAWorker,
        storage,
        {"x": tune.grid_search([1, 2])},
        metric="nested/score",
        mode="max",
        stop={"nested/score": 5},
    )
    assert results.num_errors == 0, results.errors
    groups = [r.metrics["group"] for r in results]
    assert None not in groups and len(set(groups)) == 2
    assert [r.metrics["training_iteration"] for r in results] == [5, 3]
    assert results.get_best_result().config["x"] == 2
    with pytest.raises(ValueError, match="non-empty list of bundles"):
        tune.PlacementGroupFactory([])
    assert tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 0}]).bundles == [{"CPU": 1.0}]
