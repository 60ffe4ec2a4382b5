"""Bad input is refused with a clear error before the sweep runs, never an empty result."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

import nebula
from nebula import tune
from nebula.plugins import RegistryLookupError


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def objective(config):
    tune.report({"score": 1.0})


def fit(trainable=objective, space=None, tmp_path=None, **tune_kw):
    storage = str(tmp_path) if tmp_path is not None else None
    return tune.Tuner(
        trainable,
        param_space=space or {},
        tune_config=tune.TuneConfig(**tune_kw),
        run_config=tune.RunConfig(storage_path=storage, name="e", verbose=0),
    ).fit()


def test_a_metric_no_trial_reports_stops_the_sweep_after_the_first_result(tmp_path):
    with pytest.raises(ValueError, match=r"without 'accuracy'.*it reported: .*score"):
        fit(metric="accuracy", mode="max", num_samples=50, tmp_path=tmp_path)


def test_a_mode_other_than_min_or_max():
    with pytest.raises(ValueError, match=r"TuneConfig.mode must be 'min' or 'max', got 'best'"):
        tune.TuneConfig(metric="score", mode="best")


def test_a_trainable_with_the_wrong_arguments(tmp_path):
    def two_args(config, extra):
        pass

    with pytest.raises(TypeError, match=r"must take the config dict as its one argument"):
        fit(two_args, tmp_path=tmp_path)
    with pytest.raises(TypeError, match=r"has no train"):
        fit(type("NotTrainable", (), {}), tmp_path=tmp_path)


def test_a_config_value_that_does_not_pickle(tmp_path):
    with pytest.raises(ValueError, match=r"param_space\['lock'\] cannot be pickled"):
        fit(space={"lock": threading.Lock()}, tmp_path=tmp_path)


def test_a_storage_path_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match=r"cannot write to storage_path"):
        fit(tmp_path=blocker)
    if os.geteuid() != 0:
        readonly = tmp_path / "ro"
        readonly.mkdir(mode=0o500)
        with pytest.raises(ValueError, match=r"cannot write to storage_path"):
            fit(tmp_path=readonly)


def test_unknown_scheduler_and_searcher_names_list_the_known_ones(tmp_path):
    with pytest.raises(RegistryLookupError, match=r"unknown tune scheduler 'ashaa'.*'asha'"):
        fit(scheduler="ashaa", metric="score", mode="max", tmp_path=tmp_path)
    with pytest.raises(RegistryLookupError, match=r"unknown tune searcher 'optunaa'.*'optuna'"):
        fit(search_alg="optunaa", metric="score", mode="max", tmp_path=tmp_path)
    with pytest.raises(RegistryLookupError, match=r"unknown tune trainable 'NoSuchAlgo'"):
        tune.Tuner("NoSuchAlgo")


def test_a_scheduler_without_a_metric(tmp_path):
    with pytest.raises(ValueError, match=r"AsyncHyperBandScheduler needs a metric and a mode"):
        fit(scheduler="asha", tmp_path=tmp_path)


def test_metric_given_twice_differently(tmp_path):
    scheduler = tune.schedulers.ASHAScheduler(metric="loss", mode="min")
    with pytest.raises(ValueError, match=r"set the metric in one place only"):
        fit(scheduler=scheduler, metric="score", mode="max", tmp_path=tmp_path)


def test_a_trial_asking_for_more_than_the_cluster_has(tmp_path):
    with pytest.raises(ValueError, match=r"asks for .*'GPU': 2.0.* but the cluster has only"):
        fit(tune.with_resources(objective, {"gpu": 2}), tmp_path=tmp_path)


def test_checkpoint_frequency_with_a_function_trainable(tmp_path):
    with pytest.raises(ValueError, match=r"class trainables only"):
        tune.Tuner(
            objective,
            run_config=tune.RunConfig(
                storage_path=str(tmp_path),
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
            ),
        ).fit()


def test_report_outside_a_trial():
    with pytest.raises(RuntimeError, match=r"only inside a trainable run by a Tuner"):
        tune.report({"x": 1})
    assert tune.get_context().get_trial_id() is None


def test_fail_fast_raise_surfaces_the_trial_error(tmp_path):
    def boom(config):
        raise KeyError("missing")

    with pytest.raises(tune.TrialError, match=r"KeyError: 'missing'"):
        tune.Tuner(
            boom,
            run_config=tune.RunConfig(
                storage_path=str(tmp_path),
                verbose=0,
                failure_config=tune.FailureConfig(fail_fast="raise"),
            ),
        ).fit()
