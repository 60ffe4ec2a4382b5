"""Peak memory of a process tree, sampled from a background thread.

Each sample adds up, over the tree (the started process, its descendants, and any process
whose environment carries the run's tag, in case one left the tree):

- the proportional set size of its private and file-backed pages (``Pss_Anon`` +
  ``Pss_File`` from ``/proc/PID/smaps_rollup``: a page shared by n processes counts 1/n in
  each, so libraries shared by forked workers count once), and
- shared memory once: the larger of what the processes map (``Pss_Shmem``) and the bytes of
  the files in the run's own shared-memory directory (an object store that writes its
  objects as files keeps them there whether or not a process maps them).

The peak is the largest sum seen. The sampler also keeps each process's CPU time (user +
system) as last seen, so ``cpu_seconds`` is what the whole tree used.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psutil

_FIELDS = {"Pss_Anon:": "anon", "Pss_File:": "file", "Pss_Shmem:": "shmem"}


def _rollup(pid: int) -> dict[str, int]:
    """Bytes of anonymous, file-backed and shared-memory PSS of one process (0s if gone)."""
    sizes = {"anon": 0, "file": 0, "shmem": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                key = _FIELDS.get(parts[0]) if parts else None
                if key is not None:
                    sizes[key] = int(parts[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return sizes


def directory_bytes(path: str | None) -> int:
    """Bytes allocated to the files under ``path`` (0 when it is None or gone)."""
    if path is None:
        return 0
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def tagged_pids(tag_variable: str, tag: str) -> set[int]:
    """Processes whose environment sets ``tag_variable=tag``."""
    marker = f"{tag_variable}={tag}".encode()
    found = set()
    for pid in psutil.pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.add(pid)
        except OSError:
            continue
    return found


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class MemoryPeak:
    total: int = 0  # the largest sum seen, in bytes
    shared: int = 0  # the shared-memory part of that sample
    processes: int = 0  # processes in that sample
    samples: int = 0
    cpu_by_pid: dict[int, float] = field(default_factory=dict)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_pid.values())


class TreeSampler:
    """Samples a process tree's memory every ``interval`` seconds until stopped.

    Sampling must cost the engine being measured little (it shares the CPUs): the tree is
    listed again every ``tree_interval`` (listing walks every process on the machine), and a
    process's PSS, whose reading walks its page tables, is read again only when its resident
    size moved by ``RESIDENT_SLACK`` bytes since the last reading.
    """

    RESIDENT_SLACK = 256 * 1024

    def __init__(
        self,
        root_pid: int,
        *,
        tag_variable: str,
        tag: str,
        shm_directory: str | None,
        interval: float = 0.05,
        tree_interval: float = 0.25,
        rescan_interval: float = 1.0,
    ) -> None:
        self.peak = MemoryPeak()
        self._root = root_pid
        self._tag_variable, self._tag = tag_variable, tag
        self._shm_directory = shm_directory
        self._interval = interval
        self._tree_interval = tree_interval
        self._rescan_interval = rescan_interval
        self._tagged: set[int] = set()
        self._pids: set[int] = {root_pid}
        # pid -> (resident bytes when last read, that reading)
        self._readings: dict[int, tuple[int, dict[str, int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> set[int]:
        pids = {self._root}
        try:
            pids.update(child.pid for child in psutil.Process(self._root).children(recursive=True))
        except psutil.NoSuchProcess:
            pass
        return pids | self._tagged

    def _sizes(self, pid: int) -> dict[str, int]:
        resident = _resident_bytes(pid)
        cached = self._readings.get(pid)
        if resident is None:
            self._readings.pop(pid, None)
            return {"anon": 0, "file": 0, "shmem": 0}
        if cached is not None and abs(resident - cached[0]) < self.RESIDENT_SLACK:
            return cached[1]
        sizes = _rollup(pid)
        self._readings[pid] = (resident, sizes)
        return sizes

    def sample(self) -> None:
        pids = self._pids
        sizes = [self._sizes(pid) for pid in pids]
        private = sum(size["anon"] + size["file"] for size in sizes)
        mapped_shared = sum(size["shmem"] for size in sizes)
        shared = max(mapped_shared, directory_bytes(self._shm_directory))
        peak = self.peak
        peak.samples += 1
        for pid in pids:
            used = cpu_seconds(pid)
            if used is not None:
                peak.cpu_by_pid[pid] = used
        if private + shared > peak.total:
            peak.total, peak.shared, peak.processes = private + shared, shared, len(pids)

    def _run(self) -> None:
        last_scan = last_tree = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_scan >= self._rescan_interval:
                self._tagged = tagged_pids(self._tag_variable, self._tag)
                last_scan = now
            if now - last_tree >= self._tree_interval:
                self._pids = self._tree()
                last_tree = now
            self.sample()
            self._stop.wait(self._interval)
        self.sample()


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes(pid: int) -> int | None:
    """A process's resident set size, cheaply (no page-table walk); None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (FileNotFoundError, ProcessLookupError):
        return None
