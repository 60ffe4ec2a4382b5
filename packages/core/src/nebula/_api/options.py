"""Validating ``@nebula.remote(...)`` and ``.options(...)`` arguments.

Mistakes are reported when the options are given, in one sentence naming the option,
rather than when a task fails later on some node.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from nebula import _config, _runtime_env

_COMMON = {
    "num_cpus",
    "num_gpus",
    "resources",
    "memory",
    "scheduling_strategy",
    "runtime_env",
    "accelerator_type",
    "label_selector",
    "_metadata",
}
TASK_OPTIONS = _COMMON | {"num_returns", "max_retries", "retry_exceptions", "max_calls", "name"}
ACTOR_OPTIONS = _COMMON | {
    "max_restarts",
    "max_task_retries",
    "max_concurrency",
    "name",
    "namespace",
    "lifetime",
    "get_if_exists",
    "concurrency_groups",
    "max_pending_calls",
    "object_store_memory",
}


def validate(options: Mapping[str, Any], *, for_actor: bool) -> dict[str, Any]:
    allowed = ACTOR_OPTIONS if for_actor else TASK_OPTIONS
    kind = "actor" if for_actor else "remote function"
    for key in options:
        if key not in allowed:
            raise ValueError(
                f"Invalid option {key!r} for a {kind}; valid options are: "
                f"{', '.join(sorted(k for k in allowed if not k.startswith('_')))}."
            )
    for key in ("num_cpus", "num_gpus", "memory"):
        if key in options and options[key] is not None:
            _non_negative_number(key, options[key])
    if options.get("resources") is not None:
        _check_resources(options["resources"])
    if "num_returns" in options:
        value = options["num_returns"]
        if value == "dynamic":
            raise ValueError(
                "num_returns='dynamic' is not supported; a generator function returns an "
                "ObjectRefGenerator by itself (num_returns='streaming')."
            )
        if value != "streaming" and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ValueError(
                f"num_returns must be a non-negative integer or 'streaming', got {value!r}."
            )
    for key in ("max_retries", "max_restarts", "max_task_retries"):
        if key in options:
            value = options[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < -1:
                raise ValueError(f"{key} must be an integer >= -1 (-1: forever), got {value!r}.")
    if "max_concurrency" in options:
        value = options["max_concurrency"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"max_concurrency must be an integer >= 1, got {value!r}.")
    if "retry_exceptions" in options:
        _check_retry_exceptions(options["retry_exceptions"])
    lifetime = options.get("lifetime")
    if lifetime not in (None, "detached", "non_detached"):
        raise ValueError(f"lifetime must be 'detached' or 'non_detached', got {lifetime!r}.")
    name = options.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty string, got {name!r}.")
    namespace = options.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise ValueError(f"namespace must be a non-empty string, got {namespace!r}.")
    if "scheduling_strategy" in options:
        _check_strategy(options["scheduling_strategy"])
    checked = dict(options)
    if "runtime_env" in checked:
        checked["runtime_env"] = _runtime_env.validate(checked["runtime_env"])
    return checked


def _non_negative_number(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise ValueError(f"{key} must be a non-negative number, got {value!r}.")


def _check_resources(resources: Any) -> None:
    if not isinstance(resources, Mapping):
        raise TypeError(f"resources must be a dict of name to amount, got {resources!r}.")
    for name, amount in resources.items():
        if name in ("CPU", "GPU"):
            raise ValueError(f"Use num_cpus/num_gpus instead of resources={{'{name}': ...}}.")
        if not isinstance(name, str):
            raise TypeError(f"resource names must be strings, got {name!r}.")
        _non_negative_number(f"resources[{name!r}]", amount)


def _check_retry_exceptions(value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (list, tuple)) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        return
    raise TypeError(
        f"retry_exceptions must be a bool or a list of exception classes, got {value!r}."
    )


def _check_strategy(strategy: Any) -> None:
    if strategy is None:
        return
    if isinstance(strategy, str):
        from nebula._plugins.manager import scheduling_policy_registry

        names = scheduling_policy_registry().names()
        if strategy not in names:
            raise ValueError(
                f"Unknown scheduling_strategy {strategy!r}; known strategies are: "
                f"{', '.join(names)}."
            )
        return
    if not isinstance(getattr(strategy, "policy_name", None), str):
        raise TypeError(
            f"scheduling_strategy {strategy!r} is not a scheduling strategy: use a policy name "
            "such as 'DEFAULT' or 'SPREAD', or a strategy from nebula.util.scheduling_strategies."
        )


def resource_request(options: Mapping[str, Any], *, default_cpus: float) -> dict[str, float]:
    request = _plain_request(options, default_cpus)
    strategy = options.get("scheduling_strategy")
    if strategy is not None and getattr(strategy, "policy_name", None) == "PLACEMENT_GROUP":
        from nebula._scheduler.bundles import rewrite_request

        return rewrite_request(
            request, strategy.placement_group.id_bytes, strategy.placement_group_bundle_index
        )
    return request


def _plain_request(options: Mapping[str, Any], default_cpus: float) -> dict[str, float]:
    num_cpus = options.get("num_cpus")
    request = {
        "CPU": float(default_cpus if num_cpus is None else num_cpus),
        "GPU": float(options.get("num_gpus") or 0),
        "memory": float(options.get("memory") or 0),
    }
    for name, amount in (options.get("resources") or {}).items():
        request[name] = float(amount)
    return {k: v for k, v in request.items() if v > 0}


def retries(options: Mapping[str, Any]) -> int:
    value = options.get("max_retries")
    return _config.DEFAULT_MAX_RETRIES if value is None else int(value)


def retry_exceptions(options: Mapping[str, Any]) -> bool | tuple[type, ...]:
    value = options.get("retry_exceptions", False)
    return value if isinstance(value, bool) else tuple(value)
