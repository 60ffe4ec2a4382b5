"""How a map operator runs: as tasks or on a pool of actors, and with which resources.

``map``, ``map_batches``, ``flat_map``, ``filter`` and ``map_groups`` take the same
arguments as Ray's: ``concurrency`` (an int, or ``(min, max)`` for a pool of actors),
``compute`` (:class:`ActorPoolStrategy` / :class:`TaskPoolStrategy`) and resource
arguments (``num_cpus=``, ``num_gpus=``, ``memory=``, ``resources=``,
``scheduling_strategy=``, ``max_retries=``, ...) that go to each task or actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from nebula.data._logical import InputData, LogicalOperator, MapOp, Union
from nebula.data._physical import MapWorker, map_task
from nebula.data._transforms import is_callable_class

import nebula

# (min, max) actors; max None: as many as the cluster's CPUs allow.
PoolBounds: TypeAlias = tuple[int, int | None]
# Set by the operator itself, never by a caller.
_RESERVED = ("num_returns", "name", "lifetime", "get_if_exists", "namespace")


@dataclass(frozen=True)
class ActorPoolStrategy:
    """Run a callable class on a pool of actors: ``size`` of them, or between ``min_size``
    and ``max_size`` (as many as the cluster's CPUs allow, at least ``min_size``)."""

    size: int | None = None
    min_size: int | None = None
    max_size: int | None = None

    def __post_init__(self) -> None:
        if self.size is not None and (self.min_size is not None or self.max_size is not None):
            raise ValueError("ActorPoolStrategy takes size, or min_size/max_size, not both.")

    def bounds(self) -> PoolBounds:
        if self.size is not None:
            return check_pool_bounds((self.size, self.size))
        low = 1 if self.min_size is None else self.min_size
        if self.max_size is None:  # as many as the cluster's CPUs allow, decided when it runs
            checked = _positive("min_size", low)
            assert checked is not None
            return checked, None
        return check_pool_bounds((low, self.max_size))


@dataclass(frozen=True)
class TaskPoolStrategy:
    """Run a function as tasks, at most ``size`` at a time (None: as many as fit)."""

    size: int | None = None


@dataclass(frozen=True)
class RunOptions:
    """How a UDF operator runs, as given: ``concurrency``, ``compute``, per-task resources."""

    concurrency: Any
    compute: Any
    remote_args: Mapping[str, Any]


@dataclass(frozen=True)
class Compute:
    """The resolved choice: ``actor_pool`` (min, max) for a class, else ``max_tasks``."""

    actor_pool: PoolBounds | None = None
    max_tasks: int | None = None


def resolve_compute(method: str, fn: Any, concurrency: Any, compute: Any) -> Compute:
    """Check ``concurrency``/``compute`` against ``fn`` (a function or a class)."""
    is_class = is_callable_class(fn)
    label = getattr(fn, "__name__", type(fn).__name__)
    if compute is not None and concurrency is not None:
        raise ValueError(f"{method} takes concurrency= or compute=, not both.")
    if isinstance(compute, ActorPoolStrategy):
        if not is_class:
            raise ValueError(
                f"{method}: compute=ActorPoolStrategy needs a callable class, got {label}."
            )
        return Compute(actor_pool=compute.bounds())
    if isinstance(compute, TaskPoolStrategy):
        if is_class:
            raise ValueError(f"{method}: a callable class runs on actors, not TaskPoolStrategy.")
        return Compute(max_tasks=_positive("concurrency", compute.size))
    if compute not in (None, "tasks", "actors"):
        raise ValueError(
            f"{method}: compute must be an ActorPoolStrategy or a TaskPoolStrategy, "
            f"got {compute!r}."
        )
    if is_class:
        if concurrency is None:
            raise ValueError(
                f"{method} got the class {label}; pass concurrency=N (or (min, max)) to run it "
                "on a pool of actors."
            )
        if isinstance(concurrency, tuple):
            if len(concurrency) != 2:
                raise ValueError(f"concurrency must be an int or (min, max), got {concurrency!r}.")
            return Compute(actor_pool=check_pool_bounds(concurrency))
        size = _positive("concurrency", concurrency)
        assert size is not None
        return Compute(actor_pool=(size, size))
    if isinstance(concurrency, tuple):
        raise ValueError(
            f"{method}: concurrency=(min, max) sizes a pool of actors, for a callable class; "
            f"a function takes an int (at most that many tasks at a time)."
        )
    return Compute(max_tasks=_positive("concurrency", concurrency))


def check_pool_bounds(bounds: tuple[Any, Any]) -> tuple[int, int]:
    low, high = (_positive("concurrency", value) for value in bounds)
    assert low is not None and high is not None
    if low > high:
        raise ValueError(f"concurrency=(min, max) needs min <= max, got {bounds!r}.")
    return low, high


def check_remote_args(method: str, remote_args: Mapping[str, Any], for_actor: bool) -> dict:
    """Validate resource arguments now (a mistake raises here, not inside the execution)."""
    for key in _RESERVED:
        if key in remote_args:
            raise ValueError(f"{method} sets {key} itself; it cannot be passed.")
    args = dict(remote_args)
    runner: Any = MapWorker if for_actor else map_task
    runner.options(**args)  # raises TypeError (unknown option) or ValueError (bad value)
    return args


def check_feasible(remote_args: Mapping[str, Any], name: str, total: Mapping[str, float]) -> None:
    """Raise when one task or actor asks for more of a resource than the whole cluster has
    (``total``, as ``cluster_resources()`` gives it).

    Such work would wait forever for a node that can run it; a dataset fails at once instead.
    """
    if not remote_args or not total:
        return
    wanted = {
        "CPU": remote_args.get("num_cpus"),
        "GPU": remote_args.get("num_gpus"),
        **dict(remote_args.get("resources") or {}),
    }
    for resource, amount in wanted.items():
        if amount and float(amount) > total.get(resource, 0):
            raise ValueError(
                f"{name} asks for {resource}={amount:g} per task, but the cluster has "
                f"{total.get(resource, 0):g} in all: it could never run."
            )


def task_cpus(plan: LogicalOperator) -> float:
    """The most CPUs one task of ``plan`` asks for (0 when everything runs on actors)."""
    need = 0.0
    stack = [plan]
    while stack:
        op = stack.pop()
        stack.extend(op.inputs)
        if isinstance(op, (InputData, Union)) or (isinstance(op, MapOp) and op.actor_pool):
            continue  # no tasks of its own
        cpus = getattr(op, "remote_args", {}).get("num_cpus")
        need = max(need, 1.0 if cpus is None else float(cpus))
    return need


def pool_size(
    bounds: PoolBounds, remote_args: Mapping[str, Any], name: str, cpus: int, reserved_cpus: float
) -> int:
    """How many actors to start: up to ``max`` as the cluster's CPUs allow, at least ``min``.

    ``cpus``: the cluster's. ``reserved_cpus`` stay free for the tasks of the other
    operators (a pool taking every CPU would starve the reads feeding it). A pool whose
    ``min`` actors cannot fit beside them could never run (the execution would wait
    forever), so it is an error.
    """
    low, high = bounds
    per_actor = float(remote_args.get("num_cpus") or 0)
    if per_actor <= 0:
        return high if high is not None else max(low, cpus)
    if low * per_actor + reserved_cpus > cpus:
        tasks = f" beside the {reserved_cpus:g} CPU(s) other tasks need" if reserved_cpus else ""
        raise ValueError(
            f"{name} needs {low} actors of num_cpus={per_actor:g}{tasks}, but the cluster has "
            f"only {cpus} CPUs; lower concurrency or num_cpus."
        )
    fit = int((cpus - reserved_cpus) // per_actor)
    return max(low, fit if high is None else min(high, fit))


def _positive(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def cluster_totals() -> dict[str, float]:
    """The cluster's resources (empty before ``nebula.init()``)."""
    return dict(nebula.cluster_resources()) if nebula.is_initialized() else {}


def cluster_cpus(totals: Mapping[str, float] | None = None) -> int:
    cpus = (cluster_totals() if totals is None else totals).get("CPU", 1)
    return max(1, int(cpus))
