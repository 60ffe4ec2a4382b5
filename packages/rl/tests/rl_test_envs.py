"""Small envs the tests train on or break on purpose."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from nebula.rl.env.multi_agent_env import MultiAgentEnv


class MatchTarget(MultiAgentEnv):
    """Two agents each see a one-hot target out of three and score 1 for naming it (10 steps)."""

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        self.possible_agents = ["a0", "a1"]
        self.agents = list(self.possible_agents)
        self.observation_spaces = {
            a: gym.spaces.Box(0.0, 1.0, (3,), np.float32) for a in self.agents
        }
        self.action_spaces = {a: gym.spaces.Discrete(3) for a in self.agents}
        self.rng = np.random.default_rng(0)
        self.t = 0

    def _observe(self) -> dict[str, np.ndarray]:
        self.targets = {a: int(self.rng.integers(3)) for a in self.agents}
        return {a: np.eye(3, dtype=np.float32)[t] for a, t in self.targets.items()}

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        return self._observe(), {}

    def step(self, actions: dict[str, Any]) -> tuple[dict, ...]:
        rewards = {a: float(actions[a] == self.targets[a]) for a in actions}
        self.t += 1
        over = self.t >= 10
        return self._observe(), rewards, {"__all__": over}, {"__all__": False}, {}


class CrashOnce(gym.Wrapper):
    """CartPole whose first copy in env runner 1 raises once, on its 20th step.

    The marker file makes the crash happen once across processes: the replacement runner
    (a new process) finds it and runs normally.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.marker = config["marker"]
        self.armed = config.worker_index == 1 and config.vector_index == 0
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.armed and self.steps == 20 and not os.path.exists(self.marker):
            with open(self.marker, "w") as f:
                f.write("crashed")
            raise RuntimeError("the simulator crashed")
        return self.env.step(action)
