"""Finding what a test left behind: Nebula processes and shared-memory files."""

from __future__ import annotations

import glob
import os

from nebula import _config

_MARKERS = ("nebula._control_store", "nebula._node_manager", "nebula._worker")


def leaked_shm_files() -> list[str]:
    return sorted(glob.glob(os.path.join(_config.SHM_DIR, "nebula-*")))


def leaked_processes(root_pid: int | None = None) -> list[int]:
    """Pids of live Nebula processes descended from ``root_pid`` (default: this process)."""
    import psutil

    try:
        root = psutil.Process(root_pid or os.getpid())
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if any(m in " ".join(child.cmdline()) for m in _MARKERS):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found
