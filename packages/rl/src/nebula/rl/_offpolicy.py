"""What DQN and SAC share: transitions from fragments, and the replay-then-learn loop."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from nebula.rl import _settings as s
from nebula.rl._algorithm import Algorithm
from nebula.rl._buffers import ReplayBuffer, check_buffer_config, make_buffer
from nebula.rl._config import DEFAULT_MODULE_ID, AlgorithmConfig, ConfigError
from nebula.rl._env_runner import SampleResult
from nebula.rl._learner import Stats
from nebula.rl._results import ALL_MODULES
from nebula.rl._sampler import Fragment

OFF_POLICY_SETTINGS: list[tuple[str, str, Any, s.Check]] = [
    (
        "training",
        "replay_buffer_config",
        {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 50000, "alpha": 0.6, "beta": 0.4},
        check_buffer_config,
    ),
    ("training", "store_buffer_in_checkpoints", False, s.boolean),
    ("training", "num_steps_sampled_before_learning_starts", 1000, s.integer(0)),
    ("training", "training_intensity", None, s.optional(s.number(0, lo_open=True))),
    ("training", "n_step", 1, s.integer(1)),
    ("training", "tau", 1.0, s.number(0, 1)),
    ("training", "target_network_update_freq", 500, s.integer(0)),
]


class OffPolicyConfig(AlgorithmConfig):
    def _set_one(self, section: str, name: str, value: Any) -> None:
        if name == "replay_buffer_config" and isinstance(value, dict):
            merged = dict(self._values.get("replay_buffer_config") or {})
            merged.update(value)
            value = merged
        super()._set_one(section, name, value)

    def validate(self) -> None:
        super().validate()
        if self.is_multi_agent:
            raise ConfigError(
                f"{type(self).__name__} trains one policy; multi-agent setups run with PPO"
            )


def transitions(fragment: Fragment, gamma: float, n_step: int) -> dict[str, np.ndarray]:
    """Flat ``(obs, action, reward, next_obs, terminated, discount)`` rows of a fragment.

    With ``n_step > 1`` the reward sums up to ``n_step`` discounted rewards of the same
    episode within the fragment, and ``discount`` is ``gamma ** k`` for the ``k`` steps summed.
    """
    T, N = fragment.rewards.shape
    nxt = np.concatenate([fragment.obs[1:], fragment.next_obs[None]], axis=0)
    for (t, n), final in fragment.final_obs.items():
        nxt[t, n] = final
    rewards = fragment.rewards.astype(np.float32)
    terms = fragment.terminateds.copy()
    discount = np.full((T, N), gamma, dtype=np.float32)
    if n_step > 1:
        done = fragment.terminateds | fragment.truncateds
        ret = rewards.copy()
        open_ = ~done  # rows whose episode goes on after the last step summed
        for k in range(1, n_step):
            for t in range(T - k):
                rows = open_[t]
                if not rows.any():
                    continue
                ret[t, rows] += (gamma**k) * rewards[t + k, rows]
                discount[t, rows] = gamma ** (k + 1)
                nxt[t, rows] = nxt[t + k, rows]
                terms[t, rows] = fragment.terminateds[t + k, rows]
                open_[t] = rows & ~done[t + k]
            open_[T - k :] = False
        rewards = ret
    flat = T * N
    return {
        "obs": fragment.obs.reshape(flat, -1),
        "actions": fragment.actions.reshape((flat, *fragment.actions.shape[2:])),
        "rewards": rewards.reshape(flat),
        "new_obs": nxt.reshape(flat, -1),
        "terminateds": terms.reshape(flat).astype(np.float32),
        "discounts": discount.reshape(flat),
    }


class OffPolicyAlgorithm(Algorithm):
    """Sample a round, store it, then learn from replayed batches (DQN, SAC)."""

    def setup(self, config: AlgorithmConfig) -> None:
        super().setup(config)
        self.replay_buffer: ReplayBuffer = make_buffer(config.replay_buffer_config, config.seed)
        self._last_target_update = 0

    def training_step(self) -> tuple[list[SampleResult], Stats]:
        c = self.config
        assert self.env_runner_group is not None and self.learner_group is not None
        results = self.env_runner_group.sample(
            c.get_rollout_fragment_length(), 1, c.explore, self.timestep
        )
        sampled = 0
        for r in results:
            self.replay_buffer.add(r.batch[DEFAULT_MODULE_ID])
            sampled += r.env_steps
        timestep = self.timestep + sampled
        if timestep < c.num_steps_sampled_before_learning_starts:
            return results, {}
        batch_size = c.total_train_batch_size
        if c.training_intensity:
            updates = max(1, round(c.training_intensity * sampled / batch_size))
        else:
            updates = 1
        stats: Stats = {}
        trained = 0
        for _ in range(updates):
            batch = self.replay_buffer.sample(batch_size)
            stats = self.learner_group.update({DEFAULT_MODULE_ID: batch}, timestep)
            td = stats[DEFAULT_MODULE_ID].pop("td_error", None)
            if td is not None:
                self.replay_buffer.update_priorities(batch["batch_indexes"], np.asarray(td))
            trained += batch_size
            freq = c.target_network_update_freq
            if timestep - self._last_target_update >= freq:
                self.learner_group.call("update_target")
                self._last_target_update = timestep
        self._sync_weights()
        stats[ALL_MODULES] = {"num_env_steps_trained": float(trained)}
        return results, stats

    def extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"last_target_update": self._last_target_update}
        if self.config.store_buffer_in_checkpoints:
            state["replay_buffer"] = self.replay_buffer.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._last_target_update = state.get("last_target_update", 0)
        if "replay_buffer" in state:
            self.replay_buffer.set_state(state["replay_buffer"])


def soft_update(target: Any, source: Any, tau: float) -> None:
    import torch

    with torch.no_grad():
        for t, p in zip(target.parameters(), source.parameters()):
            t.mul_(1 - tau).add_(p, alpha=tau)


def copy_module(module: Any) -> Any:
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target
