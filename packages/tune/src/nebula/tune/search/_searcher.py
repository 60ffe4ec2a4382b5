"""The ``Searcher`` interface third parties implement, and the wrappers built on it.

A searcher is a plain object: it suggests a config for a trial id and hears how trials went.
It never sees actors or files, so it can be unit-tested with a loop and a dict.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["ConcurrencyLimiter", "Repeater", "Searcher"]


class Searcher:
    """Suggests configs one trial at a time; subclass it for a new search algorithm.

    ``suggest(trial_id)`` returns a config dict, ``None`` when it has nothing to suggest yet
    (asked again later), or :attr:`FINISHED` when it never will again. Keys of the config
    replace the matching entries of the Tuner's ``param_space``; constants of the space are
    kept.
    """

    FINISHED = "FINISHED"

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        if mode is not None and mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Receive the Tuner's metric, mode and param_space; False if it cannot use them."""
        if self._metric is None and metric is not None:
            self._metric = metric
        if self._mode is None and mode is not None:
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """An intermediate result of a trial this searcher suggested."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """A trial finished (``result`` is its last) or failed (``error=True``)."""

    def get_state(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.get_state(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))


class ConcurrencyLimiter(Searcher):
    """Lets ``searcher`` have at most ``max_concurrent`` trials running at once.

    With ``batch=True`` it suggests ``max_concurrent`` trials, then waits for all of them to
    finish before suggesting the next batch (useful for searchers that fit on a batch).
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False) -> None:
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}.")
        super().__init__(searcher.metric, searcher.mode)
        self.searcher = searcher
        self.max_concurrent = max_concurrent
        self.batch = batch
        self.live_trials: set[str] = set()
        self._batch_open = True

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        accepted = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return accepted

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if len(self.live_trials) >= self.max_concurrent or not self._batch_open:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if isinstance(suggestion, dict):
            self.live_trials.add(trial_id)
            if self.batch and len(self.live_trials) >= self.max_concurrent:
                self._batch_open = False
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.live_trials:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.live_trials:
            return
        self.searcher.on_trial_complete(trial_id, result=result, error=error)
        self.live_trials.discard(trial_id)
        if not self.live_trials:
            self._batch_open = True

    def get_state(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "searcher"}
        state["searcher_state"] = self.searcher.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.searcher.set_state(state.pop("searcher_state"))
        self.__dict__.update(state)


class Repeater(Searcher):
    """Runs each config ``repeat`` times (different seeds, say) and reports their mean.

    With ``set_index=True`` each repetition's config has ``"__trial_index__"`` (0 to
    repeat-1). The wrapped searcher hears about a config once, when all its repetitions have
    finished, with the metric averaged over them.
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True) -> None:
        if not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be an integer >= 1, got {repeat!r}.")
        super().__init__(searcher.metric, searcher.mode)
        self.searcher = searcher
        self.repeat = repeat
        self.set_index = set_index
        self._current: tuple[str, dict[str, Any]] | None = None
        self._issued = 0
        self._group_of: dict[str, str] = {}
        self._scores: dict[str, list[float]] = defaultdict(list)
        self._pending: dict[str, int] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        accepted = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return accepted

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._current is None or self._issued >= self.repeat:
            suggestion = self.searcher.suggest(trial_id)
            if not isinstance(suggestion, dict):
                return suggestion
            self._current, self._issued = (trial_id, suggestion), 0
            self._pending[trial_id] = self.repeat
        group, config = self._current
        config = dict(config)
        if self.set_index:
            config["__trial_index__"] = self._issued
        self._issued += 1
        self._group_of[trial_id] = group
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        group = self._group_of.pop(trial_id, None)
        if group is None:
            return
        metric = self.metric
        if result is not None and metric is not None and metric in result and not error:
            self._scores[group].append(float(result[metric]))
        self._pending[group] -= 1
        if self._pending[group] > 0:
            return
        del self._pending[group]
        scores = self._scores.pop(group, [])
        if not scores:
            self.searcher.on_trial_complete(group, result=None, error=True)
            return
        summary = dict(result or {})
        if metric is not None:
            summary[metric] = float(np.mean(scores))
        self.searcher.on_trial_complete(group, result=summary, error=False)

    def get_state(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "searcher"}
        state["searcher_state"] = self.searcher.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.searcher.set_state(state.pop("searcher_state"))
        self.__dict__.update(state)
