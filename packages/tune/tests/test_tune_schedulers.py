"""Schedulers as pure objects: fed results, checked decisions (no cluster)."""

from __future__ import annotations

import pytest
from nebula.tune._checkpoint import Checkpoint
from nebula.tune._resources import resources_from
from nebula.tune._trial import Trial
from nebula.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
    TrialScheduler,
)
from nebula.tune.search import Searcher

from nebula import tune
from nebula.plugins import RegistryLookupError, hookimpl

CONTINUE, PAUSE, STOP = TrialScheduler.CONTINUE, TrialScheduler.PAUSE, TrialScheduler.STOP


class Context:
    """A SchedulerContext over a list of trials, recording what schedulers ask."""

    def __init__(self, trials, search_finished=True):
        self.trials = trials
        self.finished = search_finished
        self.checkpoint_requests = []
        self.stopped = []
        self.restores = []

    def get_trials(self):
        return self.trials

    def can_start(self, trial):
        return True

    def search_finished(self):
        return self.finished

    def request_checkpoint(self, trial):
        self.checkpoint_requests.append(trial)

    def stop_trial(self, trial):
        self.stopped.append(trial)
        trial.status = "TERMINATED"

    def set_trial_restore(self, trial, config, checkpoint, tag):
        self.restores.append((trial, config, checkpoint))
        trial.config, trial.restore_from = config, checkpoint


def _trials(n, config=None):
    return [
        Trial(f"t{i}", dict(config or {}), str(i), "f", resources_from(None), status="RUNNING")
        for i in range(n)
    ]


def test_asha_stops_trials_below_the_rung_quantile():
    scheduler = ASHAScheduler(metric="acc", mode="max", grace_period=1, reduction_factor=2, max_t=8)
    trials = _trials(4)
    ctx = Context(trials)
    for t in trials:
        scheduler.on_trial_add(ctx, t)
    decisions = [
        scheduler.on_trial_result(ctx, t, {"training_iteration": 1, "acc": acc})
        for t, acc in zip(trials, [0.5, 0.9, 0.1, 0.95])
    ]
    # The first trial at a rung has nothing to be compared with; later weak ones stop.
    assert decisions == [CONTINUE, CONTINUE, STOP, CONTINUE]
    assert scheduler.on_trial_result(ctx, trials[1], {"training_iteration": 8, "acc": 1}) == STOP


def test_asha_min_mode_flips_the_comparison():
    scheduler = ASHAScheduler(
        metric="loss", mode="min", grace_period=1, reduction_factor=2, max_t=8
    )
    trials = _trials(2)
    ctx = Context(trials)
    for t in trials:
        scheduler.on_trial_add(ctx, t)
    assert (
        scheduler.on_trial_result(ctx, trials[0], {"training_iteration": 1, "loss": 0.1})
        == CONTINUE
    )
    assert scheduler.on_trial_result(ctx, trials[1], {"training_iteration": 1, "loss": 5.0}) == STOP


def test_hyperband_pauses_at_the_milestone_then_keeps_the_best():
    scheduler = HyperBandScheduler(metric="acc", mode="max", max_t=9, reduction_factor=3)
    trials = _trials(9)
    ctx = Context(trials)
    for t in trials:
        scheduler.on_trial_add(ctx, t)
    bracket_size = scheduler._brackets[0].size
    assert bracket_size == 9  # s_max=2: ceil(3/3 * 9) trials starting at 1 iteration
    decisions = []
    for i, t in enumerate(trials):
        decision = scheduler.on_trial_result(ctx, t, {"training_iteration": 1, "acc": i})
        if decision == PAUSE:
            t.status = "PAUSED"
        decisions.append(decision)
    assert decisions[:-1] == [PAUSE] * 8
    assert decisions[-1] == CONTINUE  # the best (acc=8) finishes the rung and goes on
    survivors = [t for t in trials if t.status == "PAUSED"]
    assert {t.trial_id for t in survivors} == {"t6", "t7"}
    assert {t.trial_id for t in ctx.stopped} == {f"t{i}" for i in range(6)}
    assert scheduler.choose_trial_to_run(ctx) in survivors


def test_median_stopping_rule_stops_a_trial_behind_the_median():
    scheduler = MedianStoppingRule(
        time_attr="training_iteration",
        metric="acc",
        mode="max",
        grace_period=1,
        min_samples_required=2,
    )
    trials = _trials(3)
    ctx = Context(trials)
    for step in range(1, 4):
        for t, acc in zip(trials[:2], [1.0, 2.0]):
            assert (
                scheduler.on_trial_result(ctx, t, {"training_iteration": step, "acc": acc})
                == CONTINUE
            )
    assert (
        scheduler.on_trial_result(ctx, trials[2], {"training_iteration": 1, "acc": 5.0}) == CONTINUE
    )
    assert (
        scheduler.on_trial_result(ctx, trials[2], {"training_iteration": 2, "acc": 0.1}) == CONTINUE
    )
    slow = _trials(1)[0]
    slow.trial_id = "slow"
    assert scheduler.on_trial_result(ctx, slow, {"training_iteration": 2, "acc": 0.5}) == STOP


def test_pbt_exploits_a_top_trial_and_perturbs_its_config():
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        metric="acc",
        mode="max",
        perturbation_interval=2,
        hyperparam_mutations={"lr": [0.001, 0.01, 0.1], "momentum": tune.uniform(0.1, 0.9)},
        quantile_fraction=0.25,
        resample_probability=0.0,
        seed=0,
    )
    trials = _trials(4, {"lr": 0.01, "momentum": 0.5})
    ctx = Context(trials)
    for t in trials:
        scheduler.on_trial_add(ctx, t)
    trials[3].checkpoint = Checkpoint("/tmp/donor", None)
    for t, acc in zip(trials, [0.1, 0.2, 0.3, 0.9]):
        decision = scheduler.on_trial_result(ctx, t, {"training_iteration": 2, "acc": acc})
        if t is trials[0]:
            assert decision == CONTINUE  # not everyone has a score yet: no quantiles
    # Whoever leads the population when it reports saves a checkpoint to be copied.
    assert ctx.checkpoint_requests[-1] is trials[3] and trials[0] not in ctx.checkpoint_requests
    decision = scheduler.on_trial_result(ctx, trials[0], {"training_iteration": 4, "acc": 0.1})
    assert decision == PAUSE
    trial, config, checkpoint = ctx.restores[0]
    assert trial is trials[0] and checkpoint == trials[3].checkpoint
    assert config["lr"] in (0.001, 0.1)  # a neighbour of the donor's 0.01
    assert any(config["momentum"] == pytest.approx(v) for v in (0.6, 0.4))


def test_pbt_fills_missing_hyperparameters_on_add():
    scheduler = PopulationBasedTraining(
        metric="acc", mode="max", hyperparam_mutations={"lr": [0.1, 0.2]}, seed=1
    )
    trial = _trials(1)[0]
    scheduler.on_trial_add(Context([trial]), trial)
    assert trial.config["lr"] in (0.1, 0.2)


def test_fifo_runs_pending_before_paused():
    trials = _trials(2)
    trials[0].status, trials[1].status = "PAUSED", "PENDING"
    assert FIFOScheduler().choose_trial_to_run(Context(trials)) is trials[1]


def test_schedulers_and_searchers_are_found_by_name():
    assert isinstance(tune.create_scheduler("asha", metric="m", mode="max"), ASHAScheduler)
    assert isinstance(
        tune.create_scheduler("pbt", hyperparam_mutations={"a": [1]}), PopulationBasedTraining
    )
    assert type(tune.create_searcher("random")).__name__ == "BasicVariantGenerator"
    with pytest.raises(RegistryLookupError, match=r"unknown tune scheduler 'nope'.*'asha'"):
        tune.create_scheduler("nope")
    with pytest.raises(RegistryLookupError, match=r"unknown tune searcher 'nope'.*'optuna'"):
        tune.create_searcher("nope")


class _EveryOther(TrialScheduler):
    def on_trial_result(self, controller, trial, result):
        return STOP if result["training_iteration"] >= 2 else CONTINUE


class _ThirdPartyPlugin:
    @staticmethod
    @hookimpl
    def nebula_register_tune_schedulers(registry):
        registry.add("every_other", _EveryOther, description="test scheduler")


class _SearchPlugin:
    @staticmethod
    @hookimpl
    def nebula_register_tune_searchers(registry):
        registry.add("always_one", _AlwaysOne)

    @staticmethod
    @hookimpl
    def nebula_register_tune_trainables(registry):
        registry.add("Plugged", _plugged)


class _AlwaysOne(Searcher):
    def suggest(self, trial_id):
        return {"x": 1}


def _plugged(config):
    pass


def test_third_party_searchers_and_trainables_register_through_their_hooks():
    from nebula.tune.hookspecs import trainable_registry

    from nebula.plugins import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    try:
        get_plugin_manager().register(_SearchPlugin, name="search-plugin")
        assert isinstance(tune.create_searcher("always_one"), _AlwaysOne)
        assert trainable_registry().get("Plugged") is _plugged
        registration = trainable_registry().registration("Plugged")
        assert registration.plugin == "search-plugin"
    finally:
        reset_plugin_manager()


def test_a_third_party_scheduler_registers_through_the_plugin_hook():
    from nebula.plugins import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    try:
        get_plugin_manager().register(_ThirdPartyPlugin, name="third-party")
        scheduler = tune.create_scheduler("every_other")
        assert isinstance(scheduler, _EveryOther)
        assert "asha" in __import__("nebula.tune.hookspecs").tune.hookspecs.scheduler_registry()
    finally:
        reset_plugin_manager()


def test_loading_the_plugin_stays_cheap():
    import subprocess
    import sys

    code = (
        "import sys, nebula.tune._plugin, nebula.tune.hookspecs\n"
        "heavy = [m for m in ('pyarrow', 'optuna', 'rich', 'pandas', 'tensorboardX', "
        "'nebula.tune.schedulers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
