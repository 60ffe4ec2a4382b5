"""The benchmark pipeline, written the idiomatic way in each engine; one engine per process.

Every engine reads the same Parquet files, computes ``z = x * 2 + y`` and
``score = sqrt(|z|) * log1p(y * y)`` with numpy, keeps the rows where ``z > 0`` (about
half) and writes Parquet. ``bench_pipeline.py`` starts this module once per engine, as

    python pipeline_engines.py ENGINE --input DIR --output DIR --result FILE [options]

and measures the process tree's memory from outside; this process reports its timings in
the JSON file ``--result``. Only the engine being run is imported, so the peers (Ray, Dask)
need not be installed where Nebula runs, and the other way round.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

# The filter, as each engine's users write it (reported in the results table).
FILTER_FORMS = {
    "pyarrow": 'table.filter(pc.field("z") > 0)',
    "nebula": 'filter(expr=col("z") > 0)',
    "ray": 'filter(expr=col("z") > 0)',
    "dask": "df[df.z > 0]",
}


def add_columns(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The map step, on a batch in numpy format (a dict of column arrays)."""
    x, y = batch["x"], batch["y"]
    z = x * 2.0 + y
    batch["z"] = z
    batch["score"] = np.sqrt(np.abs(z)) * np.log1p(y * y)
    return batch


def run_pyarrow(args: argparse.Namespace) -> dict[str, Any]:
    """The floor: one process, file after file: read, compute, filter, write."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted(name for name in os.listdir(args.input) if name.endswith(".parquet"))
    os.makedirs(args.output, exist_ok=True)
    pa.array([0.0]).to_numpy()  # pyarrow imports pandas on first use: do it before timing
    start = time.perf_counter()
    for index, name in enumerate(files):
        table = pq.read_table(os.path.join(args.input, name))
        columns = add_columns({"x": table["x"].to_numpy(), "y": table["y"].to_numpy()})
        table = table.append_column("z", pa.array(columns["z"]))
        table = table.append_column("score", pa.array(columns["score"]))
        table = table.filter(pc.field("z") > 0)
        pq.write_table(table, os.path.join(args.output, f"part-{index:05d}.parquet"))
    return {"wall_s": time.perf_counter() - start, "startup_s": 0.0}


def run_nebula(args: argparse.Namespace) -> dict[str, Any]:
    import nebula.data as nd
    from nebula.data.expressions import col

    import nebula

    started = time.perf_counter()
    nebula.init(num_cpus=args.cpus, object_store_memory=args.object_store_memory)
    nd.DataContext.get_current().enable_progress_bars = False
    nd.read_parquet  # noqa: B018 - load the datasets API now, as `import ray.data` does
    startup = time.perf_counter() - started
    start = time.perf_counter()
    (
        nd.read_parquet(args.input)
        .map_batches(add_columns, batch_format="numpy", batch_size=args.batch_size)
        .filter(expr=col("z") > 0)
        .write_parquet(args.output)
    )
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
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    startup = time.perf_counter() - started
    start = time.perf_counter()
    (
        ray.data.read_parquet(args.input)
        .map_batches(add_columns, batch_format="numpy", batch_size=args.batch_size)
        .filter(expr=col("z") > 0)
        .write_parquet(args.output)
    )
    wall = time.perf_counter() - start
    ray.shutdown()
    return {"wall_s": wall, "startup_s": startup}


def run_dask(args: argparse.Namespace) -> dict[str, Any]:
    """Dask dataframe on its default local scheduler (threads, one per CPU)."""
    import dask
    import dask.dataframe as dd

    dask.config.set(scheduler="threads", num_workers=args.cpus)
    start = time.perf_counter()
    df = dd.read_parquet(args.input)
    df = df.assign(z=df.x * 2.0 + df.y)
    df = df.assign(score=np.sqrt(np.abs(df.z)) * np.log1p(df.y * df.y))
    df = df[df.z > 0]
    df.to_parquet(args.output, write_index=False)
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
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--result", required=True, help="where to write the timings (JSON)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--object-store-memory", type=int, default=None)
    parser.add_argument("--shm-directory", default=None, help="Ray's plasma directory")
    args = parser.parse_args()
    result = ENGINES[args.engine](args)
    result["filter"] = FILTER_FORMS[args.engine]
    with open(args.result, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
