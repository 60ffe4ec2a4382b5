"""A tour of nebula.data: read, transform on a pool of actors, join, aggregate, write, and
feed a training loop, on a local cluster (needs ``pip install ./packages/data``)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nebula.data as nd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from nebula.data.aggregate import Count, Mean, Sum
from nebula.data.expressions import col

import nebula


class Scorer:
    """A stand-in for a model: built once per actor, called on batches of numpy arrays."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch["score"] = batch["amount"] * self.weight + batch["user_id"] % 7
        return batch


def write_orders(directory: Path, files: int = 8, rows: int = 25_000) -> None:
    rng = np.random.default_rng(0)
    for index in range(files):
        table = pa.table(
            {
                "order_id": np.arange(index * rows, (index + 1) * rows),
                "user_id": rng.integers(0, 5_000, rows),
                "amount": rng.gamma(2.0, 20.0, rows).round(2),
            }
        )
        pq.write_table(table, directory / f"orders-{index}.parquet")


def main() -> int:
    started = time.perf_counter()
    nebula.init()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "orders").mkdir()
        write_orders(root / "orders")

        orders = nd.read_parquet(root / "orders", file_extensions=["parquet"])
        files = len(list((root / "orders").iterdir()))
        print(f"read:      {orders.count():,} orders in {files} files")
        print(f"plan:\n{orders.filter(expr=col('amount') > 10)}")

        scored = (
            orders.filter(expr=col("amount") > 10)
            .map_batches(Scorer, fn_constructor_args=(0.5,), concurrency=2, batch_size=4096)
            .with_column("big", col("amount") > 100)
        )
        users = nd.from_items(
            [{"user_id": u, "segment": "gold" if u % 10 == 0 else "basic"} for u in range(5_000)]
        )
        joined = scored.join(users, "inner", on="user_id")
        per_segment = joined.groupby("segment").aggregate(Count(), Sum("amount"), Mean("score"))
        for row in per_segment.take_all():
            print(
                f"segment:   {row['segment']:<5}  {row['count()']:>7,} orders  "
                f"{row['sum(amount)']:>12,.2f} total  mean score {row['mean(score)']:.2f}"
            )

        joined.write_parquet(root / "scored")
        written = nd.read_parquet(root / "scored")
        print(f"write:     {written.count():,} rows back from {root.name}/scored")

        train, test = written.select_columns(["amount", "score"]).train_test_split(0.2, seed=0)
        seen = 0
        for batch in train.iter_batches(batch_size=8192, local_shuffle_buffer_size=16_384):
            seen += len(batch["amount"])  # a training step would go here
        print(f"train:     {seen:,} rows in shuffled batches; {test.count():,} held out")
    nebula.shutdown()
    print(f"done in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
