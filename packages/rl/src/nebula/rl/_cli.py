"""``nebula rl train`` and ``nebula rl evaluate``."""

from __future__ import annotations

import argparse

HELP = "train and evaluate reinforcement learning algorithms"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    return 0
