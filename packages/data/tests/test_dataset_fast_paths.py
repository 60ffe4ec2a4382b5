"""The fast paths: Arrow filters, lazily converted numpy batches, writes fused into the
tasks that compute the blocks, every worker busy from the start."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nebula.data as nd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from nebula.data._blocks import from_batch, to_udf_batch
from nebula.data._zero_copy import arrow_from_numpy, arrow_scalar, numpy_view
from nebula.data.expressions import col, lit

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def people() -> nd.Dataset:
    return nd.from_items(
        [
            {"id": 0, "age": 31, "name": "ann"},
            {"id": 1, "age": None, "name": "bob"},
            {"id": 2, "age": 17, "name": None},
            {"id": 3, "age": 45, "name": "cy"},
        ]
    )


def ids(ds: nd.Dataset) -> list[int]:
    return [row["id"] for row in ds.take_all()]


# ---- filter(expr=...) -----------------------------------------------------------------------


def test_filter_expressions_and_strings_keep_the_same_rows() -> None:
    ds = people()
    assert ids(ds.filter(expr=col("age") > 18)) == [0, 3]
    assert ids(ds.filter(expr="age > 18")) == [0, 3]
    assert ids(ds.filter(expr=(col("age") > 18) & (col("name") != lit("cy")))) == [0]
    assert ids(ds.filter(expr="age > 18 and not name == 'cy'")) == [0]
    assert ids(ds.filter(expr="id in (1, 3) or age * 2 < 40")) == [1, 2, 3]
    assert ids(ds.filter(expr=col("name").is_null() | col("age").is_null())) == [1, 2]
    assert ids(ds.filter(expr="0 < id <= 2")) == [1, 2]
    assert ids(ds.filter(expr=pc.field("age") < 40)) == [0, 2]  # pyarrow's own expressions


def test_a_null_condition_drops_the_row_as_in_sql() -> None:
    # Bob's age is null: "age > 18" is null for him, and so is "age > 18 or id > 5".
    assert ids(people().filter(expr="age > 18 or id > 5")) == [0, 3]
    assert ids(people().filter(expr="age > 18 or id == 1")) == [0, 1, 3]


def test_filter_expression_is_named_in_the_plan() -> None:
    ds = people().filter(expr=col("age") > 18)
    assert repr(ds).splitlines()[0] == "Filter((col('age') > 18))"


def test_filter_takes_a_function_or_an_expression() -> None:
    with pytest.raises(ValueError, match="either a function"):
        people().filter()
    with pytest.raises(ValueError, match="not both"):
        people().filter(lambda row: True, expr="id > 0")
    with pytest.raises(TypeError, match="takes a string"):
        people().filter(expr=42)


def test_bad_filter_strings_say_what_is_supported() -> None:
    with pytest.raises(ValueError, match="not a valid expression"):
        people().filter(expr="age >")
    with pytest.raises(ValueError, match="is not supported"):
        people().filter(expr="len(name) > 2")
    with pytest.raises(ValueError, match="needs a list of constants"):
        people().filter(expr="id in other")


def test_unknown_column_in_an_expression_names_the_columns() -> None:
    with pytest.raises(KeyError, match=r"'agee'.*\['id', 'age', 'name'\]"):
        people().filter(expr=col("agee") > 1).take_all()


def test_an_expression_has_no_truth_value() -> None:
    with pytest.raises(TypeError, match="combine conditions with &"):
        bool(col("a") > 1)


# ---- numpy batches ------------------------------------------------------------------------


def add_z(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["z"] = batch["x"] * 2
    return batch


def test_columns_a_udf_does_not_touch_keep_their_arrow_types_and_nulls() -> None:
    table = pa.table(
        {
            "x": pa.array([1.0, 2.0, 3.0]),
            "n": pa.array([1, None, 3], type=pa.int64()),
            "s": pa.array(["a", None, "c"]),
        }
    )
    out = nd.from_arrow(table).map_batches(add_z, batch_format="numpy").to_arrow()
    assert out.schema == pa.schema(
        [("x", pa.float64()), ("n", pa.int64()), ("s", pa.string()), ("z", pa.float64())]
    )
    assert out.column("n").to_pylist() == [1, None, 3]
    assert out.column("s").to_pylist() == ["a", None, "c"]
    assert out.column("z").to_pylist() == [2.0, 4.0, 6.0]


def test_a_numpy_batch_behaves_as_a_dict_of_arrays() -> None:
    table = pa.table({"x": [1.0, 2.0], "s": ["a", "b"]})
    batch = to_udf_batch(table, "numpy")
    assert isinstance(batch, dict)
    assert list(batch) == ["x", "s"] and len(batch) == 2 and "s" in batch
    for copy in (dict(batch), {**batch}, batch.copy(), pickle.loads(pickle.dumps(batch))):
        assert list(copy["s"]) == ["a", "b"] and list(copy["x"]) == [1.0, 2.0]
    assert [list(v) for v in batch.values()] == [[1.0, 2.0], ["a", "b"]]
    assert [name for name, _ in batch.items()] == ["x", "s"]
    assert batch.get("missing", 7) == 7
    assert list(batch.pop("s")) == ["a", "b"] and list(batch) == ["x"]
    assert batch == {"x": batch["x"]}


def test_a_column_changed_in_place_is_converted_back() -> None:
    table = pa.table({"s": ["a", "b"], "n": pa.array([1, None])})

    def shout(batch: dict[str, Any]) -> dict[str, Any]:
        batch["s"][0] = "A"  # an object array the UDF owns: it may change it
        return batch

    out = from_batch(shout(to_udf_batch(table, "numpy")))
    assert out.column("s").to_pylist() == ["A", "b"]
    assert out.column("n").to_pylist() == [1, None]


def test_numbers_cross_between_arrow_and_numpy_as_pyarrow_converts_them() -> None:
    columns = [
        pa.chunked_array([[1.5, 2.5]]),
        pa.chunked_array([[1, 2], [3]]),
        pa.chunked_array([np.arange(10, dtype=np.uint8)]).slice(3, 4),
    ]
    for column in columns:
        view, expected = numpy_view(column), column.to_numpy()
        assert view is not None and view.dtype == expected.dtype
        np.testing.assert_array_equal(view, expected)
        assert view.flags.writeable == expected.flags.writeable  # one chunk: a read-only view
    assert numpy_view(pa.chunked_array([["a"]])) is None
    assert numpy_view(pa.chunked_array([[1, None]])) is None
    for values in [np.arange(5.0), np.arange(10)[::3], np.array([True, False, True])]:
        shared = arrow_from_numpy(values)
        assert shared is not None and shared.equals(pa.array(values))
    assert arrow_from_numpy(np.array([np.nan])).null_count == 0  # type: ignore[union-attr]
    assert arrow_from_numpy(np.array(["a"])) is None
    for value in [1, 2.5, True, "x", b"y", None]:
        assert arrow_scalar(value).equals(pa.scalar(value))


# ---- writes -----------------------------------------------------------------------------------


def test_write_runs_in_the_task_that_computes_the_block(tmp_path: Path) -> None:
    ds = nd.range(30, parallelism=3).map_batches(add_one_id).filter(expr="id <= 5 or id > 20")
    ds.write_parquet(tmp_path)
    assert "MapBatches(add_one_id)->Filter((" in ds.stats()
    assert "->Write:" in ds.stats()
    files = sorted(path.name for path in tmp_path.iterdir())
    assert len(files) == 2  # the middle block kept no row, so wrote no file
    assert [name.split("_")[1] for name in files] == ["000000.parquet", "000002.parquet"]
    back = nd.read_parquet(str(tmp_path)).take_all()
    assert [row["id"] for row in back] == [1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]


def add_one_id(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["id"] = batch["id"] + 1
    return batch


def test_write_after_an_exchange_keeps_the_order(tmp_path: Path) -> None:
    nd.range(40, parallelism=4).sort("id", descending=True).write_parquet(tmp_path)
    table = pq.read_table(tmp_path)
    assert table.column("id").to_pylist() == list(range(39, -1, -1))


# ---- start-up ---------------------------------------------------------------------------------


@nebula.remote(num_cpus=0)
class Arrivals:
    def __init__(self) -> None:
        self.count = 0

    def arrive(self) -> int:
        self.count += 1
        return self.count

    def arrived(self) -> int:
        return self.count


def wait_for_each_other(batch: dict[str, np.ndarray], arrivals: Any) -> dict[str, np.ndarray]:
    nebula.get(arrivals.arrive.remote())
    deadline = time.monotonic() + 30
    while nebula.get(arrivals.arrived.remote()) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the first two tasks did not run at the same time")
        time.sleep(0.01)
    return batch


def test_first_tasks_start_on_every_cpu_at_once() -> None:
    arrivals = Arrivals.remote()  # type: ignore[attr-defined]
    ds = nd.range(4, parallelism=2).map_batches(
        wait_for_each_other, fn_kwargs={"arrivals": arrivals}
    )
    assert sorted(row["id"] for row in ds.take_all()) == [0, 1, 2, 3]
    nebula.kill(arrivals)


# ---- worker processes -------------------------------------------------------------------------


def test_loading_nebula_plugins_does_not_import_pyarrow() -> None:
    code = (
        "import sys\n"
        "from nebula._plugins.manager import get_plugin_manager\n"
        "get_plugin_manager()\n"
        "import nebula.data\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow was imported'\n"
        "nebula.data.range\n"
        "assert 'pyarrow' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


PANDAS_FREE_PIPELINE = """
import sys
import nebula, nebula.data as nd, numpy as np, pyarrow as pa, pyarrow.parquet as pq
from nebula.data.expressions import col

def add_z(batch):
    batch["z"] = batch["x"] * 2.0 + 1
    batch["pandas"] = np.array(["pandas" in sys.modules] * len(batch["x"]))
    return batch

pq.write_table(pa.table({"x": [1.0, -2.0, 3.0], "s": ["a", "b", "c"]}), sys.argv[1] + "/in.parquet")
nebula.init(num_cpus=2)
for run in range(2):  # the second run sees what the first one imported
    ds = nd.read_parquet(sys.argv[1] + "/in.parquet").map_batches(add_z, batch_format="numpy")
    ds.filter(expr=(col("z") > 0) & (col("s") != "b")).write_parquet(sys.argv[1] + f"/out{run}")
assert pq.read_table(sys.argv[1] + "/out1").column("pandas").to_pylist() == [False, False]

def add_k(batch):
    batch["k"] = batch["id"] % 3
    batch["pandas"] = np.array(["pandas" in sys.modules] * len(batch["id"]))
    return batch

counts = nd.range(1000, override_num_blocks=4).map_batches(add_k).groupby("k").count()
assert sorted(row["count()"] for row in counts.take_all()) == [333, 333, 334]
marks = nd.range(1000, override_num_blocks=4).map_batches(add_k).take_all()
assert not any(row["pandas"] for row in marks)
nebula.shutdown()
"""


def test_a_numpy_pipeline_does_not_import_pandas_in_workers(tmp_path: Path) -> None:
    # Importing pandas costs every worker a fifth of a second and tens of MiB.
    code = PANDAS_FREE_PIPELINE
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool is chosen on Linux")
def test_workers_allocate_arrow_memory_from_mimalloc() -> None:
    def pool(batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        return {"pool": [pa.default_memory_pool().backend_name]}

    assert nd.range(1).map_batches(pool).take_all() == [{"pool": "mimalloc"}]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool is chosen on Linux")
def test_workers_return_what_arrow_freed_within_half_a_second() -> None:
    # mimalloc's own delay is a second: a worker held the memory of several tasks at once.
    def resident_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def held_then_left(batch: dict[str, np.ndarray]) -> dict[str, list[float]]:
        one_mib = pa.array(np.ones(1 << 17))
        before = resident_mib()
        arrays = [pc.add(one_mib, i) for i in range(300)]  # 300 MiB from Arrow's pool
        held = resident_mib() - before
        del arrays
        freed_at = time.monotonic()
        while time.monotonic() - freed_at < 0.5:
            pc.add(one_mib, 1)  # mimalloc hands memory back when it is next called
            time.sleep(0.05)
        return {"held": [held], "left": [resident_mib() - before]}

    [row] = nd.range(1).map_batches(held_then_left).take_all()
    assert row["held"] > 200
    assert row["left"] < row["held"] / 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is tuned")
def test_workers_reuse_the_memory_numpy_freed() -> None:
    # Without it, each task faults in every page of its few-MiB numpy arrays again.
    def faults(batch: dict[str, np.ndarray]) -> dict[str, list[int]]:
        import resource

        np.ones(2 << 20).sum()  # 16 MiB, allocated and freed
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        np.ones(2 << 20).sum()
        return {"faults": [resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before]}

    [row] = nd.range(1).map_batches(faults).take_all()
    assert row["faults"] < 200  # mapped afresh, it takes 500 (huge pages) to 4,096
