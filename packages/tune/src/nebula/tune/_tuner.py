"""``Tuner``: checks a sweep's inputs, builds the controller and runs the loop."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from nebula.tune._callback import Callback, CallbackList
from nebula.tune._config import RunConfig, TuneConfig
from nebula.tune._controller import ControllerSettings, TuneController
from nebula.tune._result import ResultGrid, build_results
from nebula.tune._state import ExperimentState, load_state, load_tuner, save_tuner
from nebula.tune._storage import StorageContext
from nebula.tune._trainable import put_parameters, resources_of, trainable_name
from nebula.tune._validate import (
    check_param_space,
    check_trainable,
    resolve_scheduler,
    resolve_search,
    resolve_trainable,
)
from nebula.tune.stopper import as_stopper

__all__ = ["Tuner"]


@dataclasses.dataclass
class _Restored:
    storage: StorageContext
    state: dict[str, Any]
    resume_unfinished: bool
    resume_errored: bool
    restart_errored: bool


class Tuner:
    """Runs ``trainable`` once per config drawn from ``param_space``.

    ``trainable`` is a function ``fn(config)`` that calls ``tune.report``, a ``Trainable``
    class (or any class with ``train``/``save_checkpoint``/``load_checkpoint``), or the name
    of one registered through ``nebula_register_tune_trainables``.
    """

    def __init__(
        self,
        trainable: Any = None,
        *,
        param_space: Any = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
        _restored: _Restored | None = None,
    ) -> None:
        if trainable is None:
            raise TypeError("Tuner() needs a trainable: a function, a class or a registered name.")
        self._trainable = resolve_trainable(trainable)
        self._param_space = check_param_space(param_space)
        self._tune_config = tune_config or TuneConfig()
        self._run_config = run_config or RunConfig()
        if not isinstance(self._tune_config, TuneConfig):
            raise TypeError(f"tune_config must be a TuneConfig, got {type(tune_config).__name__}.")
        if not isinstance(self._run_config, RunConfig):
            raise TypeError(f"run_config must be a RunConfig, got {type(run_config).__name__}.")
        self._restored = _restored
        self._results: ResultGrid | None = None

    # --- restore ---------------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        path: str,
        trainable: Any,
        resume_unfinished: bool = True,
        resume_errored: bool = False,
        restart_errored: bool = False,
        param_space: Any = None,
        storage_filesystem: Any = None,
    ) -> Tuner:
        """Resume the experiment at ``path`` (``<storage_path>/<name>``, local or a URI):
        finished trials stay finished, unfinished ones resume from their last checkpoint,
        errored ones stay failed unless ``resume_errored`` (from their checkpoint) or
        ``restart_errored`` (from scratch).
        """
        parent, name = _split_experiment_path(os.fspath(path))
        storage = StorageContext.create(parent, name, storage_filesystem)
        storage.download_experiment()
        settings = load_tuner(storage)
        state = load_state(storage)
        run_config = dataclasses.replace(
            settings["run_config"],
            name=name,
            storage_path=parent,
            storage_filesystem=storage_filesystem,
        )
        restored = _Restored(storage, state, resume_unfinished, resume_errored, restart_errored)
        return cls(
            trainable,
            param_space=param_space if param_space is not None else settings["param_space"],
            tune_config=settings["tune_config"],
            run_config=run_config,
            _restored=restored,
        )

    @classmethod
    def can_restore(cls, path: str, storage_filesystem: Any = None) -> bool:
        parent, name = _split_experiment_path(os.fspath(path))
        storage = StorageContext.create(parent, name, storage_filesystem)
        from nebula.tune._state import STATE_FILE

        probe = f"{storage.experiment_path}/{STATE_FILE}"
        import pyarrow.fs as pafs

        return storage.filesystem.get_file_info(probe).type == pafs.FileType.File

    # --- fit -------------------------------------------------------------------------------------

    def fit(self) -> ResultGrid:
        """Run the sweep to the end and return its results."""
        import nebula

        tune_config, run_config = self._tune_config, self._run_config
        trainable = self._trainable
        name_of_trainable = trainable_name(trainable)
        check_trainable(trainable, run_config.checkpoint_config)
        stop_criteria, stopper = as_stopper(run_config.stop)
        restored = self._restored
        if restored is not None:
            search, scheduler = restored.state["search"], restored.state["scheduler"]
        else:
            search = resolve_search(tune_config.search_alg)
            scheduler = resolve_scheduler(tune_config.scheduler)
        metric, mode = _search_properties(tune_config, scheduler, search)
        if restored is None:
            num_samples = tune_config.num_samples if tune_config.num_samples > 0 else 2**31
            search.set_search_properties(metric, mode, self._param_space, num_samples)
            scheduler.set_search_properties(metric, mode)
            _require_metric(scheduler)
        storage = restored.storage if restored is not None else self._new_storage(name_of_trainable)
        storage.check_writable()
        if not nebula.is_initialized():
            nebula.init()
        put_parameters(trainable)
        callbacks = CallbackList(self._callbacks(metric, mode))
        state = ExperimentState(storage, callbacks, run_config.sync_config.sync_period)
        reuse = tune_config.reuse_actors
        if reuse is None:
            reuse = not isinstance(trainable, type)
        checkpoint_config = run_config.checkpoint_config
        settings = ControllerSettings(
            experiment_name=os.path.basename(storage.experiment_path),
            trainable_name=name_of_trainable,
            metric=metric,
            mode=mode,
            num_samples=tune_config.num_samples,
            cluster_resources=dict(nebula.cluster_resources()),
            resources_for=lambda config: resources_of(trainable, config),
            trial_path=storage.trial_path,
            local_trial_dir=storage.local_trial_dir,
            filesystem=storage.filesystem,
            max_concurrent=tune_config.max_concurrent_trials,
            time_budget_s=tune_config.time_budget_s,
            stop_criteria=stop_criteria,
            stopper=stopper,
            max_failures=run_config.failure_config.max_failures,
            fail_fast=run_config.failure_config.fail_fast,
            checkpoint_frequency=checkpoint_config.checkpoint_frequency,
            checkpoint_at_end=bool(checkpoint_config.checkpoint_at_end),
            num_to_keep=checkpoint_config.num_to_keep,
            checkpoint_score_attribute=checkpoint_config.checkpoint_score_attribute,
            checkpoint_score_order=checkpoint_config.checkpoint_score_order,
            trial_dirname_creator=tune_config.trial_dirname_creator,
            trial_name_creator=tune_config.trial_name_creator,
        )
        controller = self._controller(settings, search, scheduler, storage)
        if restored is None:
            save_tuner(
                storage,
                {
                    "param_space": self._param_space,
                    "tune_config": tune_config,
                    "run_config": run_config,
                    "trainable_name": name_of_trainable,
                },
            )
        from nebula.tune._loop import TrialLoop

        callbacks.setup(stop=run_config.stop, num_samples=tune_config.num_samples)
        loop = TrialLoop(controller, trainable, callbacks, state, reuse_actors=reuse)
        try:
            loop.run()
        finally:
            callbacks.call("on_experiment_end", trials=controller.trials)
            storage.sync_up(force=True)
        results = build_results(controller.trials, controller, storage.filesystem)
        self._results = ResultGrid(
            results,
            experiment_path=storage.uri,
            metric=metric,
            mode=mode,
            trials=controller.trials,
        )
        return self._results

    def get_results(self) -> ResultGrid:
        if self._results is None:
            raise RuntimeError("get_results() needs a finished fit(); call Tuner.fit() first.")
        return self._results

    # --- helpers ---------------------------------------------------------------------------------

    def _new_storage(self, name_of_trainable: str) -> StorageContext:
        run_config = self._run_config
        name = run_config.name or f"{name_of_trainable}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        return StorageContext.create(run_config.storage_path, name, run_config.storage_filesystem)

    def _controller(
        self, settings: ControllerSettings, search: Any, scheduler: Any, storage: StorageContext
    ) -> TuneController:
        restored = self._restored
        if restored is None:
            return TuneController(settings, search, scheduler)
        state = restored.state
        trials = state["trials"]
        moved = _Relocation(state.get("experiment_path"), storage)
        for trial in trials:
            trial.path = storage.trial_path(trial.dirname)
            trial.local_path = storage.local_trial_dir(trial.dirname)
            trial.checkpoint = moved(trial.checkpoint)
        for shelf in (state.get("shelves") or {}).values():
            for record in shelf.records:
                record.checkpoint = moved(record.checkpoint)
        controller = TuneController(
            settings,
            search,
            scheduler,
            trials=trials,
            experiment_id=state["experiment_id"],
            shelves=state.get("shelves"),
        )
        controller.prepare_resume(
            resume_unfinished=restored.resume_unfinished,
            resume_errored=restored.resume_errored,
            restart_errored=restored.restart_errored,
        )
        return controller

    def _callbacks(self, metric: str | None, mode: str | None) -> list[Callback]:
        from nebula.tune._progress import ProgressTable
        from nebula.tune.logger import CSVLoggerCallback, JsonLoggerCallback
        from nebula.tune.logger._tensorboard import TBXLoggerCallback, tensorboardx_available

        user = list(self._run_config.callbacks or [])
        for callback in user:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"RunConfig.callbacks must hold tune.Callback instances, got "
                    f"{type(callback).__name__}."
                )
        kinds = {type(c) for c in user}
        defaults: list[Callback] = []
        if JsonLoggerCallback not in kinds:
            defaults.append(JsonLoggerCallback())
        if CSVLoggerCallback not in kinds:
            defaults.append(CSVLoggerCallback())
        if (
            TBXLoggerCallback not in kinds
            and tensorboardx_available()
            and os.environ.get("NEBULA_TUNE_DISABLE_TENSORBOARD") != "1"
        ):
            defaults.append(TBXLoggerCallback())
        verbose = self._run_config.verbose
        verbose = 1 if verbose is None else verbose
        reporter = self._run_config.progress_reporter or ProgressTable(metric, mode, verbose)
        return [*defaults, *user, reporter]


class _Relocation:
    """Points checkpoints of an experiment that was moved (or copied) at its new place."""

    def __init__(self, old_path: str | None, storage: StorageContext) -> None:
        self.old = old_path
        self.storage = storage

    def __call__(self, checkpoint: Any) -> Any:
        if checkpoint is None or not self.old or self.old == self.storage.experiment_path:
            return checkpoint
        if not checkpoint.path.startswith(self.old + "/"):
            return checkpoint
        from nebula.tune._checkpoint import Checkpoint

        relative = checkpoint.path[len(self.old) + 1 :]
        return Checkpoint(f"{self.storage.experiment_path}/{relative}", self.storage.filesystem)


def _search_properties(
    tune_config: TuneConfig, scheduler: Any, search: Any
) -> tuple[str | None, str | None]:
    metric, mode = tune_config.metric, tune_config.mode
    for owner, other in ((type(scheduler).__name__, scheduler), (type(search).__name__, search)):
        other_metric = getattr(other, "metric", None)
        other_mode = getattr(other, "mode", None)
        if metric is not None and other_metric is not None and other_metric != metric:
            raise ValueError(
                f"TuneConfig.metric is {metric!r} but the {owner} was built with metric "
                f"{other_metric!r}; set the metric in one place only."
            )
        if mode is not None and other_mode is not None and other_mode != mode:
            raise ValueError(
                f"TuneConfig.mode is {mode!r} but the {owner} was built with mode "
                f"{other_mode!r}; set the mode in one place only."
            )
        metric = metric or other_metric
        mode = mode or other_mode
    if metric is not None and mode is None:
        raise ValueError(f"TuneConfig has metric={metric!r} but no mode; add mode='min' or 'max'.")
    return metric, mode


def _require_metric(scheduler: Any) -> None:
    from nebula.tune.schedulers import FIFOScheduler

    if isinstance(scheduler, FIFOScheduler):
        return
    if scheduler.metric is None or scheduler.mode is None:
        raise ValueError(
            f"{type(scheduler).__name__} needs a metric and a mode to compare trials; set "
            "TuneConfig(metric=..., mode='min' or 'max')."
        )


def _split_experiment_path(path: str) -> tuple[str, str]:
    head, sep, query = path.partition("?")
    head = head.rstrip("/")
    parent, _, name = head.rpartition("/")
    if not name:
        raise ValueError(f"{path!r} is not an experiment directory.")
    if "://" not in head:
        parent = os.path.dirname(os.path.abspath(os.path.expanduser(head)))
    return f"{parent}{sep}{query}", name
