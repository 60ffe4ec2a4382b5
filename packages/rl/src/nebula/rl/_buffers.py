"""Replay buffers for off-policy algorithms: uniform and prioritized (proportional).

Columns are preallocated numpy arrays filled as a ring, so adding a fragment and sampling a
batch are a few vectorized copies. The prioritized buffer keeps priorities in a sum tree
whose levels are numpy arrays, so sampling a batch walks the tree for all its rows at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ReplayBuffer:
    """Uniform sampling from the last ``capacity`` rows."""

    def __init__(self, capacity: int, seed: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"replay buffer capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.columns: dict[str, np.ndarray] = {}
        self.size = 0
        self.next = 0
        self.rng = np.random.default_rng(seed)
        self.num_added = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Add rows (dict of equal-length columns); the buffer indices they went to."""
        n = len(next(iter(batch.values())))
        if not self.columns:
            for k, v in batch.items():
                self.columns[k] = np.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype)
        idx = (self.next + np.arange(n)) % self.capacity
        for k, v in batch.items():
            self.columns[k][idx] = v[-self.capacity :] if n > self.capacity else v
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        self.num_added += n
        return idx

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=batch_size)
        out = {k: v[idx] for k, v in self.columns.items()}
        out["weights"] = np.ones(batch_size, dtype=np.float32)
        out["batch_indexes"] = idx
        return out

    def update_priorities(self, indexes: np.ndarray, td_errors: np.ndarray) -> None:
        """Uniform sampling ignores priorities."""

    def get_state(self) -> dict[str, Any]:
        return {
            "columns": {
                k: v[: self.size].copy() if self.size < self.capacity else v.copy()
                for k, v in self.columns.items()
            },
            "size": self.size,
            "next": self.next,
            "num_added": self.num_added,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.columns = {}
        cols = state["columns"]
        if cols:
            for k, v in cols.items():
                self.columns[k] = np.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype)
                self.columns[k][: len(v)] = v
        self.size, self.next, self.num_added = state["size"], state["next"], state["num_added"]


class SumTree:
    """Priorities in the leaves of a complete binary tree; each node holds its subtree's sum."""

    def __init__(self, capacity: int) -> None:
        self.leaves = 1
        while self.leaves < capacity:
            self.leaves *= 2
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    def set(self, idx: np.ndarray, values: np.ndarray) -> None:
        nodes = np.asarray(idx) + self.leaves
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes.size and nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf indices where the prefix sums reach ``mass`` (one per entry)."""
        nodes = np.ones(len(mass), dtype=np.int64)
        mass = mass.astype(np.float64).copy()
        while nodes[0] < self.leaves:
            left = 2 * nodes
            go_right = mass > self.tree[left]
            mass = np.where(go_right, mass - self.tree[left], mass)
            nodes = np.where(go_right, left + 1, left)
        return nodes - self.leaves


class PrioritizedReplayBuffer(ReplayBuffer):
    """Samples rows with probability ``priority ** alpha`` and importance weights ``beta``."""

    def __init__(
        self,
        capacity: int,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        seed: int | None = None,
    ) -> None:
        super().__init__(capacity, seed)
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0

    def add(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        idx = super().add(batch)
        self.tree.set(idx, np.full(len(idx), self.max_priority**self.alpha))
        return idx

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        total = self.tree.total
        bounds = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        idx = np.minimum(self.tree.find(bounds), self.size - 1)
        probs = self.tree.tree[idx + self.tree.leaves] / total
        weights = (self.size * np.maximum(probs, 1e-12)) ** (-self.beta)
        weights /= weights.max()
        out = {k: v[idx] for k, v in self.columns.items()}
        out["weights"] = weights.astype(np.float32)
        out["batch_indexes"] = idx
        return out

    def update_priorities(self, indexes: np.ndarray, td_errors: np.ndarray) -> None:
        priorities = np.abs(td_errors) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.set(indexes, priorities**self.alpha)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["priorities"] = self.tree.tree[self.tree.leaves : self.tree.leaves + self.size].copy()
        state["max_priority"] = self.max_priority
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.tree = SumTree(self.capacity)
        if self.size:
            self.tree.set(np.arange(self.size), state["priorities"])
        self.max_priority = state["max_priority"]


_TYPES = {
    "ReplayBuffer": ReplayBuffer,
    "EpisodeReplayBuffer": ReplayBuffer,
    "MultiAgentReplayBuffer": ReplayBuffer,
    "MultiAgentEpisodeReplayBuffer": ReplayBuffer,
    "PrioritizedReplayBuffer": PrioritizedReplayBuffer,
    "PrioritizedEpisodeReplayBuffer": PrioritizedReplayBuffer,
    "MultiAgentPrioritizedReplayBuffer": PrioritizedReplayBuffer,
    "MultiAgentPrioritizedEpisodeReplayBuffer": PrioritizedReplayBuffer,
}


def make_buffer(config: dict[str, Any], seed: int | None = None) -> ReplayBuffer:
    """A buffer from ``replay_buffer_config`` (``type`` a name above or a class)."""
    kind = config.get("type", "PrioritizedEpisodeReplayBuffer")
    capacity = int(config.get("capacity", 50000))
    cls: Any = kind if isinstance(kind, type) else _TYPES.get(kind)
    if cls is None:
        from nebula.rl._settings import ConfigError, closest

        guess = closest(str(kind), _TYPES)
        raise ConfigError(
            f"replay_buffer_config type {kind!r} is unknown"
            + (f"; did you mean {guess!r}?" if guess else f"; use one of {sorted(_TYPES)}")
        )
    if issubclass(cls, PrioritizedReplayBuffer):
        return cls(
            capacity,
            alpha=float(config.get("alpha", 0.6)),
            beta=float(config.get("beta", 0.4)),
            eps=float(config.get("epsilon", 1e-6)),
            seed=seed,
        )
    buffer: ReplayBuffer = cls(capacity, seed=seed)
    return buffer


def check_buffer_config(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "a dict with 'type' and 'capacity'"
    known = {
        "type",
        "capacity",
        "alpha",
        "beta",
        "epsilon",
        "storage_unit",
        "replay_sequence_length",
    }
    unknown = set(value) - known
    if unknown:
        from nebula.rl._settings import closest

        name = sorted(unknown)[0]
        guess = closest(name, known)
        return f"a dict of {sorted(known)}; {name!r} is not one" + (
            f" (did you mean {guess!r}?)" if guess else ""
        )
    return None
