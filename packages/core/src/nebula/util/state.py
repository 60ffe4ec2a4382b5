"""What the cluster is running, as records: actors, nodes and placement groups.

Each ``list_*`` takes Ray's ``filters`` (``[("state", "=", "ALIVE")]``; predicates ``=``
and ``!=``, compared as strings) and a ``limit``. A record reads both ways:
``actor["state"]`` and ``actor.state``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nebula._api import cluster_info, runtime
from nebula.util.placement_group import placement_group_table

Filter = tuple[str, str, Any]


class StateRecord(dict[str, Any]):
    """A dict whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _select(
    records: Iterable[dict[str, Any]], filters: Sequence[Filter] | None, limit: int
) -> list[StateRecord]:
    checked = []
    for item in filters or ():
        if not (isinstance(item, tuple) and len(item) == 3 and item[1] in ("=", "!=")):
            raise ValueError(
                f"a filter is (key, '=' or '!=', value), like ('state', '=', 'ALIVE'); "
                f"got {item!r}."
            )
        checked.append(item)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}.")
    selected = []
    for record in records:
        for key, predicate, value in checked:
            if key not in record:
                raise ValueError(f"cannot filter on {key!r}; records have {sorted(record)}.")
            if (str(record[key]) == str(value)) != (predicate == "="):
                break
        else:
            selected.append(StateRecord(record))
            if len(selected) >= limit:
                break
    return selected


def list_actors(filters: Sequence[Filter] | None = None, limit: int = 100) -> list[StateRecord]:
    """Actors, dead ones included: actor_id, class_name, state (PENDING, ALIVE,
    RESTARTING, DEAD), name, namespace, job_id, pid, node_id, death_cause, restarts."""
    return _select(runtime.list_actors(), filters, limit)


def get_actor(actor_id: str) -> StateRecord | None:
    found = list_actors([("actor_id", "=", actor_id)], limit=1)
    return found[0] if found else None


def list_nodes(filters: Sequence[Filter] | None = None, limit: int = 100) -> list[StateRecord]:
    """Nodes: node_id, node_ip, state (ALIVE, DEAD), resources_total, labels."""
    records = (
        {
            "node_id": node["NodeID"],
            "node_ip": node["NodeManagerAddress"],
            "state": "ALIVE" if node["Alive"] else "DEAD",
            "resources_total": node["Resources"],
            "labels": node["Labels"],
        }
        for node in cluster_info.nodes()
    )
    return _select(records, filters, limit)


def list_placement_groups(
    filters: Sequence[Filter] | None = None, limit: int = 100
) -> list[StateRecord]:
    """Placement groups: placement_group_id, name, state, strategy, bundles."""
    table = placement_group_table()
    return _select(table.values(), filters, limit)


__all__ = [
    "StateRecord",
    "get_actor",
    "list_actors",
    "list_nodes",
    "list_placement_groups",
]
