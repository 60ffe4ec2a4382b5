"""The workloads of ``bench_workloads.py``, written as each engine's users write them.

One engine and one workload per process:

    python workload_engines.py ENGINE WORKLOAD --input DIR --right DIR --output DIR \\
        --result FILE [--cpus N] [--object-store-memory BYTES]

Nebula and Ray Data run the same code with default settings (default batch size, numpy
batches); Dask runs its dataframe API on its default threaded scheduler; ``pyarrow`` is one
plain process doing the same work file by file (or on the whole table where a workload
needs all rows at once). Every workload ends in Parquet files under ``--output`` (a
groupby's small result is written by the driver), which ``bench_workloads.py`` checks.
Only the engine being run is imported, so the peers need not be installed where Nebula
runs, and the other way round.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

WORKLOADS = (
    "map_filter",  # map_batches(add z) -> map_batches(numpy mask over every column) -> write
    "map",  # map_batches(add z) -> write
    "map_filter_1024",  # map_filter with batch_size=1024 on both steps
    "map_filter_expr",  # map_batches(add z, batch_size=None) -> filter(expr=z > 1) -> write
    "groupby",  # groupby(id % 1000).mean("x")
    "groupby_1m",  # groupby(id % 1_000_000).mean("x")
    "sort",  # sort("x") -> write
    "random_shuffle",  # random_shuffle() -> write
    "join",  # inner join with 1 M rows on id -> write
)
NEBULA_ONLY = ("map_filter_1024", "map_filter_expr")
GROUP_KEYS = {"groupby": 1000, "groupby_1m": 1_000_000}


def add_z(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["z"] = batch["x"] * 2.0 + batch["y"]
    return batch


def keep_z_above_1(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    mask = batch["z"] > 1.0
    return {name: column[mask] for name, column in batch.items()}


def key_adder(keys: int) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    def add_k(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch["k"] = batch["id"] % keys
        return batch

    return add_k


def write_small(frame: Any, output: str) -> None:
    """A groupby's result (a pandas frame with columns k, mean(x)), as one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(output, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f"{output}/result.parquet")


# ---- Nebula and Ray Data: the same user code ----------------------------------------------


def run_dataset_api(data: Any, col: Any, args: argparse.Namespace) -> None:
    """The workload in Ray Data's API (``data`` is ``nebula.data`` or ``ray.data``)."""
    w = args.workload
    ds = data.read_parquet(args.input)
    if w in ("map_filter", "map"):
        ds = ds.map_batches(add_z, batch_format="numpy")
        if w == "map_filter":
            ds = ds.map_batches(keep_z_above_1, batch_format="numpy")
        ds.write_parquet(args.output)
    elif w == "map_filter_1024":
        ds = ds.map_batches(add_z, batch_format="numpy", batch_size=1024)
        ds.map_batches(keep_z_above_1, batch_format="numpy", batch_size=1024).write_parquet(
            args.output
        )
    elif w == "map_filter_expr":
        ds = ds.map_batches(add_z, batch_format="numpy", batch_size=None)
        ds.filter(expr=col("z") > 1.0).write_parquet(args.output)
    elif w in GROUP_KEYS:
        ds = ds.map_batches(key_adder(GROUP_KEYS[w]), batch_format="numpy")
        write_small(ds.groupby("k").mean("x").to_pandas(), args.output)
    elif w == "sort":
        ds.sort("x").write_parquet(args.output)
    elif w == "random_shuffle":
        ds.random_shuffle().write_parquet(args.output)
    elif w == "join":
        right = data.read_parquet(args.right)
        ds.join(right, join_type="inner", num_partitions=args.cpus * 8, on=("id",)).write_parquet(
            args.output
        )
    else:
        raise SystemExit(f"unknown workload {w}")


def run_nebula(args: argparse.Namespace) -> dict[str, Any]:
    import nebula.data as nd
    from nebula.data.expressions import col

    import nebula

    started = time.perf_counter()
    nebula.init(num_cpus=args.cpus, object_store_memory=args.object_store_memory)
    nd.DataContext.get_current().enable_progress_bars = False
    startup = time.perf_counter() - started
    start = time.perf_counter()
    run_dataset_api(nd, col, args)
    wall = time.perf_counter() - start
    nebula.shutdown()
    return {"wall_s": wall, "startup_s": startup}


def run_ray(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    import ray.data
    from ray.data.expressions import col

    started = time.perf_counter()
    init: dict[str, Any] = {"num_cpus": args.cpus, "log_to_driver": False}
    if args.object_store_memory:
        init["object_store_memory"] = args.object_store_memory
    if args.shm_directory:
        init["_plasma_directory"] = args.shm_directory
    ray.init(**init)
    ray.data.DataContext.get_current().enable_progress_bars = False
    startup = time.perf_counter() - started
    start = time.perf_counter()
    run_dataset_api(ray.data, col, args)
    wall = time.perf_counter() - start
    ray.shutdown()
    return {"wall_s": wall, "startup_s": startup}


# ---- Dask ----------------------------------------------------------------------------------


def run_dask(args: argparse.Namespace) -> dict[str, Any]:
    """Dask dataframe on its default local scheduler (threads, one per CPU)."""
    import dask
    import dask.dataframe as dd

    dask.config.set(scheduler="threads", num_workers=args.cpus)
    w = args.workload
    start = time.perf_counter()
    df = dd.read_parquet(args.input)
    if w in ("map_filter", "map"):
        df = df.assign(z=df.x * 2.0 + df.y)
        if w == "map_filter":
            df = df[df.z > 1.0]
        df.to_parquet(args.output, write_index=False)
    elif w in GROUP_KEYS:
        df = df.assign(k=df.id % GROUP_KEYS[w])
        frame = df.groupby("k").x.mean().compute()
        write_small(frame.rename("mean(x)").reset_index(), args.output)
    elif w == "sort":
        df.sort_values("x").to_parquet(args.output, write_index=False)
    elif w == "random_shuffle":
        df.shuffle("id").to_parquet(args.output, write_index=False)
    elif w == "join":
        right = dd.read_parquet(args.right)
        df.merge(right, on="id", how="inner").to_parquet(args.output, write_index=False)
    return {"wall_s": time.perf_counter() - start, "startup_s": 0.0}


# ---- one pyarrow process -------------------------------------------------------------------


def run_pyarrow(args: argparse.Namespace) -> dict[str, Any]:
    """The floor: one process, file by file where the workload allows, else whole tables."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted(f"{args.input}/{n}" for n in os.listdir(args.input) if n.endswith(".parquet"))
    os.makedirs(args.output, exist_ok=True)
    pa.array([0.0]).to_numpy()  # pyarrow imports pandas on first use: do it before timing
    w = args.workload
    start = time.perf_counter()

    def write_chunks(table: pa.Table) -> None:
        step = -(-table.num_rows // len(files))
        for index in range(len(files)):
            pq.write_table(
                table.slice(index * step, step), f"{args.output}/part-{index:05d}.parquet"
            )

    if w in ("map_filter", "map"):
        for index, path in enumerate(files):
            table = pq.read_table(path)
            z = table["x"].to_numpy() * 2.0 + table["y"].to_numpy()
            table = table.append_column("z", pa.array(z))
            if w == "map_filter":
                table = table.filter(pc.field("z") > 1.0)
            pq.write_table(table, f"{args.output}/part-{index:05d}.parquet")
    elif w in GROUP_KEYS:
        table = pq.read_table(files, columns=["id", "x"])
        table = table.append_column("k", pc.remainder(table["id"], GROUP_KEYS[w]))
        result = table.group_by("k").aggregate([("x", "mean")]).rename_columns(["k", "mean(x)"])
        pq.write_table(result, f"{args.output}/result.parquet")
    elif w == "sort":
        write_chunks(pq.read_table(files).sort_by("x"))
    elif w == "random_shuffle":
        table = pq.read_table(files)
        write_chunks(table.take(np.random.default_rng().permutation(table.num_rows)))
    elif w == "join":
        right = pq.read_table(args.right)
        write_chunks(pq.read_table(files).join(right, "id", join_type="inner"))
    return {"wall_s": time.perf_counter() - start, "startup_s": 0.0}


ENGINES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "pyarrow": run_pyarrow,
    "nebula": run_nebula,
    "ray": run_ray,
    "dask": run_dask,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--input", required=True)
    parser.add_argument("--right", required=True, help="the join's right side")
    parser.add_argument("--output", required=True)
    parser.add_argument("--result", required=True, help="where to write the timings (JSON)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--object-store-memory", type=int, default=None)
    parser.add_argument("--shm-directory", default=None, help="Ray's plasma directory")
    args = parser.parse_args()
    result = ENGINES[args.engine](args)
    with open(args.result, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
