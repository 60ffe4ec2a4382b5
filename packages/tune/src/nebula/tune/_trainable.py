"""The class API (``Trainable``) and the wrappers ``with_parameters`` / ``with_resources``.

A trainable class need not subclass :class:`Trainable`: any class built as ``cls(config)``
with ``train() -> dict``, ``save_checkpoint(dir)`` and ``load_checkpoint(dir)`` works (an
RL algorithm, say); ``stop()``, ``reset_config(config)`` and the classmethod
``default_resource_request(config)`` are used when present.
"""

from __future__ import annotations

import copy
import inspect
import os
import pickle
import time
from collections.abc import Callable
from typing import Any

from nebula.tune._resources import PlacementGroupFactory, resources_from

__all__ = [
    "Trainable",
    "is_class_trainable",
    "resources_of",
    "trainable_name",
    "with_parameters",
    "with_resources",
]

_DICT_CHECKPOINT_FILE = "_dict_checkpoint.pkl"


class Trainable:
    """Subclass and implement ``setup``, ``step`` and, to be checkpointable,
    ``save_checkpoint`` / ``load_checkpoint``; ``reset_config`` lets a process be reused
    for another trial's config.
    """

    def __init__(self, config: dict[str, Any] | None = None, **_ignored: Any) -> None:
        from nebula.tune._session import get_context

        self.config: dict[str, Any] = dict(config or {})
        self._iteration = 0
        self._time_total = 0.0
        self._iterations_since_restore = 0
        self._restored_at = time.time()
        context = get_context()
        self._trial_id = context.trial_id or "default"
        self._trial_name = context.trial_name or "default"
        self._logdir = context.trial_dir
        self.setup(copy.deepcopy(self.config))

    # --- to implement ------------------------------------------------------------------

    def setup(self, config: dict[str, Any]) -> None:
        """Build what training needs (models, data); called once with the trial's config."""

    def step(self) -> dict[str, Any]:
        """Run one iteration and return its metrics."""
        raise NotImplementedError(f"{type(self).__name__} must implement step().")

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any] | None:
        """Write state into ``checkpoint_dir`` (or return a picklable dict of it)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement save_checkpoint() to be checkpointed."
        )

    def load_checkpoint(self, checkpoint: dict[str, Any] | str) -> None:
        """Restore what ``save_checkpoint`` wrote: its dict, or the directory's path."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement load_checkpoint() to be restored."
        )

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Switch to ``new_config`` in place; return True if done (the process is reused)."""
        return False

    def cleanup(self) -> None:
        """Release what ``setup`` took; called when the trial ends."""

    @classmethod
    def default_resource_request(
        cls, config: dict[str, Any]
    ) -> dict[str, float] | list[dict[str, float]] | PlacementGroupFactory | None:
        """What one trial asks for: a dict, a list of bundles (the trial's own first, then
        those of the actors it starts), or a factory; None for one CPU."""
        return None

    # --- provided ------------------------------------------------------------------------

    @property
    def iteration(self) -> int:
        return self._iteration

    @property
    def training_iteration(self) -> int:
        return self._iteration

    @property
    def trial_id(self) -> str:
        return self._trial_id

    @property
    def trial_name(self) -> str:
        return self._trial_name

    @property
    def logdir(self) -> str | None:
        return self._logdir

    def train(self) -> dict[str, Any]:
        """Run ``step()`` once and add the iteration, timing and identity fields."""
        start = time.time()
        result = self.step()
        if not isinstance(result, dict):
            raise TypeError(
                f"{type(self).__name__}.step() must return a dict of metrics, "
                f"got {type(result).__name__}."
            )
        elapsed = time.time() - start
        self._iteration += 1
        self._iterations_since_restore += 1
        self._time_total += elapsed
        result = dict(result)
        result.setdefault("training_iteration", self._iteration)
        result.setdefault("time_this_iter_s", elapsed)
        result.setdefault("time_total_s", self._time_total)
        result.setdefault("iterations_since_restore", self._iterations_since_restore)
        result.setdefault("time_since_restore", time.time() - self._restored_at)
        result.setdefault("done", False)
        return result

    def save(self, checkpoint_dir: str) -> str:
        """Save into ``checkpoint_dir`` (a dict return value is pickled there)."""
        os.makedirs(checkpoint_dir, exist_ok=True)
        state = self.save_checkpoint(checkpoint_dir)
        if isinstance(state, dict):
            with open(os.path.join(checkpoint_dir, _DICT_CHECKPOINT_FILE), "wb") as file:
                pickle.dump(state, file)
        elif state is not None:
            raise TypeError(
                f"{type(self).__name__}.save_checkpoint() must return a dict or None, "
                f"got {type(state).__name__}."
            )
        return checkpoint_dir

    def restore(self, checkpoint_dir: str) -> None:
        path = os.path.join(checkpoint_dir, _DICT_CHECKPOINT_FILE)
        if os.path.exists(path):
            with open(path, "rb") as file:
                self.load_checkpoint(pickle.load(file))
        else:
            self.load_checkpoint(checkpoint_dir)
        self._iterations_since_restore = 0
        self._restored_at = time.time()

    def stop(self) -> None:
        self.cleanup()


def is_class_trainable(trainable: Any) -> bool:
    return inspect.isclass(trainable)


def trainable_name(trainable: Any) -> str:
    name = getattr(trainable, "__nebula_tune_name__", None) or getattr(
        trainable, "__name__", type(trainable).__name__
    )
    return str(name)


def resources_of(trainable: Any, config: dict[str, Any]) -> PlacementGroupFactory:
    """What one trial of ``trainable`` with ``config`` asks for (1 CPU by default)."""
    request = getattr(trainable, "__nebula_tune_resources__", None)
    if request is None and inspect.isclass(trainable):
        method = getattr(trainable, "default_resource_request", None)
        if callable(method):
            request = method(config)
    if callable(request):
        request = request(config)
    return resources_from(request)


class _ParameterizedFunction:
    """A function trainable with large arguments held in the object store, fetched once."""

    def __init__(self, function: Callable[..., Any], parameters: dict[str, Any]) -> None:
        self.function = function
        self.__name__ = trainable_name(function)
        self.__nebula_tune_name__ = self.__name__
        self.__nebula_tune_resources__ = getattr(function, "__nebula_tune_resources__", None)
        self._values: dict[str, Any] | None = parameters
        self._refs: dict[str, Any] | None = None
        self._fetched: dict[str, Any] | None = None

    def put_parameters(self) -> None:
        import nebula

        if self._refs is None and self._values is not None:
            self._refs = {key: nebula.put(value) for key, value in self._values.items()}

    def parameters(self) -> dict[str, Any]:
        if self._fetched is None:
            if self._refs is not None:
                import nebula

                keys = list(self._refs)
                values = nebula.get([self._refs[k] for k in keys])
                self._fetched = dict(zip(keys, values))
            else:
                self._fetched = dict(self._values or {})
        return self._fetched

    def __call__(self, config: dict[str, Any]) -> Any:
        return self.function(config, **self.parameters())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fetched"] = None
        if self._refs is not None:
            state["_values"] = None
        return state


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """``trainable`` with extra arguments put in the object store once and shared by trials.

    A function is called as ``fn(config, **kwargs)``; a ``Trainable`` class gets them in
    ``setup(config, **kwargs)``.
    """
    if inspect.isclass(trainable):
        parameters = _ParameterizedFunction(lambda config: None, kwargs)

        class _WithParameters(trainable):  # type: ignore[misc, valid-type]
            __nebula_tune_parameters__ = parameters

            def setup(self, config: dict[str, Any]) -> None:
                trainable.setup(self, config, **parameters.parameters())

        _WithParameters.__name__ = trainable.__name__
        _WithParameters.__qualname__ = trainable.__qualname__
        return _WithParameters
    if not callable(trainable):
        raise TypeError(f"with_parameters() needs a function or class, got {trainable!r}.")
    return _ParameterizedFunction(trainable, kwargs)


def put_parameters(trainable: Any) -> None:
    """Move ``with_parameters`` values into the object store (once, before trials start)."""
    holder = trainable if isinstance(trainable, _ParameterizedFunction) else None
    if holder is None:
        holder = getattr(trainable, "__nebula_tune_parameters__", None)
    if holder is not None:
        holder.put_parameters()


def with_resources(trainable: Any, resources: Any) -> Any:
    """``trainable`` asking for ``resources`` per trial: a dict (``{"cpu": 2, "gpu": 1}``),
    a list of bundle dicts (the trainable's, then its workers'), a ``PlacementGroupFactory``,
    or a function of the config returning one of those.
    """
    if not callable(resources):
        resources_from(resources)  # reject a malformed request now, not per trial
    if inspect.isclass(trainable):

        class _WithResources(trainable):  # type: ignore[misc, valid-type]
            __nebula_tune_resources__ = (
                staticmethod(resources) if callable(resources) else resources
            )

        _WithResources.__name__ = trainable.__name__
        _WithResources.__qualname__ = trainable.__qualname__
        return _WithResources
    if isinstance(trainable, _ParameterizedFunction):
        wrapped = copy.copy(trainable)
        wrapped.__nebula_tune_resources__ = resources
        return wrapped

    def _with_resources(config: dict[str, Any], **kwargs: Any) -> Any:
        return trainable(config, **kwargs)

    _with_resources.__name__ = trainable_name(trainable)
    _with_resources.__nebula_tune_resources__ = resources  # type: ignore[attr-defined]
    _with_resources.__nebula_tune_wrapped__ = trainable  # type: ignore[attr-defined]
    return _with_resources
