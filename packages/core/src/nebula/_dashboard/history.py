"""The cluster's use over time, for the overview's charts: sampled every few seconds by a
thread of the dashboard, kept for the last half hour."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from nebula._state import records
from nebula._state.connection import StateConnection

SAMPLE_S = 2.0
KEEP = 900  # 30 minutes of samples


def cluster_sample(conn: StateConnection) -> dict[str, Any]:
    """Used and total resources, object store bytes and host load, summed over live nodes."""
    stores = records.node_stores(conn)
    sample: dict[str, Any] = {"time": time.time(), "nodes": len(stores)}
    for resource in ("CPU", "GPU", "memory"):
        total = sum(s["total"].get(resource, 0.0) for s in stores)
        free = sum(s["available_resources"].get(resource, 0.0) for s in stores)
        sample[f"{resource}_total"] = total
        sample[f"{resource}_used"] = max(0.0, total - free)
    sample["object_store_total"] = sum(s["capacity"] for s in stores)
    sample["object_store_used"] = sum(s["used"] for s in stores)
    sample["spilled_bytes"] = sum(s["spilled_bytes"] for s in stores)
    sample["workers"] = sum(s["workers"] for s in stores)
    loads = [s["host_cpu_percent"] for s in stores if s.get("host_cpu_percent") is not None]
    sample["host_cpu_percent"] = round(sum(loads) / len(loads), 1) if loads else None
    memory = [s["host_memory_percent"] for s in stores if s.get("host_memory_percent") is not None]
    sample["host_memory_percent"] = round(sum(memory) / len(memory), 1) if memory else None
    return sample


class History:
    def __init__(self, conn: StateConnection) -> None:
        self.conn = conn
        self.samples: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nebula-history", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(cluster_sample(self.conn))
            except Exception:  # a node that does not answer costs one sample, not the thread
                pass
            self._stop.wait(SAMPLE_S)

    def since(self, after: float = 0.0) -> list[dict[str, Any]]:
        return [s for s in list(self.samples) if s["time"] > after]
