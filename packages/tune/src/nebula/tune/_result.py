"""What ``Tuner.fit()`` returns: a ``ResultGrid`` of one ``Result`` per trial."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nebula.tune._errors import TrialError
from nebula.tune._util import flatten, lookup

if TYPE_CHECKING:
    import pandas as pd
    from nebula.tune._checkpoint import Checkpoint
    from nebula.tune._trial import Trial

__all__ = ["Result", "ResultGrid"]

_SCOPES = ("last", "avg", "all", "last-5-avg", "last-10-avg")


@dataclass
class Result:
    """One trial's outcome: its last ``metrics``, ``config``, latest ``checkpoint``, its
    directory (``path`` on ``filesystem``) and ``error`` if it failed.
    """

    metrics: dict[str, Any]
    checkpoint: Checkpoint | None
    error: TrialError | None
    path: str
    filesystem: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]] = field(default_factory=list)
    _local_path: str = ""
    _dataframe: Any = None

    @property
    def metrics_dataframe(self) -> pd.DataFrame | None:
        """Every result of the trial (read from its ``progress.csv``), or None if it has none."""
        if self._dataframe is None:
            self._dataframe = _read_progress(self._local_path)
        return self._dataframe

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.metrics.items() if k not in ("config", "date", "hostname")}
        return (
            f"Result(metrics={shown}, path={self.path!r}, "
            f"checkpoint={self.checkpoint}, error={'yes' if self.error else None})"
        )


def _read_progress(local_path: str) -> pd.DataFrame | None:
    import pandas as pd

    path = os.path.join(local_path, "progress.csv")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    return pd.read_csv(path)


class ResultGrid:
    """The results of a sweep, indexable and iterable in trial order."""

    def __init__(
        self,
        results: list[Result],
        *,
        experiment_path: str,
        metric: str | None,
        mode: str | None,
        trials: list[Trial] | None = None,
    ) -> None:
        self._results = results
        self.experiment_path = experiment_path
        self._metric = metric
        self._mode = mode
        self._trials = trials or []

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, index: int) -> Result:
        return self._results[index]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def errors(self) -> list[TrialError]:
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    @property
    def num_terminated(self) -> int:
        return sum(1 for t in self._trials if t.status == "TERMINATED")

    def get_best_result(
        self,
        metric: str | None = None,
        mode: str | None = None,
        scope: str = "last",
        filter_nan_and_inf: bool = True,
    ) -> Result:
        """The result whose ``metric`` is best (``mode`` min or max) by ``scope``: the last
        value, the best over ``all`` results, their mean (``avg``), or ``last-5-avg`` /
        ``last-10-avg``.
        """
        metric = metric or self._metric
        mode = mode or self._mode
        if metric is None or mode is None:
            raise ValueError(
                "get_best_result() needs a metric and a mode: pass them, or set "
                "TuneConfig(metric=..., mode=...)."
            )
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        if scope not in _SCOPES:
            raise ValueError(f"scope must be one of {', '.join(_SCOPES)}, got {scope!r}.")
        best: Result | None = None
        best_value = -math.inf
        for result in self._results:
            value = _scoped_value(result, metric, mode, scope)
            if value is None or (filter_nan_and_inf and not math.isfinite(value)):
                continue
            signed = value if mode == "max" else -value
            if best is None or signed > best_value:
                best, best_value = result, signed
        if best is None:
            raise RuntimeError(
                f"no trial reported a finite {metric!r}; check the trials' errors "
                "(ResultGrid.errors) and that the trainable reports that metric."
            )
        return best

    def get_dataframe(
        self, filter_metric: str | None = None, filter_mode: str | None = None
    ) -> pd.DataFrame:
        """A row per trial: its last result (or, with ``filter_metric``, its best one)."""
        import pandas as pd

        rows = []
        for result in self._results:
            row = dict(result.metrics)
            if filter_metric is not None and filter_mode is not None:
                frame = result.metrics_dataframe
                if frame is not None and filter_metric in frame and len(frame):
                    column = frame[filter_metric]
                    index = column.idxmax() if filter_mode == "max" else column.idxmin()
                    row = dict(frame.loc[index])
                    row["config"] = result.config
            flat = flatten({k: v for k, v in row.items() if k != "config"})
            flat.update(flatten({"config": result.config}))
            flat["logdir"] = result.path
            rows.append(flat)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"ResultGrid<{len(self)} results, {self.num_errors} errors>"


def _scoped_value(result: Result, metric: str, mode: str, scope: str) -> float | None:
    if scope == "last":
        value = lookup(result.metrics, metric)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    frame = result.metrics_dataframe
    if frame is None or metric not in frame or not len(frame):
        return None
    column = frame[metric].dropna()
    if not len(column):
        return None
    if scope == "all":
        return float(column.max() if mode == "max" else column.min())
    if scope == "avg":
        return float(column.mean())
    count = 5 if scope == "last-5-avg" else 10
    return float(column.iloc[-count:].mean())


def build_results(trials: list[Trial], controller: Any, filesystem: Any) -> list[Result]:
    results = []
    for trial in trials:
        error = None
        if trial.status == "ERROR":
            error = TrialError(trial.trial_id, trial.error or "", None)
        results.append(
            Result(
                metrics=dict(trial.last_result),
                checkpoint=trial.checkpoint,
                error=error,
                path=trial.path,
                filesystem=filesystem,
                config=trial.config,
                best_checkpoints=controller.best_checkpoints(trial),
                _local_path=trial.local_path,
            )
        )
    return results
