"""The Tuner's settings: what to search and how (TuneConfig), where and how long (RunConfig)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckpointConfig", "FailureConfig", "RunConfig", "SyncConfig", "TuneConfig"]


def _check_mode(mode: str | None, what: str = "mode") -> None:
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"{what} must be 'min' or 'max', got {mode!r}.")


@dataclass
class TuneConfig:
    """How to search: the metric and its direction, how many samples, which search
    algorithm and scheduler (objects, or names registered through the plugin hooks), and
    how many trials run at once.
    """

    metric: str | None = None
    mode: str | None = None
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | None = None
    reuse_actors: bool | None = None
    trial_name_creator: Callable[[Any], str] | None = None
    trial_dirname_creator: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        _check_mode(self.mode, "TuneConfig.mode")
        if self.metric is not None and not isinstance(self.metric, str):
            raise TypeError(f"TuneConfig.metric must be a str, got {type(self.metric).__name__}.")
        if (
            not isinstance(self.num_samples, int)
            or isinstance(self.num_samples, bool)
            or self.num_samples == 0
            or self.num_samples < -1
        ):
            raise ValueError(
                "TuneConfig.num_samples must be a positive integer (or -1), got "
                f"{self.num_samples!r}."
            )
        if self.max_concurrent_trials is not None and (
            not isinstance(self.max_concurrent_trials, int) or self.max_concurrent_trials < 1
        ):
            raise ValueError(
                "TuneConfig.max_concurrent_trials must be a positive integer or None, got "
                f"{self.max_concurrent_trials!r}."
            )
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(
                f"TuneConfig.time_budget_s must be positive, got {self.time_budget_s}."
            )


@dataclass
class CheckpointConfig:
    """How many checkpoints to keep per trial (ranked by a metric, or the latest), and
    when class trainables save on their own (every N iterations, at the end).
    """

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.num_to_keep is not None and self.num_to_keep < 1:
            raise ValueError(f"num_to_keep must be at least 1 (or None), got {self.num_to_keep}.")
        _check_mode(self.checkpoint_score_order, "checkpoint_score_order")
        if self.checkpoint_frequency < 0:
            raise ValueError(f"checkpoint_frequency must be >= 0, got {self.checkpoint_frequency}.")


@dataclass
class FailureConfig:
    """``max_failures`` retries per trial (-1: for ever), each from its last checkpoint;
    ``fail_fast`` ends the sweep at the first failure (``"raise"`` also raises it).
    """

    max_failures: int = 0
    fail_fast: bool | str = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_failures, int) or self.max_failures < -1:
            raise ValueError(f"max_failures must be an integer >= -1, got {self.max_failures!r}.")
        if self.fail_fast not in (True, False, "raise"):
            raise ValueError(f"fail_fast must be True, False or 'raise', got {self.fail_fast!r}.")


@dataclass
class SyncConfig:
    """How often the driver uploads its logs and experiment state to remote storage."""

    sync_period: float = 10.0


@dataclass
class RunConfig:
    """Where results go (``storage_path``: a directory or a pyarrow filesystem URI, default
    ``~/nebula_results``), when trials stop, how they checkpoint and recover, and what
    watches them (callbacks, ``verbose`` 0-3).
    """

    name: str | None = None
    storage_path: str | os.PathLike[str] | None = None
    storage_filesystem: Any = None
    stop: Mapping[str, float] | Callable[[str, dict[str, Any]], bool] | Any = None
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    failure_config: FailureConfig = field(default_factory=FailureConfig)
    sync_config: SyncConfig = field(default_factory=SyncConfig)
    callbacks: list[Any] | None = None
    verbose: int | None = None
    progress_reporter: Any = None
    log_to_file: bool = False

    def __post_init__(self) -> None:
        if self.checkpoint_config is None:
            self.checkpoint_config = CheckpointConfig()
        if self.failure_config is None:
            self.failure_config = FailureConfig()
        if self.sync_config is None:
            self.sync_config = SyncConfig()
        if self.verbose is not None and self.verbose not in (0, 1, 2, 3):
            raise ValueError(f"verbose must be 0, 1, 2 or 3, got {self.verbose!r}.")
