"""Counting the tasks a dataset ran, by name, through the state API."""

from __future__ import annotations

import time

from nebula.util.state import list_tasks


def tasks_named(name: str, *, settled: bool = False) -> int:
    """How many tasks of that name the cluster has run; with ``settled``, once the count has
    stopped growing (tasks are reported a little after they finish)."""

    def count() -> int:
        return len(list_tasks(filters=[("name", "=", name)], limit=100_000))

    current = count()
    if not settled:
        return current
    previous = -1
    while current != previous:
        previous = current
        time.sleep(0.5)
        current = count()
    return current
