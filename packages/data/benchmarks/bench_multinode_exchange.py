"""A sort and a random shuffle on a local cluster of several nodes (separate node managers,
each with its own object store), to see what an exchange costs once blocks cross nodes.

    python packages/data/benchmarks/bench_multinode_exchange.py --rows 4000000 --nodes 2

Every node gets ``--cpus-per-node`` CPUs and a store of ``--store-mb`` (default: the
node's default); the blocks are made where the tasks land, as a user's pipeline would.
Each run checks the output (row count and the sum of ``id``; a sort's order) and prints
the wall time of the exchange.
"""

from __future__ import annotations

import argparse
import statistics
import time

import nebula.data as nd
import numpy as np

from nebula.testing import Cluster


def add_columns(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(int(batch["id"][0]))
    batch["x"] = rng.random(len(batch["id"]))
    batch["y"] = rng.random(len(batch["id"]))
    return batch


def run(workload: str, rows: int, blocks: int) -> float:
    ds = nd.range(rows, override_num_blocks=blocks).map_batches(add_columns)
    start = time.perf_counter()
    out = ds.sort("x") if workload == "sort" else ds.random_shuffle(seed=1)
    stored = out.materialize()
    wall = time.perf_counter() - start
    ids = sum(batch["id"].sum() for batch in stored.iter_batches(batch_format="numpy"))
    assert stored.count() == rows and ids == rows * (rows - 1) // 2, "rows lost or repeated"
    if workload == "sort":
        xs = np.concatenate([b["x"] for b in stored.iter_batches(batch_format="numpy")])
        assert bool(np.all(xs[:-1] <= xs[1:])), "not sorted"
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store-mb", type=int, default=None, help="each node's object store")
    args = parser.parse_args()
    store = None if args.store_mb is None else args.store_mb << 20
    node = {"num_cpus": args.cpus_per_node, "object_store_memory": store}
    with Cluster(initialize_head=True, head_node_args=node, connect=True) as cluster:
        for _ in range(args.nodes - 1):
            cluster.add_node(**node)
        nd.DataContext.get_current().enable_progress_bars = False
        for workload in ("sort", "random_shuffle"):
            run(workload, args.rows // 10, args.blocks)  # warm the workers
            walls = [run(workload, args.rows, args.blocks) for _ in range(args.repeat)]
            print(
                f"{workload}: {args.rows:,} rows in {args.blocks} blocks on {args.nodes} nodes: "
                f"median {statistics.median(walls):.2f} s ({', '.join(f'{w:.2f}' for w in walls)})"
            )


if __name__ == "__main__":
    main()
