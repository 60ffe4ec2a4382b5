"""The `nebula microbenchmark` subcommand.

Kept apart from the runner so that building the CLI parser imports neither numpy nor the
workloads' remote definitions; they load only when the subcommand actually runs.
"""

from __future__ import annotations

import argparse

HELP = "measure task, actor and object-store throughput (the lines of `ray microbenchmark`)"


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `nebula microbenchmark`."""
    parser.description = (
        "Run Ray's core microbenchmarks against Nebula. Starts a local cluster unless one is "
        "already running in this process, prints one line per workload as it finishes."
    )
    parser.add_argument(
        "--filter",
        metavar="SUBSTRING",
        default=None,
        help="run only the workloads whose name contains SUBSTRING",
    )
    parser.add_argument(
        "--duration",
        metavar="SECONDS",
        type=_positive_float,
        default=2.0,
        help="length of each of the timed trials of a workload (default: 2)",
    )
    parser.add_argument(
        "--num-cpus",
        metavar="N",
        type=int,
        default=None,
        help="CPUs of the local cluster started for the run (default: all of this machine's)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        default=None,
        help='also write the results to PATH as a JSON list of {"name", "rate", "stddev"}',
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from nebula._microbenchmark import run_microbenchmark

    run_microbenchmark(
        name_filter=args.filter,
        duration_s=args.duration,
        num_cpus=args.num_cpus,
        json_path=args.json,
    )
    return 0
