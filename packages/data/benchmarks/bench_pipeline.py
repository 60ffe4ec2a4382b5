"""Read Parquet -> map_batches (numpy) -> filter -> write Parquet, engine against engine.

Generates the input once (``--rows`` rows of ``id`` int64, ``x`` and ``y`` float64 and a
``text`` string of about 40 characters, in ``--files`` Parquet files) into a temporary
directory, then runs the pipeline of ``pipeline_engines.py`` ``--repeat`` times per engine
(round-robin), each run in its own process tree, while a thread samples that tree's memory
every 50 ms (``memory_sampler.py``); the table reports medians.
Every engine must write the same rows: the row count, the sum of ``id`` and an
order-independent checksum of ``z``'s bits are checked against the input. Prints a Markdown
table and, with ``--update-readme``, puts it in ``packages/data/README.md``.

    python packages/data/benchmarks/bench_pipeline.py --rows 15000000 \\
        --peer-python /work/benchenv/bin/python --update-readme

Engines: ``pyarrow`` (a plain single-process loop, the floor), ``dask``, ``nebula``,
``nebula-small-store`` (Nebula with an object store a tenth of the data's size) and ``ray``.
Nebula runs under this interpreter; Ray and Dask under ``--peer-python`` (a separate
environment, so they never become Nebula's dependencies).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
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
import pyarrow.parquet as pq
from memory_sampler import MemoryPeak, TreeSampler, tagged_pids

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
ENGINES = ("pyarrow", "dask", "nebula", "nebula-small-store", "ray")
PEERS = ("dask", "ray")
TAG_VARIABLE = "BENCH_PIPELINE_TAG"
BEGIN, END = "<!-- bench_pipeline: begin -->", "<!-- bench_pipeline: end -->"


@dataclass(frozen=True)
class Checksum:
    rows: int
    id_sum: int
    z_bits: int  # the sum of z's float64 bit patterns, modulo 2**64

    @classmethod
    def of(cls, ids: np.ndarray, z: np.ndarray) -> Checksum:
        bits = int(z.astype(np.float64).view(np.uint64).sum(dtype=np.uint64))
        return cls(len(ids), int(ids.sum(dtype=np.int64)), bits)

    def __add__(self, other: Checksum) -> Checksum:
        bits = (self.z_bits + other.z_bits) % 2**64
        return Checksum(self.rows + other.rows, self.id_sum + other.id_sum, bits)


def random_text(rng: np.random.Generator, rows: int) -> pa.Array:
    """Lowercase strings of 30 to 50 characters (40 on average)."""
    lengths = rng.integers(30, 51, size=rows, dtype=np.int32)
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    chars = rng.integers(ord("a"), ord("z") + 1, size=int(offsets[-1]), dtype=np.uint8)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(chars))


def generate(directory: Path, rows: int, files: int, seed: int) -> tuple[Checksum, int]:
    """Write the input files; returns the expected output checksum and the data's bytes."""
    rng = np.random.default_rng(seed)
    expected = Checksum(0, 0, 0)
    data_bytes = 0
    base, extra = divmod(rows, files)
    start = 0
    for index in range(files):
        count = base + (1 if index < extra else 0)
        ids = np.arange(start, start + count, dtype=np.int64)
        x, y = rng.standard_normal(count), rng.standard_normal(count)
        table = pa.table({"id": ids, "x": x, "y": y, "text": random_text(rng, count)})
        pq.write_table(table, directory / f"input-{index:05d}.parquet")
        z = x * 2.0 + y
        keep = z > 0
        expected = expected + Checksum.of(ids[keep], z[keep])
        data_bytes += table.nbytes
        start += count
    return expected, data_bytes


def checksum_output(directory: Path) -> Checksum:
    total = Checksum(0, 0, 0)
    for path in sorted(directory.rglob("*.parquet")):
        table = pq.read_table(path, columns=["id", "z"])
        if table.num_rows:
            total = total + Checksum.of(table["id"].to_numpy(), table["z"].to_numpy())
    return total


@dataclass
class Result:
    """One engine's runs: wall times (median reported) and the largest peak memory."""

    engine: str
    rows: int
    filter: str = ""
    walls: list[float] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    peak_shared_bytes: int = 0  # the shared part of the largest peak
    cpu_seconds: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.walls)

    @property
    def wall_s(self) -> float:
        return statistics.median(self.walls) if self.walls else 0.0

    @property
    def startup_s(self) -> float:
        return statistics.median(self.startups) if self.startups else 0.0

    @property
    def peak_bytes(self) -> int:
        return int(statistics.median(self.peaks)) if self.peaks else 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s else 0.0


def run_engine(
    engine: str, args: argparse.Namespace, input_dir: Path, output: Path, data_bytes: int
) -> tuple[dict[str, Any], MemoryPeak, str]:
    """Run one engine once in its own process tree: its timings, peak memory and error."""
    result_file = output.with_suffix(".json")
    shm_directory = tempfile.mkdtemp(prefix="bench-shm-", dir=args.shm_root)
    python = args.peer_python if engine in PEERS else sys.executable
    command = [
        python,
        str(HERE / "pipeline_engines.py"),
        "nebula" if engine.startswith("nebula") else engine,
        f"--input={input_dir}",
        f"--output={output}",
        f"--result={result_file}",
        f"--cpus={args.cpus}",
    ]
    if args.batch_size is not None:
        command.append(f"--batch-size={args.batch_size}")
    if engine == "nebula-small-store":
        command.append(f"--object-store-memory={data_bytes // 10}")
    if engine == "ray":
        command.append(f"--shm-directory={shm_directory}")
    tag = uuid.uuid4().hex
    env = dict(os.environ, **{TAG_VARIABLE: tag, "NEBULA_SHM_DIR": shm_directory})
    error = ""
    # The engine's output is shown only if it fails (Ray logs warnings on stdout).
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
            error = log.strip().splitlines()[-1] if log.strip() else "failed"
            print(log, file=sys.stderr)
        timings = json.loads(result_file.read_text()) if result_file.exists() else {}
        return timings, sampler.peak, error
    finally:
        _kill_tree(tag)
        shutil.rmtree(shm_directory, ignore_errors=True)


def record_run(
    result: Result,
    run: int,
    args: argparse.Namespace,
    scratch: Path,
    input_dir: Path,
    expected: Checksum,
    data_bytes: int,
) -> None:
    """Run ``result.engine`` once, check its output and add the run to ``result``."""
    if result.error:
        return
    output = scratch / f"out-{result.engine}"
    timings, peak, error = run_engine(result.engine, args, input_dir, output, data_bytes)
    if not error:
        got = checksum_output(output)
        if got != expected:
            error = f"wrong output {got} != {expected}"
    shutil.rmtree(output, ignore_errors=True)
    output.with_suffix(".json").unlink(missing_ok=True)
    wall = timings.get("wall_s", 0.0)
    print(
        f"[{result.engine} #{run + 1}] {error or 'ok'}: {wall:.2f} s, "
        f"{args.rows / wall / 1e6 if wall else 0:.2f} M rows/s, peak {peak.total / 2**30:.2f} "
        f"GiB ({peak.processes} processes, {peak.shared / 2**20:.0f} MiB shared), "
        f"{peak.cpu_seconds:.1f} CPU s",
        flush=True,
    )
    if error:
        result.error = error
        return
    result.filter = timings.get("filter", "")
    result.walls.append(wall)
    result.startups.append(timings.get("startup_s", 0.0))
    result.cpu_seconds.append(peak.cpu_seconds)
    if peak.total > max(result.peaks, default=0):
        result.peak_shared_bytes = peak.shared
    result.peaks.append(peak.total)


def _kill_tree(tag: str) -> None:
    """Stop whatever the engine left running (its own processes, found by their tag)."""
    for pid in tagged_pids(TAG_VARIABLE, tag) - {os.getpid()}:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB RAM"


def table(results: list[Result], args: argparse.Namespace, data_bytes: int) -> str:
    today = datetime.date.today().isoformat()
    where = machine()
    lines = [
        "| engine | filter | rows/s | wall s | peak memory | CPU s | machine | date |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        rate = f"{r.rows_per_s / 1e6:.2f} M" if r.ok else f"failed: {r.error}"
        wall = f"{r.wall_s:.2f} ({min(r.walls):.2f}-{max(r.walls):.2f})" if r.ok else "-"
        cpu = f"{statistics.median(r.cpu_seconds):.1f}" if r.ok else "-"
        peak = f"{r.peak_bytes / 2**30:.2f} GiB" if r.ok else "-"
        if r.ok and len(r.peaks) > 1:
            peak += f" ({min(r.peaks) / 2**30:.2f}-{max(r.peaks) / 2**30:.2f})"
        lines.append(
            f"| {r.engine} | `{r.filter}` | {rate} | {wall} | {peak} | {cpu} | {where} | {today} |"
        )
    startups = ", ".join(f"{r.engine} {r.startup_s:.1f} s" for r in results if r.startup_s)
    shared = ", ".join(f"{r.engine} {r.peak_shared_bytes / 2**20:.0f} MiB" for r in results)
    lines += [
        "",
        f"{args.rows:,} rows ({data_bytes / 2**30:.2f} GiB in Arrow) in {args.files} Parquet "
        f"files; {args.cpus} CPUs per engine; map_batches batch_size={args.batch_size}. "
        f"Each engine ran {args.repeat} times, round-robin, each run in a fresh process tree: "
        "wall s is the median (and the range) from building the pipeline to the last file "
        f"written, cluster start-up excluded ({startups or 'none'}); rows/s is input rows "
        "over the median. Peak memory is the median (and the range) over the runs of the "
        "largest sum, sampled every 50 ms, of the process tree's private and file-backed PSS "
        f"plus its shared memory (shared memory at the largest peak: {shared}). CPU s is the "
        "median CPU time (user + system) of the whole process tree, start-up and imports "
        "included.",
    ]
    return "\n".join(lines)


def update_readme(text: str) -> None:
    readme = README.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN not in readme:
        raise SystemExit(f"{README} has no {BEGIN} marker; add one under its Performance heading.")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    README.write_text(pattern.sub(lambda _: block, readme))


def parse_args() -> argparse.Namespace:
    default_peer = "/work/benchenv/bin/python"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=15_000_000)
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated, from {', '.join(ENGINES)}",
    )
    parser.add_argument(
        "--peer-python",
        default=default_peer if os.path.exists(default_peer) else sys.executable,
        help="the interpreter with Ray Data and Dask installed",
    )
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="map_batches batch size for Nebula and Ray (default: one batch per block)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine (median wall)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per engine")
    parser.add_argument("--scratch", default=None, help="where the temporary data goes")
    parser.add_argument("--shm-root", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    args.engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    return args


def main() -> None:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir=args.scratch))
    try:
        input_dir = scratch / "input"
        input_dir.mkdir()
        started = time.perf_counter()
        expected, data_bytes = generate(input_dir, args.rows, args.files, args.seed)
        print(
            f"generated {args.rows:,} rows ({data_bytes / 2**30:.2f} GiB) in {args.files} files "
            f"in {time.perf_counter() - started:.1f} s; expecting {expected.rows:,} rows out",
            flush=True,
        )
        results = {engine: Result(engine, args.rows) for engine in args.engines}
        for run in range(args.repeat):
            for engine in args.engines:  # round-robin, so a noisy minute hits every engine
                record_run(results[engine], run, args, scratch, input_dir, expected, data_bytes)
        text = table(list(results.values()), args, data_bytes)
        print(text)
        if args.update_readme:
            update_readme(text)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
