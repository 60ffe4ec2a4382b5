"""User metrics, as Ray's ``ray.util.metrics``: ``Counter``, ``Gauge`` and ``Histogram``
with tags, recorded in any driver, task or actor and exported by the dashboard's
``/metrics`` endpoint in Prometheus format, summed over every process of the cluster.

    requests = Counter("requests", description="requests served", tag_keys=("route",))
    requests.inc(tags={"route": "/predict"})

Each process keeps its own values and reports them to the control store every few
seconds (and when a driver shuts down); counters and histograms add up across processes,
a gauge shows the value last set anywhere for its tags.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nebula import _protocol as p

REPORT_S = 2.0
DEFAULT_BOUNDARIES = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Tags = tuple[tuple[str, str], ...]

_metrics: dict[str, Metric] = {}
_registry_lock = threading.Lock()
_attached_to: Any = None
_last_report = 0.0


class Metric:
    """A named series of values, one per combination of tag values."""

    kind = ""

    def __init__(
        self, name: str, description: str = "", tag_keys: Sequence[str] | None = None
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a metric needs a non-empty name, got {name!r}.")
        if isinstance(tag_keys, str) or not all(isinstance(k, str) for k in tag_keys or ()):
            raise TypeError(f"tag_keys must be a tuple of strings, got {tag_keys!r}.")
        self._name = name
        self._description = description
        self._tag_keys = tuple(tag_keys or ())
        self._default_tags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._values: dict[Tags, Any] = {}
        with _registry_lock:
            existing = _metrics.get(name)
            if existing is not None and existing.kind != self.kind:
                raise ValueError(
                    f"a {existing.kind} named {name!r} already exists in this process; "
                    "give this metric another name."
                )
            if existing is not None:
                # The same metric made again (in each call of a task, say): one series.
                self._values, self._lock = existing._values, existing._lock
            else:
                _metrics[name] = self

    @property
    def info(self) -> dict[str, Any]:
        return {
            "name": self._name,
            "description": self._description,
            "tag_keys": self._tag_keys,
            "default_tags": dict(self._default_tags),
        }

    def set_default_tags(self, default_tags: Mapping[str, str]) -> Metric:
        self._check_keys(default_tags)
        self._default_tags = {str(k): str(v) for k, v in default_tags.items()}
        return self

    def _check_keys(self, tags: Mapping[str, str]) -> None:
        unknown = [k for k in tags if k not in self._tag_keys]
        if unknown:
            raise ValueError(
                f"metric {self._name!r} has tag keys {list(self._tag_keys)}; {unknown} are "
                "not among them (declare them in tag_keys=)."
            )

    def _tags(self, tags: Mapping[str, str] | None) -> Tags:
        merged = dict(self._default_tags)
        if tags:
            self._check_keys(tags)
            merged.update({str(k): str(v) for k, v in tags.items()})
        missing = [k for k in self._tag_keys if k not in merged]
        if missing:
            raise ValueError(
                f"metric {self._name!r} needs a value for tag(s) {missing} (pass tags= or "
                "set_default_tags())."
            )
        _attach()
        return tuple(sorted(merged.items()))

    def _series(self) -> list[tuple[str, str, str, Tags, Any]]:
        with self._lock:
            return [
                (self._name, self.kind, self._description, tags, _copy(value))
                for tags, value in self._values.items()
            ]


class Counter(Metric):
    """A running total that only goes up."""

    kind = "counter"

    def inc(self, value: float = 1.0, tags: Mapping[str, str] | None = None) -> None:
        if value < 0:
            raise ValueError(f"a counter only goes up; inc() got {value}.")
        key = self._tags(tags)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + float(value)


class Gauge(Metric):
    """A value that is set, up or down."""

    kind = "gauge"

    def set(self, value: float, tags: Mapping[str, str] | None = None) -> None:
        key = self._tags(tags)
        with self._lock:
            self._values[key] = float(value)


class Histogram(Metric):
    """Observed values counted into buckets (``boundaries`` are the buckets' upper bounds)."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        description: str = "",
        boundaries: Iterable[float] | None = None,
        tag_keys: Sequence[str] | None = None,
    ) -> None:
        bounds = tuple(float(b) for b in (boundaries or DEFAULT_BOUNDARIES))
        if not bounds or any(b <= 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"boundaries must be positive and increasing, got {bounds!r}.")
        self._boundaries = bounds
        super().__init__(name, description, tag_keys)

    def observe(self, value: float, tags: Mapping[str, str] | None = None) -> None:
        key = self._tags(tags)
        index = next(
            (i for i, b in enumerate(self._boundaries) if value <= b), len(self._boundaries)
        )
        with self._lock:
            entry = self._values.get(key)
            if entry is None:
                entry = self._values[key] = [
                    self._boundaries,
                    [0] * (len(self._boundaries) + 1),
                    0.0,
                    0,
                ]
            entry[1][index] += 1
            entry[2] += float(value)
            entry[3] += 1


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return (value[0], list(value[1]), value[2], value[3])
    return value


def _attach() -> None:
    """Report this process's metrics through its core worker, once it has one."""
    global _attached_to
    from nebula._api import runtime

    cw = runtime.core_worker_or_none()
    if cw is None or cw is _attached_to:
        return
    with _registry_lock:
        if cw is _attached_to:
            return
        _attached_to = cw
        cw.periodic.append(_report)


def _report(final: bool = False) -> None:
    global _last_report
    now = time.monotonic()
    if not final and now - _last_report < REPORT_S:
        return
    _last_report = now
    cw = _attached_to
    if cw is None:
        return
    with _registry_lock:
        metrics = list(_metrics.values())
    series = tuple(row for metric in metrics for row in metric._series())
    if series:
        cw.send(cw.control_store, p.MetricsReport(cw.address, series))


__all__ = ["Counter", "Gauge", "Histogram", "Metric"]
