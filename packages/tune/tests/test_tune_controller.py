"""The controller as a pure state machine: events in, commands out (no processes)."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest
from nebula.tune._channel import Batch
from nebula.tune._checkpoint import Checkpoint
from nebula.tune._controller import (
    Abort,
    ActorFailed,
    ControllerSettings,
    DeleteCheckpoint,
    Poll,
    ReleaseActor,
    ResultsArrived,
    StartTrial,
    StopRun,
    Tick,
    TrialStopped,
    TuneController,
)
from nebula.tune._resources import resources_from
from nebula.tune.schedulers import ASHAScheduler, FIFOScheduler
from nebula.tune.search import BasicVariantGenerator
from nebula.tune.stopper import FunctionStopper

from nebula import tune


def make(space=None, num_samples=4, scheduler=None, cpus=2.0, metric="score", mode="max", **kw):
    search = BasicVariantGenerator(random_state=0)
    search.set_search_properties(metric, mode, space or {"x": tune.uniform(0, 1)}, num_samples)
    scheduler = scheduler or FIFOScheduler()
    scheduler.set_search_properties(metric, mode)
    request = kw.pop("resources", None)
    settings = ControllerSettings(
        experiment_name="exp",
        trainable_name="f",
        metric=metric,
        mode=mode,
        num_samples=num_samples,
        cluster_resources={"CPU": cpus},
        resources_for=lambda config: resources_from(request),
        trial_path=lambda d: f"/store/exp/{d}",
        local_trial_dir=lambda d: f"/local/exp/{d}",
        filesystem=pafs.LocalFileSystem(),
        **kw,
    )
    return TuneController(settings, search, scheduler, experiment_id="abcde")


def of(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def result(i, **metrics):
    return {"training_iteration": i, "score": float(i), **metrics}


def test_starts_as_many_trials_as_the_cluster_fits():
    controller = make(num_samples=5)
    starts = of(controller.handle(Tick(0.0)), StartTrial)
    assert [s.trial.trial_id for s in starts] == ["abcde_00000", "abcde_00001"]
    assert starts[0].spec.window is None  # FIFO lets trials run ahead
    assert starts[0].trial.path.startswith("/store/exp/f_abcde_00000")


def test_max_concurrent_trials_caps_starts():
    controller = make(num_samples=5, max_concurrent=1, cpus=8)
    assert len(of(controller.handle(Tick(0.0)), StartTrial)) == 1


def test_results_are_acknowledged_and_a_finished_trial_frees_its_slot():
    controller = make(num_samples=3)
    first = of(controller.handle(Tick(0.0)), StartTrial)[0].trial
    commands = controller.handle(
        ResultsArrived(first.trial_id, Batch([(result(1), None), (result(2), None)], "running"))
    )
    assert of(commands, Poll) == [Poll(first.trial_id, 2, False)]
    commands = controller.handle(ResultsArrived(first.trial_id, Batch([(result(3), None)], "done")))
    assert of(commands, ReleaseActor) == [ReleaseActor(first.trial_id, True)]
    assert [s.trial.trial_id for s in of(commands, StartTrial)] == ["abcde_00002"]
    assert first.status == "TERMINATED" and first.last_result["done"] is True
    assert first.last_result["config"] == first.config


def test_a_scheduler_stop_ends_the_run_and_later_results_are_ignored():
    scheduler = ASHAScheduler(grace_period=1, reduction_factor=2, max_t=4)
    controller = make(num_samples=2, scheduler=scheduler)
    a, b = (s.trial for s in of(controller.handle(Tick(0.0)), StartTrial))
    controller.handle(ResultsArrived(a.trial_id, Batch([(result(1, score=5.0), None)], "running")))
    commands = controller.handle(
        ResultsArrived(
            b.trial_id, Batch([(result(1, score=1.0), None), (result(2), None)], "running")
        )
    )
    assert of(commands, StopRun) == [StopRun(b.trial_id, False)]
    assert b.iteration == 1  # the result after the decision was dropped
    commands = controller.handle(TrialStopped(b.trial_id, True, Batch([], "stopped")))
    assert b.status == "TERMINATED" and of(commands, ReleaseActor)


def test_window_is_one_for_schedulers_that_stop_trials():
    controller = make(scheduler=ASHAScheduler())
    assert of(controller.handle(Tick(0.0)), StartTrial)[0].spec.window == 1


def test_a_missing_metric_aborts_the_sweep_with_a_clear_error():
    controller = make()
    trial = of(controller.handle(Tick(0.0)), StartTrial)[0].trial
    commands = controller.handle(
        ResultsArrived(
            trial.trial_id, Batch([({"training_iteration": 1, "acc": 1}, None)], "running")
        )
    )
    abort = of(commands, Abort)[0]
    assert "without 'score'" in str(abort.error) and "acc" in str(abort.error)
    assert of(commands, StopRun)
    assert controller.finished


def test_failures_retry_from_the_last_checkpoint_then_error():
    controller = make(num_samples=1, max_failures=1)
    trial = of(controller.handle(Tick(0.0)), StartTrial)[0].trial
    checkpoint = Checkpoint("/store/exp/ckpt_000000", pafs.LocalFileSystem())
    controller.handle(ResultsArrived(trial.trial_id, Batch([(result(3), checkpoint)], "running")))
    commands = controller.handle(ActorFailed(trial.trial_id, "node died"))
    restart = of(commands, StartTrial)[0]
    assert restart.spec.restore == checkpoint and restart.spec.iteration == 3
    commands = controller.handle(
        ResultsArrived(trial.trial_id, Batch([], "error", "Traceback: boom"))
    )
    assert trial.status == "ERROR" and trial.error == "Traceback: boom"
    assert controller.finished


def test_a_trial_larger_than_the_cluster_is_an_error_before_it_starts():
    controller = make(resources={"GPU": 1})
    commands = controller.handle(Tick(0.0))
    assert "asks for {'GPU': 1.0}" in str(of(commands, Abort)[0].error)


def test_the_time_budget_stops_every_running_trial():
    controller = make(num_samples=10, time_budget_s=5)
    starts = of(controller.handle(Tick(0.0)), StartTrial)
    commands = controller.handle(Tick(6.0))
    assert {c.trial_id for c in of(commands, StopRun)} == {s.trial.trial_id for s in starts}
    for start in starts:
        controller.handle(TrialStopped(start.trial.trial_id, True, Batch([], "stopped")))
    assert controller.finished


def test_a_driver_side_stopper_judges_every_result():
    controller = make(stopper=FunctionStopper(lambda tid, r: r["training_iteration"] >= 2))
    trial = of(controller.handle(Tick(0.0)), StartTrial)[0].trial
    commands = controller.handle(
        ResultsArrived(trial.trial_id, Batch([(result(2), None)], "running"))
    )
    assert of(commands, StopRun)


def test_num_to_keep_deletes_the_oldest_checkpoints():
    controller = make(num_samples=1, num_to_keep=2)
    trial = of(controller.handle(Tick(0.0)), StartTrial)[0].trial
    fs = pafs.LocalFileSystem()
    checkpoints = [Checkpoint(f"/store/c{i}", fs) for i in range(3)]
    deleted = []
    for i, checkpoint in enumerate(checkpoints):
        commands = controller.handle(
            ResultsArrived(trial.trial_id, Batch([(result(i + 1), checkpoint)], "running"))
        )
        deleted += [c.checkpoint for c in of(commands, DeleteCheckpoint)]
    assert deleted == [checkpoints[0]]
    assert trial.checkpoint == checkpoints[2]


def test_resume_turns_unfinished_trials_pending_and_keeps_finished_ones():
    controller = make(num_samples=2)
    a, b = (s.trial for s in of(controller.handle(Tick(0.0)), StartTrial))
    controller.handle(ResultsArrived(a.trial_id, Batch([(result(1), None)], "done")))
    snapshot = controller.snapshot()
    restored = TuneController(
        controller.settings,
        snapshot["search"],
        snapshot["scheduler"],
        trials=snapshot["trials"],
        experiment_id="abcde",
    )
    restored.prepare_resume(resume_unfinished=True, resume_errored=False, restart_errored=False)
    starts = of(restored.handle(Tick(0.0)), StartTrial)
    assert [s.trial.trial_id for s in starts] == [b.trial_id]
    assert a.status == "TERMINATED"


@pytest.mark.parametrize("mode", ["avg", None])
def test_a_bad_mode_is_refused_up_front(mode):
    if mode is None:
        with pytest.raises(ValueError, match="no mode"):
            tune.Tuner(lambda c: None, tune_config=tune.TuneConfig(metric="m")).fit()
    else:
        with pytest.raises(ValueError, match="'min' or 'max'"):
            tune.TuneConfig(metric="m", mode=mode)
