"""DQN: Q-learning from replayed transitions, double-Q targets, dueling heads, epsilon-greedy."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from nebula.rl import _settings as s
from nebula.rl._config import AlgorithmConfig, ConfigError
from nebula.rl._envs import obs_size
from nebula.rl._learner import Batch, Learner, Stats
from nebula.rl._models import QNetwork
from nebula.rl._offpolicy import (
    OFF_POLICY_SETTINGS,
    OffPolicyAlgorithm,
    OffPolicyConfig,
    copy_module,
    soft_update,
    transitions,
)
from nebula.rl._sampler import Fragment


class DQNConfig(OffPolicyConfig):
    """Settings of DQN; ``DQNConfig().environment("CartPole-v1").build_algo()``."""

    _algo_class_path = "nebula.rl._dqn.DQN"
    _extra_settings = [
        *OFF_POLICY_SETTINGS,
        ("training", "epsilon", [(0, 1.0), (10000, 0.05)], s.schedule),
        ("training", "adam_epsilon", 1e-8, s.number(0, lo_open=True)),
        ("training", "double_q", True, s.boolean),
        ("training", "dueling", True, s.boolean),
        ("training", "hiddens", [256], s.either(s.int_list, s.one_of([]))),
        ("training", "td_error_loss_fn", "huber", s.one_of("huber", "mse")),
        ("training", "num_atoms", 1, s.one_of(1)),
        ("training", "noisy", False, s.one_of(False)),
        ("training", "v_min", -10.0, s.number()),
        ("training", "v_max", 10.0, s.number()),
        ("training", "sigma0", 0.5, s.number(0)),
        ("training", "categorical_distribution_temperature", 1.0, s.number(0, lo_open=True)),
        ("training", "burn_in_len", 0, s.integer(0)),
    ]
    _defaults = {
        "lr": 5e-4,
        "train_batch_size": 32,
        "grad_clip": 40.0,
        "min_sample_timesteps_per_iteration": 1000,
    }

    def validate(self) -> None:
        super().validate()
        if self.rollout_fragment_length == "auto" and self.num_env_runners == 0:
            return


def build_module(config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any) -> Any:
    if not isinstance(act_space, gym.spaces.Discrete):
        raise ConfigError(f"DQN needs discrete actions; this env's are {act_space} (use SAC)")
    model = dict(config.model_config)
    if "fcnet_activation" not in (config.model or {}) and model["fcnet_activation"] == "tanh":
        model["fcnet_activation"] = "relu"
    return QNetwork(obs_size(obs_space), int(act_space.n), model, config.dueling, config.hiddens)


class EpsilonGreedyPolicy:
    def __init__(self, config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any):
        self.config = config
        self.module_id = module_id
        self.module = build_module(config, module_id, obs_space, act_space)
        self.n = int(act_space.n)
        seed = None if config.seed is None else config.seed + 7
        self.rng = np.random.default_rng(seed)

    def load(self, weights: dict[str, Any]) -> None:
        self.module.load_inference_state(weights[self.module_id])

    @torch.no_grad()
    def act(
        self, obs: np.ndarray, explore: bool, timestep: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        greedy = self.module(torch.from_numpy(obs)).argmax(-1).numpy()
        if not explore:
            return greedy, {}
        eps = s.interpolate(self.config.epsilon, timestep)
        random = self.rng.random(len(obs)) < eps
        actions = np.where(random, self.rng.integers(0, self.n, len(obs)), greedy)
        return actions, {}

    def to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        return actions

    def finish(self, fragment: Fragment) -> Batch:
        return {self.module_id: transitions(fragment, self.config.gamma, self.config.n_step)}


def make_policy(config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any) -> Any:
    return EpsilonGreedyPolicy(config, module_id, obs_space, act_space)


class DQNLearner(Learner):
    def __init__(
        self, config: Any, modules: dict[str, torch.nn.Module], rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__(config, modules, rank, world_size)
        self.targets = {mid: copy_module(m) for mid, m in modules.items()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            mid: torch.optim.Adam(
                m.parameters(), lr=self._lr(0), eps=self.config.adam_epsilon, fused=True
            )
            for mid, m in self.modules.items()
        }

    def update(self, batch: Batch, timestep: int) -> Stats:
        c = self.config
        stats: Stats = {}
        for mid, b in batch.items():
            module, target, opt = self.modules[mid], self.targets[mid], self.optimizers[mid]
            lr = self._lr(timestep)
            self.set_lr(opt, lr)
            t = {
                k: torch.from_numpy(np.ascontiguousarray(v))
                for k, v in b.items()
                if k != "batch_indexes"
            }
            q_all = module(t["obs"])
            q = q_all.gather(1, t["actions"].long().unsqueeze(1)).squeeze(1)
            with torch.no_grad():
                next_target = target(t["new_obs"])
                if c.double_q:
                    best = module(t["new_obs"]).argmax(-1, keepdim=True)
                    q_next = next_target.gather(1, best).squeeze(1)
                else:
                    q_next = next_target.max(-1).values
                y = t["rewards"] + t["discounts"] * (1.0 - t["terminateds"]) * q_next
            td = q - y
            if c.td_error_loss_fn == "huber":
                per_row = torch.nn.functional.huber_loss(q, y, reduction="none")
            else:
                per_row = 0.5 * td.pow(2)
            loss = (t["weights"] * per_row).mean()
            norm = self.apply_gradients(loss, opt, c.grad_clip)
            stats[mid] = {
                "qf_loss": float(loss.detach()),
                "qf_mean": float(q.detach().mean()),
                "qf_max": float(q.detach().max()),
                "qf_min": float(q.detach().min()),
                "td_error_mean": float(td.detach().abs().mean()),
                "gradients_default_optimizer_global_norm": norm,
                "default_optimizer_learning_rate": lr,
                "num_module_steps_trained": float(len(q)),
                "td_error": td.detach().numpy(),  # type: ignore[dict-item]
            }
        return stats

    def update_target(self) -> None:
        for mid, module in self.modules.items():
            soft_update(self.targets[mid], module, self.config.tau)

    def extra_state(self) -> dict[str, Any]:
        return {
            "targets": {
                mid: {k: v.numpy().copy() for k, v in t.state_dict().items()}
                for mid, t in self.targets.items()
            }
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for mid, sd in state.get("targets", {}).items():
            self.targets[mid].load_state_dict({k: torch.tensor(v) for k, v in sd.items()})


class DQN(OffPolicyAlgorithm):
    """Deep Q-Network with a replay buffer (prioritized by default) and a target network."""

    config_class = DQNConfig
    learner_class = DQNLearner
    module_builder = staticmethod(build_module)
    policy_builder = staticmethod(make_policy)


__all__ = ["DQN", "DQNConfig", "DQNLearner"]
