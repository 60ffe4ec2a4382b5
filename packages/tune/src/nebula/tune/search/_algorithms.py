"""Search algorithms: what the controller asks for the next trial's config.

Two kinds: :class:`BasicVariantGenerator` expands the space itself (grid crossed with
``num_samples``, domains drawn at random), and :class:`SearchGenerator` asks a
:class:`Searcher` (Optuna, a third party's) for ``num_samples`` configs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from nebula.tune.search._sample import RandomState
from nebula.tune.search._searcher import Searcher
from nebula.tune.search._variants import (
    Path,
    find_unresolved,
    format_tag,
    resolve_variants,
    sample_domains,
)

__all__ = ["BasicVariantGenerator", "SearchAlgorithm", "SearchGenerator", "Suggestion"]


@dataclass(frozen=True)
class Suggestion:
    """A trial to create: its resolved config and a short label of the chosen values."""

    config: dict[str, Any]
    tag: str


class SearchAlgorithm:
    """The controller's view of a search: configs on request, outcomes as they happen."""

    metric: str | None = None
    mode: str | None = None

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], num_samples: int
    ) -> bool:
        raise NotImplementedError

    def next_trial(self, trial_id: str) -> Suggestion | None:
        """The next trial's config, or None when there is none now (see ``is_finished``)."""
        raise NotImplementedError

    def is_finished(self) -> bool:
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        pass

    @property
    def total_samples(self) -> int | None:
        """How many trials the search will create, when that is known up front."""
        return None


class BasicVariantGenerator(SearchAlgorithm):
    """Grid and random search: every grid combination, ``num_samples`` times over.

    ``points_to_evaluate`` (partial configs) replace the first samples' draws;
    ``max_concurrent`` (0: no limit) caps the trials running at once; ``random_state``
    makes the draws reproducible.
    """

    def __init__(
        self,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        max_concurrent: int = 0,
        random_state: RandomState = None,
        constant_grid_search: bool = False,
    ) -> None:
        self.points_to_evaluate = [dict(p) for p in points_to_evaluate or []]
        self.max_concurrent = max_concurrent
        self.constant_grid_search = constant_grid_search
        seed = random_state if isinstance(random_state, int) else None
        self._rng = (
            random_state
            if isinstance(random_state, np.random.Generator)
            else np.random.default_rng(seed)
        )
        self._initial_rng_state = copy.deepcopy(self._rng.bit_generator.state)
        self._space: dict[str, Any] = {}
        self._num_samples = 1
        self._issued = 0
        self._exhausted = False
        self._iterator: Iterator[tuple[dict[Path, Any], dict[str, Any]]] | None = None
        self._live: set[str] = set()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], num_samples: int
    ) -> bool:
        self.metric, self.mode = metric, mode
        self._space = config
        self._num_samples = num_samples
        return True

    @property
    def total_samples(self) -> int:
        from nebula.tune.search._variants import count_grid_variants

        return count_grid_variants(self._space) * self._num_samples

    def next_trial(self, trial_id: str) -> Suggestion | None:
        if self._exhausted or (self.max_concurrent and len(self._live) >= self.max_concurrent):
            return None
        if self._iterator is None:
            self._iterator = self._variants(skip=self._issued)
        try:
            chosen, config = next(self._iterator)
        except StopIteration:
            self._exhausted = True
            return None
        self._issued += 1
        self._live.add(trial_id)
        return Suggestion(config, format_tag(chosen))

    def is_finished(self) -> bool:
        return self._exhausted

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._live.discard(trial_id)

    def _variants(self, skip: int) -> Iterator[tuple[dict[Path, Any], dict[str, Any]]]:
        # Restored from a saved state: replay the draws from the start and drop what was
        # already issued, so the remaining trials are the ones the interrupted run would have.
        rng = np.random.default_rng()
        rng.bit_generator.state = copy.deepcopy(self._initial_rng_state)
        self._rng = rng
        produced = 0
        points = list(self.points_to_evaluate)
        for _ in range(self._num_samples):
            space = _with_point(self._space, points.pop(0)) if points else self._space
            for variant in resolve_variants(space, rng):
                produced += 1
                if produced > skip:
                    yield variant

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_iterator"] = None
        state["_live"] = set()
        return state


def _with_point(space: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    merged = dict(space)
    for key, value in point.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _with_point(merged[key], value)
        else:
            merged[key] = value
    return merged


class SearchGenerator(SearchAlgorithm):
    """Asks a :class:`Searcher` for configs until ``num_samples`` trials exist."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self._space: dict[str, Any] = {}
        self._num_samples = 1
        self._created = 0
        self._finished = False
        self._rng = np.random.default_rng()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], num_samples: int
    ) -> bool:
        grids, _ = find_unresolved(config)
        if grids:
            names = ", ".join("/".join(map(str, path)) for path in grids)
            raise ValueError(
                f"{type(self.searcher).__name__} cannot search grid_search values ({names}); "
                "use a choice() there, or the default search for grids."
            )
        self._space = config
        self._num_samples = num_samples
        accepted = self.searcher.set_search_properties(metric, mode, config)
        self.metric, self.mode = self.searcher.metric, self.searcher.mode
        return accepted

    @property
    def total_samples(self) -> int:
        return self._num_samples

    def next_trial(self, trial_id: str) -> Suggestion | None:
        if self.is_finished():
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion == Searcher.FINISHED:
            self._finished = True
            return None
        if not isinstance(suggestion, dict):
            return None
        config = _with_point(self._space, suggestion)
        sample_domains(config, self._rng)
        self._created += 1
        return Suggestion(config, format_tag(_flat_paths(suggestion)))

    def is_finished(self) -> bool:
        return self._finished or self._created >= self._num_samples

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)


def _flat_paths(config: dict[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    flat: dict[Path, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat_paths(value, (*prefix, key)))
        else:
            path: Path = (*prefix, key)
            flat[path] = value
    return flat
