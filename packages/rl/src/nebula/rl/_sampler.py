"""Stepping a vectorized env with a policy: the pure part of an env runner.

The sampler keeps the envs' current observations and the running returns of unfinished
episodes between calls, so consecutive fragments continue the same episodes. A step is one
batched policy call for all envs; the fragment comes back time-major (``[T, num_envs]``)
as numpy arrays, and the algorithm's policy turns it into the compact batch it trains on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from nebula.rl._envs import flatten_obs


@dataclass
class Fragment:
    """``T`` steps of ``N`` envs. Where an episode was truncated at step ``t`` in env ``n``,
    ``final_obs[(t, n)]`` holds its last observation (the env already reset in ``obs[t+1]``)."""

    obs: np.ndarray  # [T, N, D]
    actions: np.ndarray  # [T, N, ...]
    rewards: np.ndarray  # [T, N]
    terminateds: np.ndarray  # [T, N] bool
    truncateds: np.ndarray  # [T, N] bool
    extras: dict[str, np.ndarray]  # [T, N, ...] each
    next_obs: np.ndarray  # [N, D]: the observation after the last step
    final_obs: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


@dataclass
class EpisodeStats:
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    module_returns: dict[str, list[float]] = field(default_factory=dict)

    def extend(self, other: EpisodeStats) -> None:
        self.returns.extend(other.returns)
        self.lengths.extend(other.lengths)


class RolloutPolicy(Protocol):
    """What an algorithm gives its env runners: acting, and turning fragments into batches."""

    def load(self, state: dict[str, Any]) -> None: ...

    def act(
        self, obs: np.ndarray, explore: bool, timestep: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...

    def to_env_actions(self, actions: np.ndarray) -> np.ndarray: ...

    def finish(self, fragment: Fragment) -> dict[str, Any]: ...


def clip_reward(rewards: np.ndarray, clip: Any) -> np.ndarray:
    if clip is None or clip is False:
        return rewards
    if clip is True:
        return np.sign(rewards)
    return np.clip(rewards, -float(clip), float(clip))


class VectorSampler:
    """Steps ``env`` (a gymnasium vector env resetting done envs in the same step)."""

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        policy: RolloutPolicy,
        seed: int | None = None,
        clip_rewards: Any = None,
    ) -> None:
        self.env = env
        self.policy = policy
        self.clip_rewards = clip_rewards
        self.obs_space = env.single_observation_space
        self.num_envs = env.num_envs
        self._seed = seed
        self._reset(seed)

    def _reset(self, seed: int | None) -> None:
        obs, _ = self.env.reset(seed=seed)
        self.obs = flatten_obs(self.obs_space, obs)
        self.ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self.ep_len = np.zeros(self.num_envs, dtype=np.int64)

    def _step(
        self, explore: bool, timestep: int, stats: EpisodeStats
    ) -> tuple[
        np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, Any
    ]:
        actions, extras = self.policy.act(self.obs, explore, timestep)
        next_obs, rewards, terms, truncs, info = self.env.step(self.policy.to_env_actions(actions))
        rewards = np.asarray(rewards, dtype=np.float64)
        self.ep_return += rewards
        self.ep_len += 1
        done = np.logical_or(terms, truncs)
        if done.any():
            for n in np.flatnonzero(done):
                stats.returns.append(float(self.ep_return[n]))
                stats.lengths.append(int(self.ep_len[n]))
            self.ep_return[done] = 0.0
            self.ep_len[done] = 0
        return actions, rewards, extras, np.asarray(terms), np.asarray(truncs), next_obs, info

    def sample(
        self, steps_per_env: int, explore: bool = True, timestep: int = 0
    ) -> tuple[dict[str, Any], EpisodeStats]:
        """``steps_per_env`` steps of every env, as the policy's training batch."""
        T, N = steps_per_env, self.num_envs
        stats = EpisodeStats()
        obs_buf = np.empty((T, N, self.obs.shape[1]), dtype=np.float32)
        rew_buf = np.empty((T, N), dtype=np.float32)
        term_buf = np.empty((T, N), dtype=bool)
        trunc_buf = np.empty((T, N), dtype=bool)
        act_list: list[np.ndarray] = []
        extra_lists: dict[str, list[np.ndarray]] = {}
        final_obs: dict[tuple[int, int], np.ndarray] = {}
        for t in range(T):
            obs_buf[t] = self.obs
            actions, rewards, extras, terms, truncs, next_obs, info = self._step(
                explore, timestep + t * N, stats
            )
            act_list.append(actions)
            for k, v in extras.items():
                extra_lists.setdefault(k, []).append(v)
            rew_buf[t] = clip_reward(rewards, self.clip_rewards)
            term_buf[t] = terms
            trunc_buf[t] = truncs
            if truncs.any():
                for n in np.flatnonzero(truncs):
                    final_obs[(t, int(n))] = flatten_obs(
                        self.obs_space, info["final_obs"][n], batched=False
                    )
            self.obs = flatten_obs(self.obs_space, next_obs)
        fragment = Fragment(
            obs=obs_buf,
            actions=np.stack(act_list),
            rewards=rew_buf,
            terminateds=term_buf,
            truncateds=trunc_buf,
            extras={k: np.stack(v) for k, v in extra_lists.items()},
            next_obs=self.obs.copy(),
            final_obs=final_obs,
        )
        return self.policy.finish(fragment), stats

    def run_episodes(self, num_episodes: int, explore: bool, timestep: int = 0) -> EpisodeStats:
        """Complete ``num_episodes`` fresh episodes, spread evenly over the envs."""
        self._reset(None)
        quota = np.full(self.num_envs, num_episodes // self.num_envs)
        quota[: num_episodes % self.num_envs] += 1
        done_count = np.zeros(self.num_envs, dtype=np.int64)
        counted = EpisodeStats()
        while (done_count < quota).any():
            stats = EpisodeStats()
            returns_before = self.ep_return.copy()
            lens_before = self.ep_len.copy()
            _, rewards, _, terms, truncs, next_obs, _ = self._step(explore, timestep, stats)
            for n in np.flatnonzero(np.logical_or(terms, truncs)):
                if done_count[n] < quota[n]:
                    counted.returns.append(float(returns_before[n] + rewards[n]))
                    counted.lengths.append(int(lens_before[n] + 1))
                    done_count[n] += 1
            self.obs = flatten_obs(self.obs_space, next_obs)
        return counted

    def run_steps(self, num_steps: int, explore: bool, timestep: int = 0) -> EpisodeStats:
        """Step about ``num_steps`` env steps in all, counting the episodes that finish."""
        stats = EpisodeStats()
        for _ in range(max(1, -(-num_steps // self.num_envs))):
            *_, next_obs, _ = self._step(explore, timestep, stats)
            self.obs = flatten_obs(self.obs_space, next_obs)
        return stats

    def close(self) -> None:
        self.env.close()
