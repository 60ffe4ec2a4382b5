"""``/metrics``: the cluster in Prometheus' text format.

Cluster gauges are read from the cluster at each scrape (nodes, resources, tasks and actors
by state, object store bytes, workers); user metrics (``nebula.util.metrics``) are the sums
the control store keeps of every process's reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from nebula._state import records
from nebula._state.connection import StateConnection


def _name(text: str) -> str:
    cleaned = re.sub(r"[^a-zA-Z0-9_:]", "_", text)
    return cleaned if not cleaned[:1].isdigit() else f"_{cleaned}"


class ClusterCollector(Collector):
    def __init__(self, conn: StateConnection) -> None:
        self.conn = conn

    def collect(self) -> Iterator[Metric]:
        yield from self._cluster()
        yield from self._user_metrics()

    def _cluster(self) -> Iterator[Metric]:
        nodes = records.nodes(self.conn)
        by_state = GaugeMetricFamily("nebula_cluster_nodes", "Nodes by state", labels=["state"])
        for state in ("ALIVE", "DEAD"):
            by_state.add_metric([state], sum(1 for n in nodes if n["state"] == state))
        yield by_state
        total = GaugeMetricFamily(
            "nebula_resources_total", "Resources of each node", labels=["node_id", "resource"]
        )
        used = GaugeMetricFamily(
            "nebula_resources_used", "Resources leased on each node", labels=["node_id", "resource"]
        )
        store_used = GaugeMetricFamily(
            "nebula_object_store_used_bytes", "Object store bytes in use", labels=["node_id"]
        )
        store_total = GaugeMetricFamily(
            "nebula_object_store_capacity_bytes", "Object store capacity", labels=["node_id"]
        )
        spilled = GaugeMetricFamily(
            "nebula_object_store_spilled_bytes", "Bytes spilled to disk", labels=["node_id"]
        )
        objects = GaugeMetricFamily(
            "nebula_object_store_objects", "Objects in the store", labels=["node_id"]
        )
        workers = GaugeMetricFamily("nebula_workers", "Worker processes", labels=["node_id"])
        for store in records.node_stores(self.conn):
            node = store["node_id"]
            for resource, amount in store["total"].items():
                free = store["available_resources"].get(resource, 0.0)
                total.add_metric([node, resource], amount)
                used.add_metric([node, resource], max(0.0, amount - free))
            store_used.add_metric([node], store["used"])
            store_total.add_metric([node], store["capacity"])
            spilled.add_metric([node], store["spilled_bytes"])
            objects.add_metric([node], store["objects"])
            workers.add_metric([node], store["workers"])
        yield from (total, used, store_used, store_total, spilled, objects, workers)
        tasks = GaugeMetricFamily(
            "nebula_tasks", "Task attempts the cluster records, by state", labels=["state"]
        )
        counts: dict[str, int] = {}
        for group in records.task_summary(self.conn)["cluster"]["summary"].values():
            for state, count in group["state_counts"].items():
                counts[state] = counts.get(state, 0) + count
        for state, count in sorted(counts.items()):
            tasks.add_metric([state], count)
        yield tasks
        actors = GaugeMetricFamily("nebula_actors", "Actors by state", labels=["state"])
        actor_counts: dict[str, int] = {}
        for actor in records.actors(self.conn):
            actor_counts[actor["state"]] = actor_counts.get(actor["state"], 0) + 1
        for state, count in sorted(actor_counts.items()):
            actors.add_metric([state], count)
        yield actors

    def _user_metrics(self) -> Iterator[Metric]:
        for metric in self.conn.query("metrics", limit=1 << 30).records:
            yield _family(metric)


def _family(metric: dict[str, Any]) -> Metric:
    name = _name(metric["name"])
    keys = sorted({k for s in metric["series"] for k in s["tags"]})
    description = metric["description"] or metric["name"]
    family: Any
    if metric["kind"] == "counter":
        family = CounterMetricFamily(name, description, labels=keys)
    elif metric["kind"] == "histogram":
        family = HistogramMetricFamily(name, description, labels=keys)
    else:
        family = GaugeMetricFamily(name, description, labels=keys)
    for series in metric["series"]:
        labels = [str(series["tags"].get(k, "")) for k in keys]
        value = series["value"]
        if metric["kind"] == "histogram":
            boundaries, buckets, total, _count = value
            cumulative, running = [], 0
            for bound, count in zip([*boundaries, float("inf")], buckets):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else str(bound), running))
            family.add_metric(labels, cumulative, total)
        else:
            family.add_metric(labels, float(value))
    return family
