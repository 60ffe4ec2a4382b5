"""Many of each on one machine, for Nebula and Ray: placement groups, actors, nodes.

Run one workload in a fresh interpreter; it prints one JSON line::

    python benchmarks/scale/many.py --lib nebula --workload placement_groups --size 1000
    python benchmarks/scale/many.py --lib nebula --workload actors --size 1000
    python benchmarks/scale/many.py --lib nebula --workload nodes --size 50 --tasks 10000

``placement_groups``: ``size`` groups of one bundle (of a custom resource, so that they
all fit on a 2-CPU machine) created, all ready, then all removed. ``actors``: ``size``
actors with ``num_cpus=0`` created and each answering one call; then the unique memory
(USS) the cluster's processes grew by, per actor. ``nodes``: a test cluster of ``size``
node managers (1 CPU each, no workers started ahead), ``--tasks`` tasks spread over them,
then the control store's CPU while the cluster idles for 10 s.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from types import ModuleType
from typing import Any

import psutil


def _uss_of_tree() -> int:
    me = psutil.Process()
    total = 0
    for process in [me, *me.children(recursive=True)]:
        try:
            total += process.memory_full_info().uss
        except psutil.Error:
            pass
    return total


def _processes_named(word: str) -> list[psutil.Process]:
    """This process's descendants whose command line mentions ``word``."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if any(word in part for part in process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


def placement_groups(lib: ModuleType, size: int) -> dict[str, Any]:
    util = importlib.import_module(f"{lib.__name__}.util")
    start = time.perf_counter()
    groups = [util.placement_group([{"slot": 1}]) for _ in range(size)]
    created_s = time.perf_counter() - start
    lib.get([g.ready() for g in groups])
    ready_s = time.perf_counter() - start
    remove_start = time.perf_counter()
    for group in groups:
        util.remove_placement_group(group)
    removed_s = time.perf_counter() - remove_start
    # All the slots are back once every removal has been applied.
    deadline = time.monotonic() + 60
    while lib.available_resources().get("slot", 0) < size and time.monotonic() < deadline:
        time.sleep(0.05)
    freed_s = time.perf_counter() - remove_start
    return {
        "seconds": ready_s + freed_s,
        "create_s": created_s,
        "ready_s": ready_s,
        "remove_s": removed_s,
        "freed_s": freed_s,
        "ready_per_s": size / ready_s,
        "removed_per_s": size / freed_s,
    }


def actors(lib: ModuleType, size: int) -> dict[str, Any]:
    @lib.remote(num_cpus=0)
    class Idle:
        def ping(self) -> int:
            return 1

    time.sleep(2.0)
    before = _uss_of_tree()
    start = time.perf_counter()
    handles = [Idle.remote() for _ in range(size)]
    assert sum(lib.get([h.ping.remote() for h in handles])) == size
    seconds = time.perf_counter() - start
    time.sleep(5.0)
    after = _uss_of_tree()
    return {
        "seconds": seconds,
        "created_per_s": size / seconds,
        "uss_per_actor_mib": (after - before) / size / 2**20,
    }


def nodes(lib: ModuleType, size: int, tasks: int) -> dict[str, Any]:
    if lib.__name__ == "nebula":
        from nebula.testing import Cluster
    else:
        from ray.cluster_utils import Cluster  # type: ignore[no-redef]
    start = time.perf_counter()
    if lib.__name__ == "nebula":
        cluster: Any = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        for _ in range(size - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes(timeout=300)
        cluster.connect()
    else:
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
        )
        for _ in range(size - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        lib.init(address=cluster.address)
    up_s = time.perf_counter() - start
    try:

        @lib.remote(num_cpus=1, scheduling_strategy="SPREAD")
        def where() -> str:
            return str(lib.get_runtime_context().get_node_id())

        start = time.perf_counter()
        used = lib.get([where.remote() for _ in range(tasks)])
        tasks_s = time.perf_counter() - start
        word = "nebula._control_store" if lib.__name__ == "nebula" else "gcs_server"
        store = _processes_named(word)[0]
        time.sleep(5.0)  # leases given back, workers settled
        before = store.cpu_times()
        time.sleep(10.0)
        after = store.cpu_times()
        idle_cpu = (after.user + after.system - before.user - before.system) / 10.0
        return {
            "seconds": tasks_s,
            "startup_s": up_s,
            "tasks_per_s": tasks / tasks_s,
            "nodes_used": len(set(used)),
            "control_store_idle_cpu_pct": 100 * idle_cpu,
            "control_store_rss_mib": store.memory_info().rss / 2**20,
        }
    finally:
        lib.shutdown()
        cluster.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", choices=["nebula", "ray"], required=True)
    parser.add_argument("--workload", choices=["placement_groups", "actors", "nodes"])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=10000)
    args = parser.parse_args()
    lib = importlib.import_module(args.lib)
    if args.workload == "nodes":
        result = nodes(lib, args.size, args.tasks)
    else:
        kwargs: dict[str, Any] = {"num_cpus": 2}
        if args.workload == "placement_groups":
            kwargs["resources"] = {"slot": args.size}
        if args.lib == "ray":
            kwargs["include_dashboard"] = False
        lib.init(**kwargs)
        try:
            fn = placement_groups if args.workload == "placement_groups" else actors
            result = fn(lib, args.size)
        finally:
            lib.shutdown()
    print(json.dumps({"workload": args.workload, "size": args.size, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
