"""Multi-agent sampling: several agents per env, each mapped to a policy (module).

Every step groups the acting agents of all envs by module and runs one batched policy call
per module. Each agent's steps form its own trajectory; when the agent is done, or the
fragment ends, the trajectory becomes a one-env fragment that the module's policy finishes
(GAE for PPO) like a single-agent one, and the batches come back keyed by module id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nebula.rl._envs import EnvContext, flatten_obs
from nebula.rl._sampler import EpisodeStats, Fragment, clip_reward


@dataclass(frozen=True)
class _ModuleSpaces:
    observation_space: Any
    action_space: Any


@dataclass(frozen=True)
class MultiAgentSpec:
    """The policies of a multi-agent setup, as the runners need them."""

    config: Any
    policy_builder: Callable[..., Any]
    spaces: dict[str, Any]
    mapping_fn: Callable[..., str]

    @classmethod
    def from_config(
        cls, config: Any, policy_builder: Callable[..., Any], specs: dict[str, Any]
    ) -> MultiAgentSpec:
        return cls(config, policy_builder, dict(specs), policy_mapper(config))


class _Episode:
    """What ``policy_mapping_fn(agent_id, episode, **kwargs)`` receives."""

    def __init__(self, id_: str) -> None:
        self.id_ = id_


def policy_mapper(config: Any) -> Callable[..., str]:
    fn = config.policy_mapping_fn
    ids = list(config.policies)
    if fn is None:
        if len(ids) != 1:
            raise ValueError(
                "multi_agent(policies=...) with several policies needs a "
                "policy_mapping_fn(agent_id, episode, **kwargs)"
            )
        return lambda agent_id, episode, **kw: ids[0]
    return fn  # type: ignore[no-any-return]


def module_specs(config: Any, env: Any) -> dict[str, Any]:
    """Spaces per module: from its PolicySpec, else from the first agent mapped to it."""
    from nebula.rl._algorithm import ModuleSpec

    policies = config.policies
    if not isinstance(policies, dict):
        policies = {pid: None for pid in policies}
    mapper = policy_mapper(config)
    agents = list(getattr(env, "possible_agents", None) or getattr(env, "agents", []))
    out = {}
    episode = _Episode("spaces")
    for pid, pspec in policies.items():
        obs_space = getattr(pspec, "observation_space", None)
        act_space = getattr(pspec, "action_space", None)
        if obs_space is None or act_space is None:
            mapped = [a for a in agents if mapper(a, episode) == pid]
            if not mapped:
                raise ValueError(
                    f"no agent of the env maps to policy {pid!r}, so its spaces are unknown; "
                    "give them in its PolicySpec(observation_space=, action_space=)"
                )
            obs_space = obs_space or env.get_observation_space(mapped[0])
            act_space = act_space or env.get_action_space(mapped[0])
        out[pid] = ModuleSpec(obs_space, act_space)
    return out


@dataclass
class _Trajectory:
    module_id: str
    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    extras: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)


class MultiAgentSampler:
    """Steps ``num_envs`` multi-agent envs; the same interface as :class:`VectorSampler`."""

    def __init__(self, spec: Any, worker_index: int, seed: int | None) -> None:
        ma: MultiAgentSpec = spec.multi_agent
        self.config = ma.config
        self.mapper = ma.mapping_fn
        self.clip_rewards = spec.clip_rewards
        self.num_envs = spec.num_envs
        self.envs = [
            spec.env_creator(EnvContext(spec.env_config, worker_index, i, spec.num_workers))
            for i in range(spec.num_envs)
        ]
        self.spaces = ma.spaces
        self.policies = {
            mid: ma.policy_builder(ma.config, mid, s.observation_space, s.action_space)
            for mid, s in ma.spaces.items()
        }
        self.policy = _PolicySet(self.policies)
        self._seed = seed
        self._episodes = 0
        self.worker_index = worker_index
        for i in range(self.num_envs):
            self._reset(i, None if seed is None else seed + i)

    def _reset(self, i: int, seed: int | None = None) -> None:
        if not hasattr(self, "obs"):
            self.obs: list[dict[Any, Any]] = [{} for _ in range(self.num_envs)]
            self.mapping: list[dict[Any, str]] = [{} for _ in range(self.num_envs)]
            self.traj: list[dict[Any, _Trajectory]] = [{} for _ in range(self.num_envs)]
            self.ep_return = np.zeros(self.num_envs)
            self.ep_len = np.zeros(self.num_envs, dtype=np.int64)
            self.module_return: list[dict[str, float]] = [{} for _ in range(self.num_envs)]
        obs, _ = self.envs[i].reset(seed=seed)
        self._episodes += 1
        self.obs[i] = obs
        self.mapping[i] = {}
        self.traj[i] = {}
        self.ep_return[i] = 0.0
        self.ep_len[i] = 0
        self.module_return[i] = {}

    def _module(self, i: int, agent: Any) -> str:
        if agent not in self.mapping[i]:
            episode = _Episode(f"{self.worker_index}-{self._episodes}-{i}")
            self.mapping[i][agent] = self.mapper(agent, episode, worker=None)
        return self.mapping[i][agent]

    def _flat(self, mid: str, obs: Any) -> np.ndarray:
        return flatten_obs(self.spaces[mid].observation_space, obs, batched=False)

    def _step_all(
        self,
        explore: bool,
        timestep: int,
        stats: EpisodeStats,
        collect: bool,
        out: dict[str, list[dict[str, np.ndarray]]],
    ) -> int:
        """One step of every env; returns the number of agent steps taken."""
        groups: dict[str, list[tuple[int, Any, np.ndarray]]] = {}
        for i in range(self.num_envs):
            for agent, o in self.obs[i].items():
                mid = self._module(i, agent)
                groups.setdefault(mid, []).append((i, agent, self._flat(mid, o)))
        actions: list[dict[Any, Any]] = [{} for _ in range(self.num_envs)]
        agent_steps = 0
        for mid, members in groups.items():
            policy = self.policies[mid]
            obs = np.stack([m[2] for m in members])
            acts, extras = policy.act(obs, explore, timestep)
            env_acts = policy.to_env_actions(acts)
            for j, (i, agent, flat) in enumerate(members):
                actions[i][agent] = env_acts[j]
                agent_steps += 1
                if collect:
                    tr = self.traj[i].setdefault(agent, _Trajectory(mid))
                    tr.obs.append(flat)
                    tr.actions.append(acts[j])
                    tr.rewards.append(0.0)
                    for k, v in extras.items():
                        tr.extras.setdefault(k, []).append(v[j])
        for i in range(self.num_envs):
            if not actions[i]:
                continue
            obs, rewards, terms, truncs, _ = self.envs[i].step(actions[i])
            self.ep_len[i] += 1
            for agent, r in rewards.items():
                self.ep_return[i] += r
                mid = self._module(i, agent)
                self.module_return[i][mid] = self.module_return[i].get(mid, 0.0) + r
                pending = self.traj[i].get(agent)
                if collect and pending is not None and len(pending):
                    pending.rewards[-1] += float(clip_reward(np.asarray(r), self.clip_rewards))
            episode_over = terms.get("__all__", False) or truncs.get("__all__", False)
            for agent in list(self.traj[i]):
                if episode_over or terms.get(agent) or truncs.get(agent):
                    terminated = bool(terms.get(agent, False) or terms.get("__all__", False))
                    final = obs.get(agent, None)
                    if collect:
                        self._finish(
                            i, agent, "terminated" if terminated else "truncated", final, out
                        )
            if episode_over:
                stats.returns.append(float(self.ep_return[i]))
                stats.lengths.append(int(self.ep_len[i]))
                for mid, value in self.module_return[i].items():
                    stats.module_returns.setdefault(mid, []).append(value)
                self._reset(i)
            else:
                self.obs[i] = obs
        return agent_steps

    def _finish(
        self,
        i: int,
        agent: Any,
        how: str,
        last_obs: Any,
        out: dict[str, list[dict[str, np.ndarray]]],
    ) -> None:
        tr = self.traj[i].pop(agent, None)
        if tr is None or not len(tr):
            return
        T = len(tr)
        mid = tr.module_id
        terms = np.zeros((T, 1), dtype=bool)
        truncs = np.zeros((T, 1), dtype=bool)
        final_obs = {}
        nxt = tr.obs[-1] if last_obs is None else self._flat(mid, last_obs)
        if how == "terminated":
            terms[-1, 0] = True
        elif how == "truncated":
            truncs[-1, 0] = True
            final_obs[(T - 1, 0)] = nxt
        fragment = Fragment(
            obs=np.stack(tr.obs)[:, None],
            actions=np.stack([np.asarray(a) for a in tr.actions])[:, None],
            rewards=np.asarray(tr.rewards, dtype=np.float32)[:, None],
            terminateds=terms,
            truncateds=truncs,
            extras={k: np.stack([np.asarray(x) for x in v])[:, None] for k, v in tr.extras.items()},
            next_obs=nxt[None],
            final_obs=final_obs,
        )
        for module_id, cols in self.policies[mid].finish(fragment).items():
            out.setdefault(module_id, []).append(cols)

    def sample(
        self, steps_per_env: int, explore: bool = True, timestep: int = 0
    ) -> tuple[dict[str, Any], EpisodeStats]:
        stats = EpisodeStats()
        out: dict[str, list[dict[str, np.ndarray]]] = {}
        agent_steps = 0
        for t in range(steps_per_env):
            agent_steps += self._step_all(explore, timestep + t * self.num_envs, stats, True, out)
        for i in range(self.num_envs):  # cut the unfinished trajectories here
            for agent in list(self.traj[i]):
                self._finish(i, agent, "cut", self.obs[i].get(agent), out)
        stats.agent_steps = agent_steps  # type: ignore[attr-defined]
        batch = {
            mid: {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            for mid, parts in out.items()
        }
        return batch, stats

    def run_episodes(self, num_episodes: int, explore: bool, timestep: int = 0) -> EpisodeStats:
        for i in range(self.num_envs):
            self._reset(i)
        stats = EpisodeStats()
        while len(stats.returns) < num_episodes:
            self._step_all(explore, timestep, stats, False, {})
        del stats.returns[num_episodes:]
        del stats.lengths[num_episodes:]
        for values in stats.module_returns.values():
            del values[num_episodes:]
        return stats

    def run_steps(self, num_steps: int, explore: bool, timestep: int = 0) -> EpisodeStats:
        stats = EpisodeStats()
        for _ in range(max(1, -(-num_steps // self.num_envs))):
            self._step_all(explore, timestep, stats, False, {})
        return stats

    def close(self) -> None:
        for env in self.envs:
            env.close()


class _PolicySet:
    """Loads each module's weights into its policy (the runner's ``policy.load`` call)."""

    def __init__(self, policies: dict[str, Any]) -> None:
        self.policies = policies

    def load(self, weights: dict[str, Any]) -> None:
        for mid, policy in self.policies.items():
            if mid in weights:
                policy.load(weights)
