"""The sweep as a pure state machine: events in, commands out.

:class:`TuneController` owns the trials, the search algorithm and the scheduler. It is fed
events (a tick of the clock, a batch of results, a trial process that stopped or died) and
answers with commands (start a trial, poll it, stop it, tell the callbacks, save the state).
It never touches an actor or a file, so every decision can be unit-tested with plain
events; :mod:`nebula.tune._loop` is the thin shell that carries the commands out.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from nebula.tune._channel import Batch, TrialSpec
from nebula.tune._checkpoint import Checkpoint
from nebula.tune._checkpoints import CheckpointShelf
from nebula.tune._resources import PlacementGroupFactory
from nebula.tune._trial import Trial, TrialStatus
from nebula.tune._util import flat_view, lookup
from nebula.tune.schedulers._base import TrialScheduler
from nebula.tune.search._algorithms import SearchAlgorithm
from nebula.tune.stopper import Stopper

__all__ = [
    "Abort",
    "ActorFailed",
    "ControllerSettings",
    "DeleteCheckpoint",
    "Notify",
    "Poll",
    "ResultsArrived",
    "SaveState",
    "StartTrial",
    "StopRun",
    "Tick",
    "TrialStopped",
    "TuneController",
]

_EPSILON = 1e-9


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """Time passed: start what can start, enforce the time budget."""

    now: float


@dataclass(frozen=True)
class ResultsArrived:
    trial_id: str
    batch: Batch


@dataclass(frozen=True)
class TrialStopped:
    """A stop finished: ``clean`` if the trainable unwound (its process can be reused)."""

    trial_id: str
    clean: bool
    batch: Batch


@dataclass(frozen=True)
class ActorFailed:
    """The trial's process died (or could not be created)."""

    trial_id: str
    error: str


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTrial:
    trial: Trial
    spec: TrialSpec


@dataclass(frozen=True)
class Poll:
    trial_id: str
    acked: int
    save: bool


@dataclass(frozen=True)
class StopRun:
    """Unwind the trial's run; ``save`` asks a class trainable for a checkpoint first."""

    trial_id: str
    save: bool


@dataclass(frozen=True)
class ReleaseActor:
    """The trial's run ended: its process is free (``reusable``) or must go."""

    trial_id: str
    reusable: bool


@dataclass(frozen=True)
class Notify:
    """Tell the callbacks: ``event`` is start, result, checkpoint, complete or error."""

    event: str
    trial: Trial
    payload: Any = None


@dataclass(frozen=True)
class DeleteCheckpoint:
    checkpoint: Checkpoint


@dataclass(frozen=True)
class SaveState:
    urgent: bool = False


@dataclass(frozen=True)
class Abort:
    """End the sweep now and raise ``error`` from ``fit()``."""

    error: BaseException


# --- the controller ------------------------------------------------------------------------


@dataclass
class ControllerSettings:
    experiment_name: str
    trainable_name: str
    metric: str | None
    mode: str | None
    num_samples: int
    cluster_resources: dict[str, float]
    resources_for: Any  # (config) -> PlacementGroupFactory
    trial_path: Any  # (dirname) -> path on the storage filesystem
    local_trial_dir: Any  # (dirname) -> the driver's local directory for the trial's logs
    filesystem: Any
    max_concurrent: int | None = None
    time_budget_s: float | None = None
    stop_criteria: dict[str, float] = field(default_factory=dict)
    stopper: Stopper | None = None
    max_failures: int = 0
    fail_fast: bool | str = False
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool = False
    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    trial_dirname_creator: Any = None
    trial_name_creator: Any = None


@dataclass
class _Run:
    """A trial's current stay in a process."""

    acked: int = 0
    save_requested: bool = False
    stopping: str | None = None  # the status the trial takes once its stop completes


class TuneController:
    def __init__(
        self,
        settings: ControllerSettings,
        search: SearchAlgorithm,
        scheduler: TrialScheduler,
        *,
        trials: list[Trial] | None = None,
        experiment_id: str | None = None,
        shelves: dict[str, CheckpointShelf] | None = None,
    ) -> None:
        self.settings = settings
        self.search = search
        self.scheduler = scheduler
        self.trials: list[Trial] = list(trials or [])
        self._by_id = {t.trial_id: t for t in self.trials}
        self.experiment_id = experiment_id or secrets.token_hex(3)[:5]
        self._runs: dict[str, _Run] = {}
        self._shelves: dict[str, CheckpointShelf] = dict(shelves or {})
        self._used: dict[str, float] = {}
        self._start_time: float | None = None
        self._out: list[Any] = []
        self._stopping_all = False
        self._fatal: BaseException | None = None
        self._metric_checked: set[str] = set()
        self.iteration = 0

    # --- the scheduler's view (SchedulerContext) --------------------------------------------

    def get_trials(self) -> list[Trial]:
        return self.trials

    def can_start(self, trial: Trial) -> bool:
        if self._stopping_all:
            return False
        if (
            self.settings.max_concurrent is not None
            and len(self._runs) >= self.settings.max_concurrent
        ):
            return False
        return _fits(
            self._used, trial.resources.required_resources, self.settings.cluster_resources
        )

    def search_finished(self) -> bool:
        return self.search.is_finished()

    def request_checkpoint(self, trial: Trial) -> None:
        run = self._runs.get(trial.trial_id)
        if run is not None:
            run.save_requested = True

    def stop_trial(self, trial: Trial) -> None:
        run = self._runs.get(trial.trial_id)
        if run is not None:
            if run.stopping is not None:
                run.stopping = TrialStatus.TERMINATED  # a pause under way becomes the end
            else:
                self._stop_run(trial, TrialStatus.TERMINATED, save=False)
        elif trial.status in (TrialStatus.PENDING, TrialStatus.PAUSED):
            self._complete(trial)

    def set_trial_restore(
        self, trial: Trial, config: dict[str, Any], checkpoint: Checkpoint, tag: str
    ) -> None:
        trial.config = config
        trial.restore_from = checkpoint
        trial.experiment_tag = tag

    # --- driving ---------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        if self._fatal is not None:
            return True
        if self._runs:
            return False
        if self._stopping_all:
            return True
        waiting = any(t.status in (TrialStatus.PENDING, TrialStatus.PAUSED) for t in self.trials)
        return not waiting and self.search.is_finished()

    def handle(self, event: Any) -> list[Any]:
        """Apply one event; return the commands it leads to, in order."""
        self._out = []
        try:
            if isinstance(event, Tick):
                self._on_tick(event.now)
            elif isinstance(event, ResultsArrived):
                self._on_results(event.trial_id, event.batch)
            elif isinstance(event, TrialStopped):
                self._on_stopped(event)
            elif isinstance(event, ActorFailed):
                self._on_failure(self._by_id[event.trial_id], event.error, None, actor_dead=True)
            else:
                raise TypeError(f"unknown event {event!r}")
            if not isinstance(event, Tick):
                self._fill_slots()
        except _SweepError as exc:
            self._abort(exc.error)
        return self._out

    def _on_tick(self, now: float) -> None:
        if self._start_time is None:
            self._start_time = now
        budget = self.settings.time_budget_s
        if budget is not None and now - self._start_time >= budget and not self._stopping_all:
            self._stop_everything()
        self._fill_slots()

    # --- creating and starting trials ---------------------------------------------------------

    def _fill_slots(self) -> None:
        if self._stopping_all or self._fatal is not None:
            return
        while True:
            self._create_trials()
            trial = self.scheduler.choose_trial_to_run(self)
            if trial is None:
                return
            self._start(trial)

    def _create_trials(self) -> None:
        pending = sum(1 for t in self.trials if t.status == TrialStatus.PENDING)
        while pending < 2 and not self.search.is_finished():
            trial_id = f"{self.experiment_id}_{len(self.trials):05d}"
            suggestion = self.search.next_trial(trial_id)
            if suggestion is None:
                return
            trial = self._new_trial(trial_id, suggestion.config, suggestion.tag)
            self.trials.append(trial)
            self._by_id[trial_id] = trial
            self.scheduler.on_trial_add(self, trial)
            pending += 1
            self._out.append(SaveState())

    def _new_trial(self, trial_id: str, config: dict[str, Any], tag: str) -> Trial:
        settings = self.settings
        resources: PlacementGroupFactory = settings.resources_for(config)
        missing = _shortfall(resources.required_resources, settings.cluster_resources)
        if missing:
            raise _SweepError(
                ValueError(
                    f"trial {trial_id} asks for {resources.required_resources} but the cluster "
                    f"has only {settings.cluster_resources}; ask for less per trial "
                    "(tune.with_resources) or add nodes with those resources."
                )
            )
        index = len(self.trials)
        trial = Trial(
            trial_id,
            config,
            f"{index}_{tag}" if tag else str(index),
            settings.trainable_name,
            resources,
        )
        if settings.trial_name_creator is not None:
            trial.custom_name = str(settings.trial_name_creator(trial))
        if settings.trial_dirname_creator is not None:
            trial.dirname = str(settings.trial_dirname_creator(trial))
        else:
            trial.dirname = _dirname(settings.trainable_name, trial_id, tag)
        trial.path = settings.trial_path(trial.dirname)
        trial.local_path = settings.local_trial_dir(trial.dirname)
        return trial

    def _start(self, trial: Trial) -> None:
        settings = self.settings
        restore = trial.restore_from or trial.checkpoint
        from_donor = trial.restore_from is not None
        trial.restore_from = None
        iteration = trial.checkpoint_iteration if restore is not None else 0
        time_total = trial.checkpoint_time_s if restore is not None else 0.0
        if from_donor and restore is not None:
            metrics = self._metrics_at(restore)
            if metrics is not None:
                # The trial now stands where its donor's checkpoint stood; should it end
                # without a new result, that is its last result.
                iteration = int(metrics.get("training_iteration", iteration))
                time_total = float(metrics.get("time_total_s", time_total))
                trial.last_result = {**metrics, "trial_id": trial.trial_id, "config": trial.config}
        window = self.scheduler.result_window
        if settings.stopper is not None:
            window = 1  # a driver-side stopper must judge every result before the next
        spec = TrialSpec(
            trial_id=trial.trial_id,
            trial_name=str(trial),
            experiment_name=settings.experiment_name,
            config=trial.config,
            trial_path=trial.path,
            filesystem=settings.filesystem,
            restore=restore,
            iteration=iteration,
            time_total_s=time_total,
            checkpoint_index=self._shelf(trial)._count,
            window=window,
            stop_criteria=settings.stop_criteria,
            checkpoint_frequency=settings.checkpoint_frequency,
            checkpoint_at_end=settings.checkpoint_at_end,
            resources=trial.resources,
        )
        trial.status = TrialStatus.RUNNING
        trial.iteration = iteration
        self._runs[trial.trial_id] = _Run()
        _add(self._used, trial.resources.required_resources, 1)
        self._out.append(StartTrial(trial, spec))
        self._out.append(Notify("start", trial))
        self._out.append(SaveState())

    # --- results ------------------------------------------------------------------------------

    def _on_results(self, trial_id: str, batch: Batch) -> None:
        trial = self._by_id[trial_id]
        run = self._runs.get(trial_id)
        if run is None:
            return
        if run.stopping is not None:
            self._take_checkpoints(trial, batch)
            return
        decision = TrialScheduler.CONTINUE
        for result, checkpoint in batch.records:
            if result is None:
                if checkpoint is not None:
                    self._record_checkpoint(trial, checkpoint, trial.last_result)
                continue
            run.acked += 1
            decision = self._on_result(trial, result, checkpoint)
            if decision != TrialScheduler.CONTINUE:
                break
        if batch.status == "error":
            self._on_failure(trial, batch.error or "", batch.cause, actor_dead=False)
        elif batch.status in ("done", "stopped") and decision != TrialScheduler.PAUSE:
            self._end_run(trial, reusable=True)
            self._complete(trial)
        elif decision == TrialScheduler.STOP:
            self._stop_run(trial, TrialStatus.TERMINATED, save=False)
        elif decision == TrialScheduler.PAUSE:
            self._stop_run(trial, TrialStatus.PAUSED, save=True)
        else:
            save, run.save_requested = run.save_requested, False
            self._out.append(Poll(trial_id, run.acked, save))
        if self._stopping_all:
            return
        if self.settings.stopper is not None and self.settings.stopper.stop_all():
            self._stop_everything()

    def _on_result(
        self, trial: Trial, result: dict[str, Any], checkpoint: Checkpoint | None
    ) -> str:
        settings = self.settings
        self.iteration += 1
        if trial.trial_id not in self._metric_checked:
            self._metric_checked.add(trial.trial_id)
            self._check_metric(trial, result)
        result["config"] = trial.config
        trial.observe(result, settings.metric, settings.mode)
        # Metrics nested in the result (RL's) are named by their "a/b" path.
        view = flat_view(result)
        if checkpoint is not None:
            self._record_checkpoint(trial, checkpoint, result)
        self._out.append(Notify("result", trial, result))
        if result.get("done"):
            return TrialScheduler.CONTINUE
        if settings.stopper is not None and settings.stopper(trial.trial_id, view):
            result["done"] = True
            return TrialScheduler.STOP
        self.search.on_trial_result(trial.trial_id, view)
        decision = self.scheduler.on_trial_result(self, trial, view)
        if decision == TrialScheduler.STOP:
            trial.stopped_by_scheduler = True
        return decision

    def _check_metric(self, trial: Trial, result: dict[str, Any]) -> None:
        for owner, metric in (
            ("TuneConfig.metric", self.settings.metric),
            (type(self.scheduler).__name__, self.scheduler.metric),
            (type(self.search).__name__, self.search.metric),
        ):
            if metric is not None and lookup(result, metric) is None:
                reported = ", ".join(sorted(k for k in result if k != "config"))
                raise _SweepError(
                    ValueError(
                        f"trial {trial.trial_id} reported a result without {metric!r}, the "
                        f"metric named by {owner}; it reported: {reported}. Report that "
                        "metric in every result, or set the metric the trainable reports."
                    )
                )

    def _record_checkpoint(
        self, trial: Trial, checkpoint: Checkpoint, metrics: dict[str, Any]
    ) -> None:
        trial.checkpoint = checkpoint
        trial.checkpoint_iteration = int(metrics.get("training_iteration", trial.iteration))
        trial.checkpoint_time_s = float(metrics.get("time_total_s", trial.time_total_s))
        for dropped in self._shelf(trial).add(checkpoint, metrics):
            if dropped != checkpoint and not self._in_use(dropped):
                self._out.append(DeleteCheckpoint(dropped))
        self._out.append(Notify("checkpoint", trial, checkpoint))

    def _in_use(self, checkpoint: Checkpoint) -> bool:
        return any(t.restore_from == checkpoint or t.checkpoint == checkpoint for t in self.trials)

    def _take_checkpoints(self, trial: Trial, batch: Batch) -> None:
        for result, checkpoint in batch.records:
            if result is None and checkpoint is not None:
                self._record_checkpoint(trial, checkpoint, trial.last_result)

    def _shelf(self, trial: Trial) -> CheckpointShelf:
        shelf = self._shelves.get(trial.trial_id)
        if shelf is None:
            s = self.settings
            shelf = CheckpointShelf(
                s.num_to_keep, s.checkpoint_score_attribute, s.checkpoint_score_order
            )
            if trial.checkpoint is not None:
                shelf.records.append(_record(trial))
                shelf._count = _checkpoint_count(trial.checkpoint)
            self._shelves[trial.trial_id] = shelf
        return shelf

    def _metrics_at(self, checkpoint: Checkpoint) -> dict[str, Any] | None:
        """The result a (donor's) checkpoint was saved with."""
        for shelf in self._shelves.values():
            for record in shelf.records:
                if record.checkpoint == checkpoint:
                    return record.metrics
        return None

    def best_checkpoints(self, trial: Trial) -> list[tuple[Checkpoint, dict[str, Any]]]:
        return self._shelf(trial).best()

    # --- ending runs ----------------------------------------------------------------------------

    def _stop_run(self, trial: Trial, then: str, *, save: bool) -> None:
        run = self._runs[trial.trial_id]
        if run.stopping is not None:
            return
        run.stopping = then
        self._out.append(StopRun(trial.trial_id, save))

    def _on_stopped(self, event: TrialStopped) -> None:
        trial = self._by_id[event.trial_id]
        run = self._runs.get(event.trial_id)
        if run is None:
            return
        self._take_checkpoints(trial, event.batch)
        then = run.stopping or TrialStatus.TERMINATED
        self._end_run(trial, reusable=event.clean)
        if event.batch.status == "error" and then != TrialStatus.PAUSED:
            self._on_failure(
                trial, event.batch.error or "", event.batch.cause, actor_dead=False, run_ended=True
            )
        elif then == TrialStatus.PAUSED:
            trial.status = TrialStatus.PAUSED
            self._out.append(SaveState())
        else:
            self._complete(trial)

    def _end_run(self, trial: Trial, *, reusable: bool) -> None:
        if self._runs.pop(trial.trial_id, None) is not None:
            _add(self._used, trial.resources.required_resources, -1)
            self._out.append(ReleaseActor(trial.trial_id, reusable))

    def _complete(self, trial: Trial) -> None:
        trial.status = TrialStatus.TERMINATED
        if trial.last_result:
            trial.last_result["done"] = True
        last = flat_view(trial.last_result)
        self.scheduler.on_trial_complete(self, trial, last)
        self.search.on_trial_complete(trial.trial_id, last)
        self._out.append(Notify("complete", trial))
        self._out.append(SaveState(urgent=True))

    def _on_failure(
        self,
        trial: Trial,
        error: str,
        cause: BaseException | None,
        *,
        actor_dead: bool,
        run_ended: bool = False,
    ) -> None:
        if not run_ended:
            self._end_run(trial, reusable=not actor_dead)
        trial.num_failures += 1
        limit = self.settings.max_failures
        if (limit == -1 or trial.num_failures <= limit) and not self._stopping_all:
            trial.status = TrialStatus.PENDING
            trial.error = error
            self._out.append(Notify("recover", trial, error))
            self._out.append(SaveState())
            return
        trial.status = TrialStatus.ERROR
        trial.error = error
        self.scheduler.on_trial_error(self, trial)
        self.search.on_trial_complete(
            trial.trial_id, flat_view(trial.last_result) or None, error=True
        )
        self._out.append(Notify("error", trial, cause))
        self._out.append(SaveState(urgent=True))
        fail_fast = self.settings.fail_fast
        if fail_fast == "raise":
            from nebula.tune._errors import TrialError

            raise _SweepError(TrialError(trial.trial_id, error, cause))
        if fail_fast:
            self._stop_everything()

    def _stop_everything(self) -> None:
        self._stopping_all = True
        for trial in self.trials:
            if trial.trial_id in self._runs:
                self._stop_run(trial, TrialStatus.TERMINATED, save=False)

    def _abort(self, error: BaseException) -> None:
        self._fatal = error
        self._stopping_all = True
        for trial_id in list(self._runs):
            self._out.append(StopRun(trial_id, False))
        self._out.append(Abort(error))

    # --- recovery -----------------------------------------------------------------------------

    def prepare_resume(
        self, *, resume_unfinished: bool, resume_errored: bool, restart_errored: bool
    ) -> None:
        """Turn a saved sweep's trials back into ones that can run (after Tuner.restore)."""
        for trial in self.trials:
            if trial.status in (TrialStatus.RUNNING, TrialStatus.PAUSED, TrialStatus.PENDING):
                if resume_unfinished:
                    trial.status = TrialStatus.PENDING
                else:
                    trial.status = TrialStatus.TERMINATED
            elif trial.status == TrialStatus.ERROR and (resume_errored or restart_errored):
                trial.status = TrialStatus.PENDING
                trial.error = None
                trial.num_failures = 0
                if restart_errored:
                    trial.checkpoint = None
                    trial.checkpoint_iteration = 0
                    trial.checkpoint_time_s = 0.0
                    trial.last_result = {}
            trial.restore_from = None
            if trial.status == TrialStatus.PENDING:
                self.scheduler.on_trial_add(self, trial)

    def snapshot(self) -> dict[str, Any]:
        """What a restore needs: trials, the search and scheduler states, the id."""
        return {
            "experiment_id": self.experiment_id,
            "trials": self.trials,
            "search": self.search,
            "scheduler": self.scheduler,
            "shelves": self._shelves,
            "experiment_path": self.settings.trial_path("").rstrip("/"),
        }


class _SweepError(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _fits(used: dict[str, float], request: dict[str, float], total: dict[str, float]) -> bool:
    return all(used.get(k, 0.0) + v <= total.get(k, 0.0) + _EPSILON for k, v in request.items())


def _shortfall(request: dict[str, float], total: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in request.items() if v > total.get(k, 0.0) + _EPSILON}


def _add(used: dict[str, float], request: dict[str, float], sign: int) -> None:
    for key, value in request.items():
        used[key] = used.get(key, 0.0) + sign * value


def _dirname(trainable_name: str, trial_id: str, tag: str) -> str:
    safe = "".join(c if c.isalnum() or c in "=.,-_" else "_" for c in tag)
    name = f"{trainable_name}_{trial_id}"
    return f"{name}_{safe}"[:120] if safe else name


def _record(trial: Trial) -> Any:
    from nebula.tune._checkpoints import CheckpointRecord

    assert trial.checkpoint is not None
    return CheckpointRecord(trial.checkpoint, dict(trial.last_result), 0)


def _checkpoint_count(checkpoint: Checkpoint) -> int:
    """The next index after ``checkpoint_000041``-style names (so restarts never overwrite)."""
    name = checkpoint.path.rstrip("/").rsplit("/", 1)[-1]
    digits = name.rsplit("_", 1)[-1]
    return int(digits) + 1 if digits.isdigit() else 0


def metric_is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
