"""What people look at: the trial table, the summary, TensorBoard events, CSV and JSON logs."""

from __future__ import annotations

import glob
import io
import os
import struct
from collections.abc import Iterator

import pytest
from nebula.tune._progress import ProgressTable
from nebula.tune._resources import resources_from
from nebula.tune._trial import Trial

import nebula
from nebula import tune


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def objective(config):
    for step in range(1, 4):
        tune.report({"loss": config["lr"] / step, "nested": {"a": step}})


def _events(path: str) -> list:
    from tensorboardX.proto.event_pb2 import Event

    events = []
    with open(path, "rb") as file:
        while header := file.read(8):
            (length,) = struct.unpack("Q", header)
            file.read(4)
            data = file.read(length)
            file.read(4)
            events.append(Event.FromString(data))
    return events


def test_tensorboard_csv_and_json_logs_per_trial(tmp_path):
    pytest.importorskip("tensorboardX")
    results = tune.Tuner(
        objective,
        param_space={"lr": tune.grid_search([0.1, 0.2])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="logs", verbose=0),
    ).fit()
    best = results.get_best_result()
    assert best.config["lr"] == 0.1 and best.metrics["loss"] == pytest.approx(0.1 / 3)
    (event_file,) = glob.glob(os.path.join(best.path, "events.out.tfevents.*"))
    events = _events(event_file)
    assert events[0].file_version == "brain.Event:2"
    scalars = {(e.step, v.tag): v.simple_value for e in events[1:] for v in e.summary.value}
    assert scalars[(3, "tune/loss")] == pytest.approx(0.1 / 3)
    assert scalars[(2, "tune/nested/a")] == 2
    frame = best.metrics_dataframe
    assert list(frame["nested/a"]) == [1, 2, 3] and "config/lr" not in frame
    assert results.get_dataframe(filter_metric="loss", filter_mode="max")["loss"].tolist() == [
        0.1,
        0.2,
    ]


def test_a_logger_the_user_passes_is_not_added_twice(tmp_path):
    results = tune.Tuner(
        objective,
        param_space={"lr": 0.1},
        run_config=tune.RunConfig(
            storage_path=str(tmp_path),
            name="json_only",
            verbose=0,
            callbacks=[tune.JsonLoggerCallback()],
        ),
    ).fit()
    with open(os.path.join(results[0].path, "result.json")) as file:
        assert len(file.readlines()) == 3
    assert "progress.csv" in os.listdir(results[0].path)


def _trial(i, status, loss):
    trial = Trial(
        f"abc_{i:05d}",
        {"lr": 0.1 * (i + 1), "layers": 2},
        str(i),
        "objective",
        resources_from(None),
    )
    trial.status, trial.iteration, trial.time_total_s = status, 3, 1.5
    trial.last_result = {"loss": loss}
    return trial


def test_the_table_shows_status_metric_iterations_and_time():
    out = io.StringIO()
    table = ProgressTable("loss", "min", verbose=1, file=out)
    trials = [_trial(0, "TERMINATED", 0.5), _trial(1, "RUNNING", 0.25), _trial(2, "ERROR", 0.9)]
    trials[2].error = "Traceback...\nValueError: boom"
    table.console.print(table.table(trials))
    text = out.getvalue()
    for expected in ("objective_abc_00000", "TERMINATED", "RUNNING", "ERROR", "lr", "0.25", "1.50"):
        assert expected in text
    assert "layers" not in text  # only the parameters that differ between trials
    summary = table.summary(trials)
    assert "Best trial objective_abc_00001" in summary and "1 trials errored" in summary


def test_verbose_sweeps_print_the_final_table_and_summary(tmp_path, capsys):
    tune.Tuner(
        objective,
        param_space={"lr": tune.grid_search([0.1, 0.3])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="verbose", verbose=2),
    ).fit()
    out = capsys.readouterr().out
    assert "Sweep finished" in out and "Best trial" in out and "completed" in out
