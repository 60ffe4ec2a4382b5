"""The live table of trials in the terminal, and the summary printed at the end (rich)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from nebula.tune._callback import Callback
from nebula.tune._util import lookup

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["ProgressTable"]

_MAX_ROWS = 20
_MAX_PARAMS = 4


class ProgressTable(Callback):
    """Shows status, metric, iterations and time per trial.

    In a terminal the table updates in place a few times a second; otherwise (a log file,
    CI) it is printed every ``report_period_s``. ``verbose=0`` shows nothing, 1 the table
    and the summary, 2 and 3 also a line per finished trial.
    """

    def __init__(
        self,
        metric: str | None,
        mode: str | None,
        verbose: int = 1,
        report_period_s: float | None = None,
        file: Any = None,
    ) -> None:
        from rich.console import Console

        self.metric = metric
        self.mode = mode
        self.verbose = verbose
        self.console = Console(file=file or sys.stdout)
        interactive = self.console.is_terminal
        if not interactive:
            # Logs have no width; the default 80 columns would cut the trial names.
            self.console = Console(file=file or sys.stdout, width=160)
        self.report_period_s = report_period_s or (0.5 if interactive else 30.0)
        self._live: Any = None
        self._interactive = interactive
        self._last = 0.0
        self._start = time.monotonic()

    def setup(self, stop: Any = None, num_samples: int | None = None, **info: Any) -> None:
        self._start = time.monotonic()
        self._last = time.monotonic()
        if self.verbose and self._interactive:
            from rich.live import Live

            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if not self.verbose:
            return
        now = time.monotonic()
        if now - self._last < self.report_period_s:
            return
        self._last = now
        table = self.table(trials)
        if self._live is not None:
            self._live.update(table, refresh=True)
        else:
            self.console.print(table)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if self.verbose >= 2:
            self.console.print(f"Trial {trial} completed: {self._metric_text(trial)}")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if self.verbose >= 1:
            first_line = (trial.error or "").strip().splitlines()[-1:] or [""]
            self.console.print(f"[red]Trial {trial} errored[/red]: {first_line[0]}")

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self._live is not None:
            self._live.update(self.table(trials), refresh=True)
            self._live.stop()
            self._live = None
        if not self.verbose:
            return
        if not self._interactive:
            self.console.print(self.table(trials))
        self.console.print(self.summary(trials))

    def table(self, trials: list[Trial]) -> Any:
        from rich.table import Table

        counts = Counter(t.status for t in trials)
        elapsed = time.monotonic() - self._start
        status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        table = Table(title=f"Trials ({status}) after {elapsed:.1f}s", title_justify="left")
        params = _varying_params(trials)
        for column in [
            "Trial name",
            "status",
            *("/".join(p) for p in params),
            "iter",
            "total time (s)",
        ]:
            table.add_column(column)
        metric_column = self.metric or "last result"
        table.add_column(metric_column)
        shown = _rows_to_show(trials)
        for trial in shown:
            values = [_short(_get(trial.config, p)) for p in params]
            table.add_row(
                str(trial),
                _styled(trial.status),
                *values,
                str(trial.iteration),
                f"{trial.time_total_s:.2f}",
                self._metric_text(trial),
            )
        if len(shown) < len(trials):
            table.caption = f"... {len(trials) - len(shown)} more trials not shown"
        return table

    def summary(self, trials: list[Trial]) -> str:
        counts = Counter(t.status for t in trials)
        lines = [
            f"Sweep finished in {time.monotonic() - self._start:.1f}s: {len(trials)} trials "
            f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})."
        ]
        best = self._best(trials)
        if best is not None:
            lines.append(
                f"Best trial {best} "
                f"({self.mode} {self.metric}={lookup(best.last_result, self.metric)}): "
                f"config {best.config}"
            )
        errored = [t for t in trials if t.status == "ERROR"]
        if errored:
            lines.append(
                f"{len(errored)} trials errored: " + ", ".join(str(t) for t in errored[:10])
            )
        return "\n".join(lines)

    def _best(self, trials: list[Trial]) -> Trial | None:
        if self.metric is None or self.mode is None:
            return None
        scored = [t for t in trials if isinstance(lookup(t.last_result, self.metric), int | float)]
        if not scored:
            return None
        key = lambda t: lookup(t.last_result, self.metric)  # noqa: E731
        return max(scored, key=key) if self.mode == "max" else min(scored, key=key)

    def _metric_text(self, trial: Trial) -> str:
        result = trial.last_result
        if self.metric is not None:
            value = lookup(result, self.metric)
            return _short(value) if value is not None else ""
        numeric = [
            (k, v)
            for k, v in result.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in _AUTO
        ]
        return ", ".join(f"{k}={_short(v)}" for k, v in numeric[:3])


_AUTO = {
    "training_iteration",
    "time_this_iter_s",
    "time_total_s",
    "time_since_restore",
    "iterations_since_restore",
    "timestamp",
    "pid",
    "done",
}


def _styled(status: str) -> str:
    colour = {"RUNNING": "green", "ERROR": "red", "PAUSED": "yellow", "PENDING": "blue"}.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else status


def _rows_to_show(trials: list[Trial]) -> list[Trial]:
    if len(trials) <= _MAX_ROWS:
        return trials
    order = {"RUNNING": 0, "ERROR": 1, "PAUSED": 2, "PENDING": 3, "TERMINATED": 4}
    return sorted(trials, key=lambda t: order.get(t.status, 5))[:_MAX_ROWS]


def _varying_params(trials: list[Trial]) -> list[tuple[str, ...]]:
    seen: dict[tuple[str, ...], set[str]] = {}
    for trial in trials[:200]:
        for path, value in _leaves(trial.config):
            seen.setdefault(path, set()).add(repr(value)[:50])
    return [p for p, values in seen.items() if len(values) > 1][:_MAX_PARAMS]


def _leaves(
    config: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for key, value in config.items():
        if isinstance(value, dict):
            out.extend(_leaves(value, (*prefix, str(key))))
        else:
            out.append(((*prefix, str(key)), value))
    return out


def _get(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(config, dict):
            return None
        config = config.get(key)  # type: ignore[assignment]
    return config


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)[:20]
