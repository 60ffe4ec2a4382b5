"""Nebula against Dask, Ray Data and one pyarrow process on the workloads users write.

Generates the input once (``--rows`` rows of ``id`` int64, ``x`` and ``y`` float64 and a
``text`` string of about 40 characters, in ``--files`` Parquet files, plus a join's right
side of ``--right-rows`` rows ``id``, ``w``) into a temporary directory, then runs every
workload of ``workload_engines.py`` in every engine, each run in its own process tree and
one after the other, while a thread samples that tree's memory (``memory_sampler.py``).
Every output is checked against the input: row counts, sums of ``id``, of the float
columns' bit patterns and of the text lengths (so every row is there, unchanged), a sort's
order across its files, a groupby's means.

    flock /work/bench.lock python packages/data/benchmarks/bench_workloads.py \\
        --peer-python /work/peers/ray/bin/python --update-readme

``--rows 1000000`` makes a quick run; ``--workloads sort,join`` and ``--engines
nebula,dask`` pick what runs; ``--repeat`` takes the median of several runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from memory_sampler import MemoryPeak, TreeSampler, tagged_pids
from workload_engines import GROUP_KEYS, NEBULA_ONLY, WORKLOADS

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
ENGINES = ("nebula", "dask", "ray", "pyarrow")
PEERS = ("dask", "ray")
TAG_VARIABLE = "BENCH_WORKLOADS_TAG"
BEGIN, END = "<!-- bench_workloads: begin -->", "<!-- bench_workloads: end -->"
FLOATS = ("x", "y", "z", "w")
DESCRIPTIONS = {
    "map_filter": "read -> `map_batches(add z)` -> `map_batches(numpy mask z > 1 on every "
    "column)` -> write, default batch size (whole blocks, as Ray Data 2.60)",
    "map": "read -> `map_batches(add z)` -> write, default batch size",
    "map_filter_1024": "map_filter with `batch_size=1024` on both steps",
    "map_filter_expr": "read -> `map_batches(add z, batch_size=None)` -> "
    "`filter(expr=col('z') > 1)` -> write",
    "groupby": "`map_batches(add k = id % 1000)` -> `groupby('k').mean('x')`",
    "groupby_1m": "`map_batches(add k = id % 1M)` -> `groupby('k').mean('x')`",
    "sort": "`sort('x')` -> write",
    "random_shuffle": "`random_shuffle()` -> write (Dask: `shuffle('id')`)",
    "join": "inner `join` with 1 M rows on `id` -> write",
}


# ---- data and checks ----------------------------------------------------------------------


def random_text(rng: np.random.Generator, rows: int) -> pa.Array:
    """Lowercase strings of 30 to 50 characters (40 on average)."""
    lengths = rng.integers(30, 51, size=rows, dtype=np.int32)
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    chars = rng.integers(ord("a"), ord("z") + 1, size=int(offsets[-1]), dtype=np.uint8)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(chars))


@dataclass(frozen=True)
class Summary:
    """What a set of rows must keep whatever an engine does to their order."""

    rows: int
    id_sum: int
    float_bits: tuple[tuple[str, int], ...]  # per float column, the sum of its bit patterns
    text_chars: int

    @classmethod
    def of(cls, table: pa.Table) -> Summary:
        bits = []
        for name in FLOATS:
            if name in table.column_names:
                values = table[name].to_numpy().astype(np.float64)
                bits.append((name, int(values.view(np.uint64).sum(dtype=np.uint64))))
        text = 0
        if "text" in table.column_names and table.num_rows:
            text = int(pc.sum(pc.utf8_length(table["text"])).as_py())
        ids = int(table["id"].to_numpy().sum(dtype=np.int64)) if table.num_rows else 0
        return cls(table.num_rows, ids, tuple(bits), text)

    def __add__(self, other: Summary) -> Summary:
        if not self.float_bits:
            return other if not self.rows else self
        bits = tuple(
            (name, (a + b) % 2**64)
            for (name, a), (_, b) in zip(self.float_bits, other.float_bits, strict=True)
        )
        return Summary(
            self.rows + other.rows,
            self.id_sum + other.id_sum,
            bits,
            self.text_chars + other.text_chars,
        )


EMPTY = Summary(0, 0, (), 0)


def generate(directory: Path, right: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Write the inputs; returns what each workload's output must hold, and the data's bytes."""
    rng = np.random.default_rng(args.seed)
    wanted = set(args.workloads)
    base, extra = divmod(args.rows, args.files)
    start, data_bytes = 0, 0
    expected: dict[str, Any] = {"map": EMPTY, "map_filter": EMPTY, "all": EMPTY}
    sums = {keys: np.zeros(keys) for keys in GROUP_KEYS.values()}
    counts = {keys: np.zeros(keys) for keys in GROUP_KEYS.values()}
    for index in range(args.files):
        count = base + (1 if index < extra else 0)
        ids = np.arange(start, start + count, dtype=np.int64)
        x, y = rng.standard_normal(count), rng.standard_normal(count)
        table = pa.table({"id": ids, "x": x, "y": y, "text": random_text(rng, count)})
        pq.write_table(table, directory / f"input-{index:05d}.parquet")
        data_bytes += table.nbytes
        expected["all"] += Summary.of(table)
        if wanted & {"map", "map_filter", "map_filter_1024", "map_filter_expr"}:
            mapped = table.append_column("z", pa.array(x * 2.0 + y))
            expected["map"] += Summary.of(mapped)
            expected["map_filter"] += Summary.of(mapped.filter(pc.field("z") > 1.0))
        for name, keys in GROUP_KEYS.items():
            if name in wanted:
                sums[keys] += np.bincount(ids % keys, weights=x, minlength=keys)
                counts[keys] += np.bincount(ids % keys, minlength=keys)
        start += count
    right.mkdir()
    right_ids = np.sort(rng.choice(args.rows, size=min(args.right_rows, args.rows), replace=False))
    w = rng.standard_normal(len(right_ids))
    for index, part in enumerate(np.array_split(np.arange(len(right_ids)), 4)):
        piece = pa.table({"id": right_ids[part], "w": w[part]})
        pq.write_table(piece, right / f"right-{index:05d}.parquet")
    if "join" in wanted:  # reads the whole input: only when a join runs
        joined = pq.read_table(directory).join(pq.read_table(right), "id", join_type="inner")
        expected["join"] = Summary.of(joined)
    for name, keys in GROUP_KEYS.items():
        present = counts[keys] > 0
        expected[name] = (np.flatnonzero(present), sums[keys][present] / counts[keys][present])
    return {"expected": expected, "data_bytes": data_bytes}


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def output_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.parquet"), key=_natural)


def check(workload: str, engine: str, output: Path, expected: dict[str, Any]) -> str:
    """'' when ``output`` holds what ``workload`` must give, else what is wrong."""
    files = output_files(output)
    if workload in GROUP_KEYS:
        table = pq.read_table(files[0]).sort_by("k")
        keys, means = expected[workload]
        got_keys, got_means = table["k"].to_numpy(), table["mean(x)"].to_numpy()
        if not np.array_equal(got_keys, keys) or not np.allclose(got_means, means, rtol=1e-9):
            return f"wrong groups ({len(got_keys)} groups, expected {len(keys)})"
        return ""
    target = {
        "map": "map",
        "map_filter": "map_filter",
        "map_filter_1024": "map_filter",
        "map_filter_expr": "map_filter",
        "join": "join",
    }.get(workload, "all")
    total, previous, ordered, row_groups = EMPTY, -np.inf, True, 0
    for path in files:
        parquet = pq.ParquetFile(path)
        row_groups += parquet.num_row_groups
        table = parquet.read()
        if not table.num_rows:
            continue
        total += Summary.of(table)
        if workload == "sort":
            x = table["x"].to_numpy()
            ordered = ordered and x[0] >= previous and bool(np.all(x[1:] >= x[:-1]))
            previous = x[-1]
    if total != expected[target]:
        return f"wrong rows: {total} != {expected[target]}"
    if workload == "sort" and not ordered:
        return "not sorted"
    if engine == "nebula" and row_groups > 4 * max(len(files), 1) + 64:
        return f"{row_groups} row groups in {len(files)} files"
    return ""


# ---- running ----------------------------------------------------------------------------


@dataclass
class Result:
    engine: str
    workload: str
    walls: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.walls)

    @property
    def wall_s(self) -> float:
        return statistics.median(self.walls) if self.walls else 0.0

    @property
    def cpu_s(self) -> float:
        return statistics.median(self.cpus) if self.cpus else 0.0

    @property
    def peak_bytes(self) -> int:
        return int(statistics.median(self.peaks)) if self.peaks else 0


def run_once(
    engine: str, workload: str, args: argparse.Namespace, paths: dict[str, Path], data_bytes: int
) -> tuple[dict[str, Any], MemoryPeak, str]:
    output = paths["scratch"] / f"out-{engine}-{workload}"
    result_file = output.with_suffix(".json")
    shm_directory = tempfile.mkdtemp(prefix="bench-shm-", dir=args.shm_root)
    python = args.peer_python if engine in PEERS else sys.executable
    command = [
        python,
        str(HERE / "workload_engines.py"),
        engine,
        workload,
        f"--input={paths['input']}",
        f"--right={paths['right']}",
        f"--output={output}",
        f"--result={result_file}",
        f"--cpus={args.cpus}",
    ]
    if engine == "ray":
        command.append(f"--shm-directory={shm_directory}")
    if args.store_fraction and engine in ("nebula", "ray"):
        command.append(f"--object-store-memory={int(data_bytes * args.store_fraction)}")
    tag = uuid.uuid4().hex
    env = dict(os.environ, **{TAG_VARIABLE: tag, "NEBULA_SHM_DIR": shm_directory})
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # imports cost what they cost once installed
    error = ""
    process = subprocess.Popen(
        command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        sampler = TreeSampler(
            process.pid, tag_variable=TAG_VARIABLE, tag=tag, shm_directory=shm_directory
        )
        with sampler:
            try:
                log, _ = process.communicate(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                log, _ = process.communicate()
                log += f"\ntimed out after {args.timeout} s"
        if process.returncode != 0:
            error = log.strip().splitlines()[-1][:200] if log.strip() else "failed"
            print(log[-3000:], file=sys.stderr)
        timings = json.loads(result_file.read_text()) if result_file.exists() else {}
        if not error:
            error = check(workload, engine, output, paths["expected"])  # type: ignore[arg-type]
        return timings, sampler.peak, error
    finally:
        for pid in tagged_pids(TAG_VARIABLE, tag) - {os.getpid()}:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(shm_directory, ignore_errors=True)
        shutil.rmtree(output, ignore_errors=True)
        result_file.unlink(missing_ok=True)


def table(results: dict[tuple[str, str], Result], args: argparse.Namespace) -> str:
    engines = [e for e in ENGINES if e in args.engines]
    header = ["workload"] + [f"{e}: wall s / CPU s / GiB" for e in engines]
    if "dask" in engines and "nebula" in engines:
        header.append("Dask / Nebula")
    if "ray" in engines and "nebula" in engines:
        header.append("Ray / Nebula")
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for workload in args.workloads:
        cells = [DESCRIPTIONS[workload]]
        for engine in engines:
            r = results.get((engine, workload))
            if r is None:
                cells.append("")
            elif not r.ok:
                cells.append(f"failed: {r.error[:60]}")
            else:
                cells.append(f"{r.wall_s:.2f} / {r.cpu_s:.1f} / {r.peak_bytes / 2**30:.2f}")
        nebula = results.get(("nebula", workload))
        for peer in ("dask", "ray"):
            if f"{peer[0].upper()}{peer[1:]} / Nebula" not in header:
                continue
            other = results.get((peer, workload))
            if nebula and other and nebula.ok and other.ok:
                cells.append(f"{other.wall_s / nebula.wall_s:.2f}")
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"{args.rows:,} rows in {args.files} Parquet files, join with {args.right_rows:,} rows; "
        f"{args.cpus} CPUs per engine; median of {args.repeat} run(s) each, every run in a "
        "fresh process tree, wall seconds from building the dataset to the last file "
        "written (cluster start-up excluded); CPU seconds (user + system) of the whole process "
        "tree, imports and start-up included; peak memory (PSS of the process tree plus its "
        f"shared memory). {datetime.date.today().isoformat()}.",
    ]
    return "\n".join(lines)


def update_readme(text: str, workloads: list[str]) -> None:
    """Put the new table between the markers. Lines of workloads this run left out stay
    (when the columns are the same), and the note under the table says which are new."""
    readme = README.read_text()
    if BEGIN not in readme:
        raise SystemExit(f"{README} has no {BEGIN} marker")
    pattern = re.compile(re.escape(BEGIN) + "\n?(.*?)" + re.escape(END), re.DOTALL)
    match = pattern.search(readme)
    old = match.group(1).splitlines() if match else []
    new = text.splitlines()
    left_out = [w for w in WORKLOADS if w not in workloads]
    if old[:2] == new[:2] and left_out:
        kept = {
            w: line
            for line in old[2:]
            for w in left_out
            if line.startswith(f"| {DESCRIPTIONS[w]} |")
        }
        rows = {
            w: line
            for line in new[2:]
            for w in workloads
            if line.startswith(f"| {DESCRIPTIONS[w]} |")
        }
        body = [rows.get(w) or kept.get(w) for w in WORKLOADS]
        note = new[len(new) - 1]
        if kept:
            note += (
                f" Lines from this run: {', '.join(w for w in WORKLOADS if w in rows)}; "
                "the others are from an earlier run."
            )
        text = "\n".join(new[:2] + [line for line in body if line] + ["", note])
    README.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", readme))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=15_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--right-rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--peer-python", default="/work/peers/ray/bin/python")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument(
        "--store-fraction",
        type=float,
        default=None,
        help="object store size for Nebula and Ray as a fraction of the data (default: theirs)",
    )
    parser.add_argument("--scratch", default=None)
    parser.add_argument("--shm-root", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    args.engines = [e for e in args.engines.split(",") if e]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for name, chosen, known in (
        ("engine", args.engines, ENGINES),
        ("workload", args.workloads, WORKLOADS),
    ):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            parser.error(f"unknown {name}(s) {unknown}; choose from {', '.join(known)}")
    return args


def main() -> None:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-workloads-", dir=args.scratch))
    try:
        paths: dict[str, Any] = {
            "scratch": scratch,
            "input": scratch / "input",
            "right": scratch / "right",
        }
        paths["input"].mkdir()
        started = time.perf_counter()
        generated = generate(paths["input"], paths["right"], args)
        paths["expected"] = generated["expected"]
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        results: dict[tuple[str, str], Result] = {}
        for _ in range(args.repeat):
            for workload in args.workloads:
                for engine in args.engines:
                    if engine != "nebula" and workload in NEBULA_ONLY:
                        continue
                    result = results.setdefault((engine, workload), Result(engine, workload))
                    if result.error:
                        continue
                    for _attempt in range(2):  # once more if the cluster failed to start
                        timings, peak, error = run_once(
                            engine, workload, args, paths, generated["data_bytes"]
                        )
                        if "start-up" not in error:
                            break
                    wall = timings.get("wall_s", 0.0)
                    print(
                        f"[{engine} {workload}] {error or 'ok'}: {wall:.2f} s, "
                        f"{peak.cpu_seconds:.1f} CPU s, peak {peak.total / 2**30:.2f} GiB",
                        flush=True,
                    )
                    if error:
                        result.error = error
                    else:
                        result.walls.append(wall)
                        result.peaks.append(peak.total)
                        result.cpus.append(peak.cpu_seconds)
        text = table(results, args)
        print(text)
        if args.update_readme:
            update_readme(text, args.workloads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
