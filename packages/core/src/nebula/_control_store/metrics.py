"""User metrics (``nebula.util.metrics``) reported by every process, aggregated.

Each process sends the current value of each of its series every few seconds (a counter's
running total, a gauge's last value, a histogram's bucket counts); the table keeps the last
report per process and adds them up when asked: counters and histograms sum over processes,
a gauge shows the value most recently reported for its tags. Reports from a process stay
after it ends, so a counter never goes backwards when a worker exits; the oldest reporters
are forgotten past ``max_sources``.

Pure bookkeeping: no sockets, tested on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from nebula import _protocol as p

Tags = tuple[tuple[str, str], ...]


class MetricsTable:
    def __init__(self, max_sources: int = 10_000) -> None:
        self.max_sources = max_sources
        # source -> (report number, its series), least recently reporting first.
        self._reports: OrderedDict[str, tuple[int, p.MetricsReport]] = OrderedDict()
        self._reports_seen = 0

    def report(self, msg: p.MetricsReport) -> None:
        self._reports_seen += 1
        self._reports.pop(msg.source, None)
        self._reports[msg.source] = (self._reports_seen, msg)
        while len(self._reports) > self.max_sources:
            self._reports.popitem(last=False)

    def aggregate(self) -> list[dict[str, Any]]:
        """One record per metric: name, kind, description and its series by tags."""
        metrics: dict[str, dict[str, Any]] = {}
        gauge_seen: dict[tuple[str, Tags], int] = {}
        for seen, msg in self._reports.values():
            for name, kind, description, tags, value in msg.series:
                metric = metrics.setdefault(
                    name, {"name": name, "kind": kind, "description": description, "series": {}}
                )
                if metric["kind"] != kind:
                    continue  # the same name declared as two kinds: the first one counts
                series: dict[Tags, Any] = metric["series"]
                if kind == "gauge":
                    if gauge_seen.get((name, tags), -1) < seen:
                        gauge_seen[(name, tags)] = seen
                        series[tags] = value
                elif kind == "counter":
                    series[tags] = series.get(tags, 0.0) + value
                elif kind == "histogram":
                    series[tags] = _add_histograms(series.get(tags), value)
        return [
            {
                **metric,
                "series": [{"tags": dict(t), "value": v} for t, v in metric["series"].items()],
            }
            for metric in metrics.values()
        ]


def _add_histograms(total: Any, value: Any) -> Any:
    boundaries, buckets, total_sum, count = value
    if total is None:
        return (tuple(boundaries), list(buckets), total_sum, count)
    if tuple(boundaries) != total[0]:
        return total  # the same histogram declared with other buckets elsewhere: skipped
    summed = [a + b for a, b in zip(total[1], buckets)]
    return (total[0], summed, total[2] + total_sum, total[3] + count)
