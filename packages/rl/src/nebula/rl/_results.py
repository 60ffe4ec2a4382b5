"""Result dicts laid out as scripts read them (``result["env_runners"]["episode_return_mean"]``)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from nebula.rl._env_runner import SampleResult

ALL_MODULES = "__all_modules__"


def _stats(values: Any, prefix: str) -> dict[str, float]:
    values = list(values)
    if not values:
        return {f"{prefix}_mean": math.nan, f"{prefix}_max": math.nan, f"{prefix}_min": math.nan}
    return {
        f"{prefix}_mean": float(np.mean(values)),
        f"{prefix}_max": float(np.max(values)),
        f"{prefix}_min": float(np.min(values)),
    }


class EpisodeWindow:
    """The last ``size`` finished episodes, over which returns and lengths are averaged."""

    def __init__(self, size: int) -> None:
        self.returns: deque[float] = deque(maxlen=size)
        self.lengths: deque[int] = deque(maxlen=size)
        self.module_returns: dict[str, deque[float]] = {}
        self.size = size

    def add(self, result: SampleResult) -> None:
        self.returns.extend(result.episode_returns)
        self.lengths.extend(result.episode_lengths)
        for mid, values in result.module_returns.items():
            self.module_returns.setdefault(mid, deque(maxlen=self.size)).extend(values)

    def env_runner_metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out.update(_stats(self.returns, "episode_return"))
        out.update(_stats(self.lengths, "episode_len"))
        if self.module_returns:
            out["module_episode_returns_mean"] = {
                mid: float(np.mean(v)) if v else math.nan for mid, v in self.module_returns.items()
            }
        return out

    def get_state(self) -> dict[str, Any]:
        return {
            "returns": list(self.returns),
            "lengths": list(self.lengths),
            "module_returns": {k: list(v) for k, v in self.module_returns.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.returns.clear()
        self.returns.extend(state["returns"])
        self.lengths.clear()
        self.lengths.extend(state["lengths"])
        self.module_returns = {
            k: deque(v, maxlen=self.size) for k, v in state.get("module_returns", {}).items()
        }


def evaluation_metrics(results: list[SampleResult]) -> dict[str, Any]:
    returns = [r for res in results for r in res.episode_returns]
    lengths = [n for res in results for n in res.episode_lengths]
    out: dict[str, Any] = {}
    out.update(_stats(returns, "episode_return"))
    out.update(_stats(lengths, "episode_len"))
    out["num_episodes"] = len(returns)
    out["num_env_steps_sampled"] = int(sum(res.env_steps for res in results))
    module_returns: dict[str, list[float]] = {}
    for res in results:
        for mid, values in res.module_returns.items():
            module_returns.setdefault(mid, []).extend(values)
    if module_returns:
        out["module_episode_returns_mean"] = {
            mid: float(np.mean(v)) for mid, v in module_returns.items()
        }
    return out
