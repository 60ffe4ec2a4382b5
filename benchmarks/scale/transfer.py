"""An object made on one node and read by a task on another, on loopback; Nebula or Ray.

A test cluster of ``1 + --readers`` nodes (1 CPU each, a custom resource per node pins
each task): a task on the first node makes an array of ``--mib`` MiB (random bytes, so
that no page is the kernel's shared zero page), then a task on each other node reads it
and returns its checksum. Prints one JSON line with the time from submitting the
readers to their results, and the rate for one reader (GiB/s); with several readers,
``sequential_s`` is the same transfer done to each reader one after the other::

    python benchmarks/scale/transfer.py --lib nebula --mib 1024
    python benchmarks/scale/transfer.py --lib nebula --mib 1024 --readers 4
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", choices=["nebula", "ray"], required=True)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lib = importlib.import_module(args.lib)
    store = (args.mib * 2**20) * 3 + (256 << 20)
    head_args: dict[str, Any] = {"num_cpus": 1, "resources": {"node0": 1}}
    head_args["object_store_memory"] = store
    if args.lib == "nebula":
        from nebula.testing import Cluster

        cluster: Any = Cluster(initialize_head=True, head_node_args=head_args)
    else:
        from ray.cluster_utils import Cluster  # type: ignore[no-redef]

        cluster = Cluster(
            initialize_head=True, head_node_args={**head_args, "include_dashboard": False}
        )
    for i in range(1, args.readers + 1):
        cluster.add_node(num_cpus=1, resources={f"node{i}": 1}, object_store_memory=store)
    cluster.wait_for_nodes()
    if args.lib == "nebula":
        cluster.connect()
    else:
        lib.init(address=cluster.address)
    try:

        @lib.remote(num_cpus=0, resources={"node0": 0.01})
        def make(mib: int) -> Any:
            import numpy as np

            return np.random.default_rng(0).integers(0, 255, mib * 2**20, dtype=np.uint8)

        @lib.remote(num_cpus=0)
        def read(array: Any) -> int:
            import numpy as np

            return int(np.frombuffer(memoryview(array), dtype=np.uint8)[::4096].sum())

        def readers(nodes: list[int], ref: Any) -> list[int]:
            return lib.get([read.options(resources={f"node{i}": 0.01}).remote(ref) for i in nodes])

        nodes = list(range(1, args.readers + 1))
        readers(nodes, lib.put(b"warm-up"))  # workers started on every node
        times, sequential = [], []
        for _ in range(args.repeat):
            ref = make.remote(args.mib)
            lib.wait([ref])
            start = time.perf_counter()
            sums = readers(nodes, ref)
            times.append(time.perf_counter() - start)
            assert len(set(sums)) == 1
            del ref
            if args.readers > 1:
                ref = make.remote(args.mib)
                lib.wait([ref])
                start = time.perf_counter()
                for node in nodes:
                    readers([node], ref)
                sequential.append(time.perf_counter() - start)
                del ref
        best = min(times)
        result: dict[str, Any] = {
            "workload": "transfer",
            "mib": args.mib,
            "readers": args.readers,
            "seconds": best,
            "all_s": times,
            "gib_per_s": args.mib / 1024 / best,
        }
        if sequential:
            result["sequential_s"] = min(sequential)
        print(json.dumps(result), flush=True)
    finally:
        lib.shutdown()
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
