"""Task and actor options: checked when given, then carried as typed records.

``@nebula.remote(...)``, ``.options(...)`` and actor classes take Ray's option names. A
misspelled or unknown name is a ``TypeError`` naming it and the closest valid one; a bad
value is a ``ValueError`` (or ``TypeError``) naming the option, when it is given rather
than when a task fails later on some node. Options Nebula cannot honour are refused with
a sentence saying what to do instead, never accepted and ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from nebula import _config, _runtime_env

# Accepted for compatibility, with no effect: Ray's libraries pass it to tag their tasks.
_IGNORED = frozenset({"_metadata"})

_REFUSED = {
    "accelerator_type": (
        "accelerator_type is not supported: Nebula does not label nodes by accelerator "
        "model; give such nodes a custom resource (nebula start --resources "
        "'{\"A100\": 1}') and ask for it with resources={'A100': 1}."
    ),
    "label_selector": (
        "label_selector is not supported: select nodes with custom resources "
        "(resources={...}) or NodeAffinitySchedulingStrategy instead."
    ),
    "object_store_memory": (
        "object_store_memory cannot be set per actor: the object store is shared by the "
        "node; size it with nebula.init(object_store_memory=...) or nebula start."
    ),
}

R = TypeVar("R", "TaskOptions", "ActorOptions")


@dataclass(frozen=True, slots=True)
class _Common:
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: float | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    scheduling_strategy: Any = None
    runtime_env: dict[str, Any] | None = None
    name: str | None = None

    def resource_request(self, default_cpus: float) -> dict[str, float]:
        """What the task or actor asks a node for; inside a placement group, the group's
        renamed resources."""
        request = {
            "CPU": float(default_cpus if self.num_cpus is None else self.num_cpus),
            "GPU": float(self.num_gpus or 0),
            "memory": float(self.memory or 0),
        }
        for name, amount in self.resources.items():
            request[name] = float(amount)
        request = {k: v for k, v in request.items() if v > 0}
        strategy = self.scheduling_strategy
        if getattr(strategy, "policy_name", None) == "PLACEMENT_GROUP":
            from nebula._scheduler.bundles import rewrite_request

            return rewrite_request(
                request, strategy.placement_group.id_bytes, strategy.placement_group_bundle_index
            )
        return request


@dataclass(frozen=True, slots=True)
class TaskOptions(_Common):
    """The options of a remote function (``@nebula.remote(...)``, ``f.options(...)``)."""

    num_returns: int | Literal["streaming"] | None = None
    max_retries: int | None = None
    retry_exceptions: bool | tuple[type[BaseException], ...] = False
    max_calls: int | None = None

    def retries(self) -> int:
        return _config.DEFAULT_MAX_RETRIES if self.max_retries is None else self.max_retries

    def calls_per_worker(self) -> int:
        """How many times one worker may run the function before it is replaced (0: no
        limit). GPU tasks default to 1, so GPU memory a framework holds is given back."""
        if self.max_calls is not None:
            return self.max_calls
        return 1 if (self.num_gpus or 0) > 0 else 0

    def merged(self, overrides: Mapping[str, Any]) -> TaskOptions:
        return _merge(self, overrides, "remote function")


@dataclass(frozen=True, slots=True)
class ActorOptions(_Common):
    """The options of an actor class (``@nebula.remote(...)`` on a class, ``.options``)."""

    namespace: str | None = None
    lifetime: Literal["detached", "non_detached"] | None = None
    get_if_exists: bool = False
    max_restarts: int = 0
    max_task_retries: int = 0
    max_concurrency: int | None = None
    concurrency_groups: Mapping[str, int] = field(default_factory=dict)
    max_pending_calls: int = -1

    def merged(self, overrides: Mapping[str, Any]) -> ActorOptions:
        return _merge(self, overrides, "actor")


def task_options(options: Mapping[str, Any]) -> TaskOptions:
    return _merge(TaskOptions(), options, "remote function")


def actor_options(options: Mapping[str, Any]) -> ActorOptions:
    return _merge(ActorOptions(), options, "actor")


def _merge(record: R, options: Mapping[str, Any], kind: str) -> R:
    valid = {f.name for f in dataclasses.fields(record)}
    changes: dict[str, Any] = {}
    for key, value in options.items():
        if key in _IGNORED:
            continue
        if key in _REFUSED and (key != "object_store_memory" or kind == "actor"):
            raise ValueError(_REFUSED[key])
        if key not in valid:
            raise unknown_keyword(key, valid, f"a {kind}'s options")
        changes[key] = _CHECKS.get(key, _accept)(key, value)
    return dataclasses.replace(record, **changes)


def unknown_keyword(key: str, valid: set[str] | frozenset[str], where: str) -> TypeError:
    """The error for a keyword nobody takes: it names the closest valid one."""
    guess = difflib.get_close_matches(key, sorted(valid), n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    names = ", ".join(sorted(k for k in valid if not k.startswith("_")))
    return TypeError(f"{key!r} is not one of {where}{hint}; valid names are: {names}.")


# ------------------------------------------------------------------ value checks


def _accept(key: str, value: Any) -> Any:
    return value


def _non_negative(key: str, value: Any) -> Any:
    if value is None:
        return None
    non_negative_number(key, value)
    return value


def non_negative_number(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise ValueError(f"{key} must be a non-negative number, got {value!r}.")


def check_resources(resources: Any) -> dict[str, float]:
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise TypeError(f"resources must be a dict of name to amount, got {resources!r}.")
    for name, amount in resources.items():
        if name in ("CPU", "GPU"):
            raise ValueError(f"Use num_cpus/num_gpus instead of resources={{'{name}': ...}}.")
        if not isinstance(name, str):
            raise TypeError(f"resource names must be strings, got {name!r}.")
        non_negative_number(f"resources[{name!r}]", amount)
    return dict(resources)


def _integer(minimum: int, meaning: str = "") -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{key} must be an integer >= {minimum}{meaning}, got {value!r}.")
        return value

    return check


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda key, value: None if value is None else check(key, value)


def _num_returns(key: str, value: Any) -> Any:
    if value is None or value == "streaming":
        return value
    if value == "dynamic":
        raise ValueError(
            "num_returns='dynamic' is not supported; a generator function returns an "
            "ObjectRefGenerator by itself (num_returns='streaming')."
        )
    return check_num_returns_count(value)


def check_num_returns_count(value: Any) -> int:
    """A count of return values: a non-negative int no larger than one reply can carry."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(
            f"num_returns must be a non-negative integer or 'streaming', got {value!r}."
        )
    if value > _config.MAX_NUM_RETURNS:
        raise ValueError(
            f"num_returns={value} is more than the limit of {_config.MAX_NUM_RETURNS:,} "
            "values per task; return one list (or split the work over several tasks), or "
            "raise the limit with NEBULA_MAX_NUM_RETURNS."
        )
    return value


def check_retry_exceptions(key: str, value: Any) -> bool | tuple[type[BaseException], ...]:
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        return tuple(value)
    raise TypeError(f"{key} must be a bool or a list of exception classes, got {value!r}.")


def _lifetime(key: str, value: Any) -> Any:
    if value not in (None, "detached", "non_detached"):
        raise ValueError(f"lifetime must be 'detached' or 'non_detached', got {value!r}.")
    return value


def _non_empty_string(key: str, value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{key} must be a non-empty string, got {value!r}.")
    return value


def _bool(key: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be True or False, got {value!r}.")
    return value


def _concurrency_groups(key: str, value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"concurrency_groups must be a dict of group name to size, got {value!r}.")
    for name, size in value.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"concurrency group names must be non-empty strings, got {name!r}.")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"concurrency_groups: group {name!r} needs a size >= 1, got {size!r}.")
    return dict(value)


def _max_pending_calls(key: str, value: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool) or value == 0 or value < -1:
        raise ValueError(f"max_pending_calls must be -1 (no limit) or >= 1, got {value!r}.")
    return value


def _strategy(key: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        from nebula._plugins.manager import scheduling_policy_registry

        names = scheduling_policy_registry().names()
        if value not in names:
            raise ValueError(
                f"Unknown scheduling_strategy {value!r}; known strategies are: {', '.join(names)}."
            )
        return value
    if not isinstance(getattr(value, "policy_name", None), str):
        raise TypeError(
            f"scheduling_strategy {value!r} is not a scheduling strategy: use a policy name "
            "such as 'DEFAULT' or 'SPREAD', or a strategy from nebula.util.scheduling_strategies."
        )
    return value


def _runtime_env_check(key: str, value: Any) -> Any:
    return _runtime_env.validate(value)


RETRIES = _integer(-1, " (-1: forever)")

_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "num_cpus": _non_negative,
    "num_gpus": _non_negative,
    "memory": _non_negative,
    "resources": lambda key, value: check_resources(value),
    "scheduling_strategy": _strategy,
    "runtime_env": _runtime_env_check,
    "name": _non_empty_string,
    "namespace": _non_empty_string,
    "num_returns": _num_returns,
    "max_retries": _optional(RETRIES),
    "max_restarts": RETRIES,
    "max_task_retries": RETRIES,
    "retry_exceptions": check_retry_exceptions,
    "max_calls": _optional(_integer(0, " (0: no limit)")),
    "max_concurrency": _optional(_integer(1)),
    "lifetime": _lifetime,
    "get_if_exists": _bool,
    "concurrency_groups": _concurrency_groups,
    "max_pending_calls": _max_pending_calls,
}
