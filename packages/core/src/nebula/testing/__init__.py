"""Test helpers for Nebula programs and for the packages built on Nebula."""

from __future__ import annotations

from nebula.testing._cluster import Cluster, ClusterNode
from nebula.testing._conditions import wait_for_condition
from nebula.testing._leaks import leaked_processes, leaked_shm_files, shm_files
from nebula.testing._signal import SemaphoreActor, SignalActor

__all__ = [
    "Cluster",
    "ClusterNode",
    "SemaphoreActor",
    "SignalActor",
    "leaked_processes",
    "leaked_shm_files",
    "shm_files",
    "wait_for_condition",
]
