"""SAC: soft actor-critic for continuous actions (twin Q, learned temperature, soft targets)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from nebula.rl import _settings as s
from nebula.rl._config import AlgorithmConfig, ConfigError
from nebula.rl._envs import obs_size
from nebula.rl._learner import Batch, Learner, Stats
from nebula.rl._models import SACModule
from nebula.rl._offpolicy import (
    OFF_POLICY_SETTINGS,
    OffPolicyAlgorithm,
    OffPolicyConfig,
    copy_module,
    soft_update,
    transitions,
)
from nebula.rl._ppo import unsquash
from nebula.rl._sampler import Fragment

_NET = {"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"}


def _net_config(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "a dict such as {'fcnet_hiddens': [256, 256], 'fcnet_activation': 'relu'}"
    return None


class SACConfig(OffPolicyConfig):
    """Settings of SAC; ``SACConfig().environment("Pendulum-v1").build_algo()``."""

    _algo_class_path = "nebula.rl._sac.SAC"
    _extra_settings = [
        *OFF_POLICY_SETTINGS,
        ("training", "twin_q", True, s.boolean),
        ("training", "q_model_config", dict(_NET), _net_config),
        ("training", "policy_model_config", dict(_NET), _net_config),
        ("training", "initial_alpha", 1.0, s.number(0, lo_open=True)),
        ("training", "target_entropy", "auto", s.either(s.one_of("auto"), s.number())),
        ("training", "actor_lr", 3e-5, s.number(0, lo_open=True)),
        ("training", "critic_lr", 3e-4, s.number(0, lo_open=True)),
        ("training", "alpha_lr", 3e-4, s.number(0, lo_open=True)),
        ("training", "optimization_config", None, s.optional(s.mapping)),
        ("training", "clip_actions", False, s.boolean),
        ("training", "_deterministic_loss", False, s.boolean),
        ("training", "_use_beta_distribution", False, s.one_of(False)),
    ]
    _defaults = {
        "lr": 3e-4,
        "tau": 5e-3,
        "target_network_update_freq": 0,
        "train_batch_size": 256,
        "num_steps_sampled_before_learning_starts": 1500,
        "min_time_s_per_iteration": 1,
        "min_sample_timesteps_per_iteration": 100,
        "replay_buffer_config": {
            "type": "PrioritizedEpisodeReplayBuffer",
            "capacity": 1000000,
            "alpha": 0.6,
            "beta": 0.4,
        },
    }

    def _set_one(self, section: str, name: str, value: Any) -> None:
        if name in ("q_model_config", "policy_model_config") and isinstance(value, dict):
            merged = dict(_NET)
            merged.update(value)
            value = merged
        super()._set_one(section, name, value)


def build_module(config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any) -> Any:
    if not isinstance(act_space, gym.spaces.Box):
        raise ConfigError(f"SAC needs continuous (Box) actions; this env's are {act_space}")
    return SACModule(
        obs_size(obs_space),
        act_space,
        config.policy_model_config,
        config.q_model_config,
        config.twin_q,
    )


class SquashedGaussianPolicy:
    def __init__(self, config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any):
        self.config = config
        self.module_id = module_id
        self.action_space = act_space
        self.module = build_module(config, module_id, obs_space, act_space)

    def load(self, weights: dict[str, Any]) -> None:
        self.module.load_inference_state(weights[self.module_id])

    @torch.no_grad()
    def act(
        self, obs: np.ndarray, explore: bool, timestep: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        actions, _ = self.module.policy(torch.from_numpy(obs), explore)
        return actions.numpy(), {}

    def to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        return unsquash(actions, self.action_space, True, True)

    def finish(self, fragment: Fragment) -> Batch:
        return {self.module_id: transitions(fragment, self.config.gamma, self.config.n_step)}


def make_policy(config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any) -> Any:
    return SquashedGaussianPolicy(config, module_id, obs_space, act_space)


class SACLearner(Learner):
    def __init__(
        self, config: Any, modules: dict[str, torch.nn.Module], rank: int = 0, world_size: int = 1
    ) -> None:
        self.log_alpha = {
            mid: torch.tensor(math.log(config.initial_alpha), requires_grad=True) for mid in modules
        }
        super().__init__(config, modules, rank, world_size)
        self.targets = {mid: copy_module(m) for mid, m in modules.items()}
        self.target_entropy = {}
        for mid, m in modules.items():
            n = int(m.pi[-1].out_features) // 2  # type: ignore[index, union-attr]
            te = config.target_entropy
            self.target_entropy[mid] = -float(n) if te == "auto" else float(te)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        opt = c.optimization_config or {}
        out: dict[str, torch.optim.Optimizer] = {}
        for mid, m in self.modules.items():
            critics = list(m.q1.parameters()) + (list(m.q2.parameters()) if m.q2 else [])
            out[f"{mid}/actor"] = torch.optim.Adam(
                m.pi.parameters(), lr=opt.get("actor_learning_rate", c.actor_lr)
            )
            out[f"{mid}/critic"] = torch.optim.Adam(
                critics, lr=opt.get("critic_learning_rate", c.critic_lr)
            )
            out[f"{mid}/alpha"] = torch.optim.Adam(
                [self.log_alpha[mid]], lr=opt.get("entropy_learning_rate", c.alpha_lr)
            )
        return out

    def update(self, batch: Batch, timestep: int) -> Stats:
        c = self.config
        stats: Stats = {}
        for mid, b in batch.items():
            m, target = self.modules[mid], self.targets[mid]
            t = {
                k: torch.from_numpy(np.ascontiguousarray(v))
                for k, v in b.items()
                if k != "batch_indexes"
            }
            alpha = self.log_alpha[mid].exp().detach()
            with torch.no_grad():
                next_a, next_logp = m.policy(t["new_obs"], True)
                q_next = torch.min(torch.stack(target.q_values(t["new_obs"], next_a)), 0).values
                y = t["rewards"] + t["discounts"] * (1 - t["terminateds"]) * (
                    q_next - alpha * next_logp
                )
            qs = m.q_values(t["obs"], t["actions"])
            td = qs[0] - y
            critic_loss = sum((t["weights"] * 0.5 * (q - y).pow(2)).mean() for q in qs)
            self.apply_gradients(critic_loss, self.optimizers[f"{mid}/critic"], c.grad_clip)  # type: ignore[arg-type]
            for p in list(m.q1.parameters()) + (list(m.q2.parameters()) if m.q2 else []):
                p.requires_grad_(False)
            a, logp = m.policy(t["obs"], True)
            q_pi = torch.min(torch.stack(m.q_values(t["obs"], a)), 0).values
            actor_loss = (alpha * logp - q_pi).mean()
            self.apply_gradients(actor_loss, self.optimizers[f"{mid}/actor"], c.grad_clip)
            for p in list(m.q1.parameters()) + (list(m.q2.parameters()) if m.q2 else []):
                p.requires_grad_(True)
            alpha_loss = -(self.log_alpha[mid] * (logp.detach() + self.target_entropy[mid])).mean()
            self.apply_gradients(alpha_loss, self.optimizers[f"{mid}/alpha"], None)
            if c.target_network_update_freq == 0:
                soft_update(target, m, c.tau)
            stats[mid] = {
                "qf_loss": float(critic_loss.detach()),  # type: ignore[union-attr]
                "policy_loss": float(actor_loss.detach()),
                "alpha_loss": float(alpha_loss.detach()),
                "alpha_value": float(alpha),
                "log_alpha_value": float(self.log_alpha[mid].detach()),
                "qf_mean": float(qs[0].detach().mean()),
                "num_module_steps_trained": float(len(y)),
                "td_error": td.detach().numpy(),  # type: ignore[dict-item]
            }
        return stats

    def update_target(self) -> None:
        if self.config.target_network_update_freq:
            for mid, m in self.modules.items():
                soft_update(self.targets[mid], m, self.config.tau)

    def extra_state(self) -> dict[str, Any]:
        return {
            "targets": {
                mid: {k: v.numpy().copy() for k, v in t.state_dict().items()}
                for mid, t in self.targets.items()
            },
            "log_alpha": {mid: float(v.detach()) for mid, v in self.log_alpha.items()},
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for mid, sd in state.get("targets", {}).items():
            self.targets[mid].load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
        with torch.no_grad():
            for mid, v in state.get("log_alpha", {}).items():
                self.log_alpha[mid].fill_(v)


class SAC(OffPolicyAlgorithm):
    """Soft Actor-Critic with twin Q-networks and an automatically tuned temperature."""

    config_class = SACConfig
    learner_class = SACLearner
    module_builder = staticmethod(build_module)
    policy_builder = staticmethod(make_policy)


__all__ = ["SAC", "SACConfig", "SACLearner"]
