"""The thin shell around the controller: trial actors, their replies, callbacks, state.

Each turn of the loop waits for whatever trial replies are ready (polls and stops, many at
once), turns them into controller events, and carries out the commands that come back:
starting a trial on an idle actor of the same shape or a new one, asking a trial for its
next batch, stopping it, telling the callbacks, saving the experiment state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from nebula.tune._callback import CallbackList
from nebula.tune._channel import Batch
from nebula.tune._controller import (
    Abort,
    ActorFailed,
    DeleteCheckpoint,
    Notify,
    Poll,
    ReleaseActor,
    ResultsArrived,
    SaveState,
    StartTrial,
    StopRun,
    Tick,
    TrialStopped,
    TuneController,
)
from nebula.tune._host import TrialHost
from nebula.tune._resources import PlacementGroupFactory
from nebula.tune._state import ExperimentState

import nebula
from nebula.exceptions import NebulaError

__all__ = ["TrialLoop"]

_logger = logging.getLogger(__name__)

_WAIT_S = 0.25

_RemoteHost = nebula.remote(TrialHost)


@dataclass
class _Slot:
    """An actor and what it is hosting now."""

    actor: Any
    resources: PlacementGroupFactory
    placement_group: Any = None


class TrialLoop:
    def __init__(
        self,
        controller: TuneController,
        trainable: Any,
        callbacks: CallbackList,
        state: ExperimentState,
        *,
        reuse_actors: bool,
    ) -> None:
        self.controller = controller
        self.callbacks = callbacks
        self.state = state
        self.reuse_actors = reuse_actors
        self._trainable_ref = nebula.put(trainable)
        self._slots: dict[str, _Slot] = {}  # trial id -> the actor running it
        self._runs: dict[str, int] = {}  # trial id -> current run number
        self._idle: list[_Slot] = []
        self._pending: dict[Any, tuple[str, int, str]] = {}  # ref -> (trial, run, kind)
        self._error: BaseException | None = None

    def run(self) -> None:
        controller = self.controller
        try:
            self._execute(controller.handle(Tick(time.monotonic())))
            while not controller.finished and self._error is None:
                self._dispatch_ready()
                if self._error is not None:
                    break
                self._execute(controller.handle(Tick(time.monotonic())))
                self.callbacks.call(
                    "on_step_end", iteration=controller.iteration, trials=controller.trials
                )
                self.state.maybe_save(controller)
            self._drain_stops()
        finally:
            self._shutdown_actors()
        self.state.save(controller, force=True)
        if self._error is not None:
            raise self._error

    # --- replies -> events -----------------------------------------------------------------------

    def _dispatch_ready(self) -> None:
        if not self._pending:
            time.sleep(0.01)  # nothing in flight (all trials waiting for resources or search)
            return
        refs = list(self._pending)
        ready, _ = nebula.wait(refs, num_returns=1, timeout=_WAIT_S)
        if not ready:
            return
        if len(refs) > 1:
            ready, _ = nebula.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            trial_id, run, kind = self._pending.pop(ref)
            event = self._event_for(ref, trial_id, run, kind)
            if event is not None:
                self._execute(self.controller.handle(event))

    def _event_for(self, ref: Any, trial_id: str, run: int, kind: str) -> Any:
        current = self._runs.get(trial_id) == run and trial_id in self._slots
        try:
            reply = nebula.get(ref)
        except NebulaError as exc:
            if not current:
                return None
            return ActorFailed(trial_id, _describe_failure(exc))
        if not current:
            return None
        if kind == "stop":
            clean, batch = reply
            return TrialStopped(trial_id, bool(clean), batch)
        assert isinstance(reply, Batch)
        return ResultsArrived(trial_id, reply)

    # --- commands -> actors -----------------------------------------------------------------

    def _execute(self, commands: list[Any]) -> None:
        controller = self.controller
        for command in commands:
            if isinstance(command, Notify):
                self._notify(command)
            elif isinstance(command, Poll):
                ref = self._slots[command.trial_id].actor.poll.remote(command.acked, command.save)
                self._track(ref, command.trial_id, "poll")
            elif isinstance(command, StartTrial):
                self._start(command)
            elif isinstance(command, StopRun):
                stopping = self._slots.get(command.trial_id)
                if stopping is not None:
                    self._track(stopping.actor.stop.remote(command.save), command.trial_id, "stop")
            elif isinstance(command, ReleaseActor):
                self._release(command.trial_id, command.reusable)
            elif isinstance(command, SaveState):
                self.state.mark_dirty(urgent=command.urgent)
            elif isinstance(command, DeleteCheckpoint):
                self.state.storage.delete(command.checkpoint.path)
            elif isinstance(command, Abort):
                self._error = command.error
            else:  # pragma: no cover
                raise TypeError(f"unknown command {command!r}")
        del controller

    def _track(self, ref: Any, trial_id: str, kind: str) -> None:
        self._pending[ref] = (trial_id, self._runs[trial_id], kind)

    def _notify(self, command: Notify) -> None:
        iteration = self.controller.iteration
        trials = self.controller.trials
        trial = command.trial
        if command.event == "result":
            self.callbacks.on_trial_result(iteration, trials, trial, command.payload)
        elif command.event == "start":
            self.callbacks.call("on_trial_start", iteration=iteration, trials=trials, trial=trial)
        elif command.event == "complete":
            self.callbacks.call(
                "on_trial_complete", iteration=iteration, trials=trials, trial=trial
            )
        elif command.event == "error":
            self.callbacks.call("on_trial_error", iteration=iteration, trials=trials, trial=trial)
        elif command.event == "recover":
            self.callbacks.call("on_trial_recover", iteration=iteration, trials=trials, trial=trial)
        elif command.event == "checkpoint":
            self.callbacks.call(
                "on_checkpoint",
                iteration=iteration,
                trials=trials,
                trial=trial,
                checkpoint=command.payload,
            )

    def _start(self, command: StartTrial) -> None:
        trial = command.trial
        slot = self._take_idle(trial.resources) if self.reuse_actors else None
        if slot is None:
            slot = self._new_slot(trial.resources)
        self._slots[trial.trial_id] = slot
        self._runs[trial.trial_id] = self._runs.get(trial.trial_id, 0) + 1
        self._track(slot.actor.run.remote(command.spec), trial.trial_id, "poll")

    def _take_idle(self, resources: PlacementGroupFactory) -> _Slot | None:
        for index, slot in enumerate(self._idle):
            if slot.resources == resources:
                return self._idle.pop(index)
        return None

    def _new_slot(self, resources: PlacementGroupFactory) -> _Slot:
        # Idle actors of another shape hold resources the new one may need.
        while self._idle:
            self._kill(self._idle.pop())
        head = resources.head_resources
        options: dict[str, Any] = {
            "num_cpus": head.get("CPU", 0.0),
            "num_gpus": head.get("GPU", 0.0),
            "max_concurrency": 2,
        }
        custom = {k: v for k, v in head.items() if k not in ("CPU", "GPU", "memory")}
        if custom:
            options["resources"] = custom
        if "memory" in head:
            options["memory"] = head["memory"]
        placement_group = None
        if resources.needs_placement_group:
            from nebula.util.placement_group import placement_group as make_group
            from nebula.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            placement_group = make_group(resources.group_bundles, strategy=resources.strategy)
            # Capture: what the trainable starts without a strategy of its own (an RL
            # algorithm's env runners, a trainer's workers) takes the group's other bundles.
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group,
                -1 if resources.head_bundle_is_empty else 0,
                placement_group_capture_child_tasks=True,
            )
        actor = _RemoteHost.options(**options).remote(self._trainable_ref)
        return _Slot(actor, resources, placement_group)

    def _release(self, trial_id: str, reusable: bool) -> None:
        slot = self._slots.pop(trial_id, None)
        if slot is None:
            return
        if reusable and self.reuse_actors:
            self._idle.append(slot)
        else:
            self._kill(slot)

    def _kill(self, slot: _Slot) -> None:
        try:
            nebula.kill(slot.actor)
        except Exception:
            _logger.debug("could not kill a trial actor", exc_info=True)
        if slot.placement_group is not None:
            from nebula.util.placement_group import remove_placement_group

            try:
                remove_placement_group(slot.placement_group)
            except Exception:
                _logger.debug("could not remove a placement group", exc_info=True)

    def _drain_stops(self) -> None:
        """After an abort, give stopping trials a moment to unwind before their actors go."""
        deadline = time.monotonic() + 5.0
        while self._slots and self._pending and time.monotonic() < deadline:
            ready, _ = nebula.wait(list(self._pending), num_returns=1, timeout=0.5)
            for ref in ready:
                self._pending.pop(ref, None)
            if not ready:
                break

    def _shutdown_actors(self) -> None:
        slots = list(self._slots.values()) + self._idle
        self._slots.clear()
        self._idle.clear()
        refs = []
        for slot in slots:
            try:
                refs.append(slot.actor.shutdown.remote())
            except Exception:
                pass
        if refs:
            try:
                nebula.wait(refs, num_returns=len(refs), timeout=5.0)
            except Exception:
                pass
        for slot in slots:
            self._kill(slot)
        self._pending.clear()


def _describe_failure(exc: BaseException) -> str:
    return f"the trial's process failed: {type(exc).__name__}: {exc}"
