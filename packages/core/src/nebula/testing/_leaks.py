"""Finding what a test left behind: Nebula processes and shared-memory files.

Other test runs may share the machine, so a shared-memory file counts as leaked only when
no Nebula process outside this process's tree still uses its session.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

from nebula import _config

_MARKERS = ("nebula._control_store", "nebula._node_manager", "nebula._worker", "nebula._dashboard")


def shm_files(tag: str = "*") -> list[str]:
    """Shared-memory files of one cluster (its session ``tag``) or of every cluster here."""
    return sorted(glob.glob(os.path.join(_config.SHM_DIR, f"nebula-{tag}-*")))


def leaked_shm_files(before: Iterable[str] = ()) -> list[str]:
    """Nebula shared-memory files not in ``before`` whose cluster is not someone else's."""
    known = set(before)
    elsewhere = _tags_in_use_elsewhere()
    return [
        path
        for path in shm_files()
        if path not in known and os.path.basename(path).split("-")[1] not in elsewhere
    ]


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


def _tags_in_use_elsewhere() -> set[str]:
    """Session tags of clusters run by processes outside this process's tree."""
    import psutil

    me = psutil.Process()
    ours = {me.pid, *(child.pid for child in me.children(recursive=True))}
    tags = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = process.info["cmdline"] or []
        except psutil.Error:
            continue
        if process.info["pid"] in ours or "--session-tag" not in cmdline:
            continue
        index = cmdline.index("--session-tag")
        if index + 1 < len(cmdline):
            tags.add(cmdline[index + 1])
    return tags
