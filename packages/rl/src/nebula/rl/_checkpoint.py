"""Checkpoint files: the algorithm's state in one directory, written atomically."""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import torch

STATE_FILE = "algorithm_state.pkl"
LEARNER_FILE = "learner_state.pt"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint directory."""

    path: str

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def as_directory(self) -> str:
        return self.path


@dataclass(frozen=True)
class SaveResult:
    """What ``Algorithm.save()`` returns: ``.checkpoint.path`` says where it went."""

    checkpoint: Checkpoint
    metrics: dict[str, Any] = field(default_factory=dict)

    def __fspath__(self) -> str:
        return self.checkpoint.path

    def __str__(self) -> str:
        return self.checkpoint.path


def to_path(checkpoint: Any) -> str:
    if isinstance(checkpoint, SaveResult):
        return checkpoint.checkpoint.path
    if hasattr(checkpoint, "checkpoint") and hasattr(checkpoint.checkpoint, "path"):
        return str(checkpoint.checkpoint.path)
    if hasattr(checkpoint, "path") and not isinstance(checkpoint, (str, os.PathLike)):
        return str(checkpoint.path)
    return os.fspath(checkpoint)


def default_path(algo: Any) -> str:
    env = algo.config.env if isinstance(algo.config.env, str) else "env"
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    root = os.path.join(
        os.path.expanduser("~"), "nebula_results", f"{type(algo).__name__}_{env}_{stamp}"
    )
    return os.path.join(root, f"checkpoint_{algo.iteration:06d}")


def _atomic(path: str, dump: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix="tmp-", suffix=".part", dir=os.path.dirname(path))
    os.close(fd)
    try:
        dump(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(path: str, state: dict[str, Any]) -> None:
    """Write ``state`` into directory ``path`` (created if missing; other files are kept)."""
    os.makedirs(path, exist_ok=True)
    learner = state["learner"]
    rest = {k: v for k, v in state.items() if k != "learner"}

    def dump_state(tmp: str) -> None:
        with open(tmp, "wb") as f:
            cloudpickle.dump(rest, f)

    _atomic(os.path.join(path, LEARNER_FILE), lambda tmp: torch.save(learner, tmp))
    _atomic(os.path.join(path, STATE_FILE), dump_state)


def read(path: str) -> dict[str, Any]:
    state_file = os.path.join(path, STATE_FILE)
    if not os.path.exists(state_file):
        raise FileNotFoundError(f"{path} is not an algorithm checkpoint (no {STATE_FILE} in it)")
    with open(state_file, "rb") as f:
        state: dict[str, Any] = cloudpickle.load(f)
    state["learner"] = torch.load(os.path.join(path, LEARNER_FILE), weights_only=False)
    return state
