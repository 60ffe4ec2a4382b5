"""PPO: clipped surrogate policy loss, GAE advantages, optional adaptive KL penalty.

Runners compute the advantages (GAE) of their own fragments with the values their policy
produced while acting, so the learner receives flat, ready-to-train columns.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from nebula.rl import _settings as s
from nebula.rl._algorithm import Algorithm
from nebula.rl._config import DEFAULT_MODULE_ID, AlgorithmConfig
from nebula.rl._env_runner import SampleResult
from nebula.rl._envs import obs_size
from nebula.rl._learner import Batch, Learner, Stats
from nebula.rl._models import ActorCritic
from nebula.rl._results import ALL_MODULES
from nebula.rl._sampler import Fragment
from nebula.rl.core.rl_module.rl_module import MultiRLModuleSpec


class PPOConfig(AlgorithmConfig):
    """Settings of PPO; ``PPOConfig().environment("CartPole-v1").build_algo()``."""

    _algo_class_path = "nebula.rl._ppo.PPO"
    _extra_settings = [
        ("training", "use_critic", True, s.boolean),
        ("training", "use_gae", True, s.boolean),
        ("training", "lambda_", 1.0, s.number(0, 1)),
        ("training", "use_kl_loss", True, s.boolean),
        ("training", "kl_coeff", 0.2, s.number(0)),
        ("training", "kl_target", 0.01, s.number(0)),
        ("training", "vf_loss_coeff", 1.0, s.number(0)),
        ("training", "entropy_coeff", 0.0, s.schedule),
        ("training", "clip_param", 0.3, s.number(0, lo_open=True)),
        (
            "training",
            "vf_clip_param",
            10.0,
            s.optional(s.number(0, lo_open=True, allow_inf=True)),
        ),
        ("training", "entropy_coeff_schedule", None, s.optional(s.schedule)),
        ("training", "lr_schedule", None, s.optional(s.schedule)),
        ("training", "vf_share_layers", None, s.optional(s.boolean)),
    ]
    _defaults = {
        "lr": 5e-5,
        "train_batch_size": 4000,
        "num_epochs": 30,
        "minibatch_size": 128,
        "num_env_runners": 2,
    }

    def _set_one(self, section: str, name: str, value: Any) -> None:
        super()._set_one(section, name, value)
        if name == "vf_share_layers" and value is not None:  # the older place of this setting
            self._values["model_config"]["vf_share_layers"] = value


# ---------------------------------------------------------------------------- modules


def build_module(config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any) -> Any:
    spec = config.rl_module_spec
    if isinstance(spec, MultiRLModuleSpec):
        return spec.build(obs_space, act_space, config.model_config, module_id)
    if spec is not None:
        return spec.build(obs_space, act_space, config.model_config)
    return ActorCritic(obs_size(obs_space), act_space, config.model_config)


def unsquash(actions: np.ndarray, space: gym.spaces.Box, normalize: bool, clip: bool) -> np.ndarray:
    """Policy outputs in [-1, 1] scaled to the env's bounds (``normalize_actions``)."""
    if normalize and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
        a = np.clip(actions, -1.0, 1.0)
        return (space.low + (a + 1.0) * 0.5 * (space.high - space.low)).astype(space.dtype)
    if clip:
        return np.clip(actions, space.low, space.high).astype(space.dtype)
    return actions.astype(space.dtype)


class ActorCriticPolicy:
    """Acts with an :class:`ActorCritic` and records log-probabilities and values."""

    def __init__(self, config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any):
        self.config = config
        self.module_id = module_id
        self.action_space = act_space
        self.module = build_module(config, module_id, obs_space, act_space)
        self.module.eval()
        self.discrete = isinstance(act_space, gym.spaces.Discrete)

    def load(self, weights: dict[str, Any]) -> None:
        self.module.load_inference_state(weights[self.module_id])

    @torch.no_grad()
    def act(
        self, obs: np.ndarray, explore: bool, timestep: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        inputs, values = self.module(torch.from_numpy(obs))
        dist = self.module.distribution(inputs)
        actions = dist.sample() if explore else self.module.deterministic_action(inputs)
        logp = dist.log_prob(actions)
        return actions.numpy(), {
            "logp": logp.numpy(),
            "vf_preds": values.numpy(),
            "dist_inputs": inputs.numpy(),
        }

    @torch.no_grad()
    def values(self, obs: np.ndarray) -> np.ndarray:
        return self.module.value(torch.from_numpy(np.asarray(obs, dtype=np.float32))).numpy()

    def to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        if self.discrete:
            return actions
        return unsquash(
            actions, self.action_space, self.config.normalize_actions, self.config.clip_actions
        )

    def finish(self, fragment: Fragment) -> Batch:
        T, N = fragment.rewards.shape
        vf = fragment.extras["vf_preds"]
        trunc_values = np.zeros((T, N), dtype=np.float32)
        if fragment.final_obs:
            keys = list(fragment.final_obs)
            vals = self.values(np.stack([fragment.final_obs[k] for k in keys]))
            for (t, n), v in zip(keys, vals):
                trunc_values[t, n] = v
        adv = gae(
            fragment.rewards,
            vf,
            fragment.terminateds,
            fragment.truncateds,
            trunc_values,
            self.values(fragment.next_obs),
            self.config.gamma,
            self.config.lambda_,
        )
        flat = T * N
        columns = {
            "obs": fragment.obs.reshape(flat, -1),
            "actions": fragment.actions.reshape((flat, *fragment.actions.shape[2:])),
            "logp": fragment.extras["logp"].reshape(flat),
            "dist_inputs": fragment.extras["dist_inputs"].reshape(flat, -1),
            "advantages": adv.reshape(flat),
            "value_targets": (adv + vf).reshape(flat),
            "vf_preds": vf.reshape(flat),
        }
        return {self.module_id: columns}


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    truncated_values: np.ndarray,
    last_values: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Generalized advantage estimates of ``[T, N]`` steps; episodes end at either kind of done."""
    T = rewards.shape[0]
    adv = np.zeros_like(rewards, dtype=np.float32)
    running = np.zeros(rewards.shape[1:], dtype=np.float32)
    next_values = last_values.astype(np.float32)
    for t in range(T - 1, -1, -1):
        nv = np.where(truncateds[t], truncated_values[t], next_values)
        nv = np.where(terminateds[t], 0.0, nv)
        carry = ~(terminateds[t] | truncateds[t])
        delta = rewards[t] + gamma * nv - values[t]
        running = delta + gamma * lam * carry * running
        adv[t] = running
        next_values = values[t]
    return adv


def make_policy(config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any) -> Any:
    return ActorCriticPolicy(config, module_id, obs_space, act_space)


# ---------------------------------------------------------------------------- learner


def trainable_modules(config: AlgorithmConfig, module_ids: Any) -> set[str]:
    chosen = config.policies_to_train
    if chosen is None:
        return set(module_ids)
    if callable(chosen):
        return {mid for mid in module_ids if chosen(mid, None)}
    return set(chosen)


class PPOLearner(Learner):
    """PPO's loss over minibatches and epochs; adapts the KL coefficient after each update."""

    def __init__(
        self, config: Any, modules: dict[str, torch.nn.Module], rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__(config, modules, rank, world_size)
        self.kl_coeff = {mid: float(config.kl_coeff) for mid in modules}
        self.trainable = trainable_modules(config, modules)

    def extra_state(self) -> dict[str, Any]:
        return {"kl_coeff": dict(self.kl_coeff)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.kl_coeff.update(state.get("kl_coeff", {}))

    def update(self, batch: Batch, timestep: int) -> Stats:
        c = self.config
        stats: Stats = {}
        lr = s.interpolate(c.lr_schedule if c.lr_schedule is not None else c.lr, timestep)
        ent_coeff = s.interpolate(
            c.entropy_coeff_schedule if c.entropy_coeff_schedule is not None else c.entropy_coeff,
            timestep,
        )
        for mid, columns in batch.items():
            if mid not in self.trainable or mid not in self.modules:
                continue
            module, opt = self.modules[mid], self.optimizers[mid]
            self.set_lr(opt, lr)
            stats[mid] = self._update_module(mid, module, opt, columns, ent_coeff)
            stats[mid]["default_optimizer_learning_rate"] = lr
            stats[mid]["curr_entropy_coeff"] = ent_coeff
        return stats

    def _update_module(
        self,
        mid: str,
        module: Any,
        opt: torch.optim.Optimizer,
        columns: dict[str, np.ndarray],
        ent_coeff: float,
    ) -> dict[str, float]:
        c = self.config
        t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in columns.items()}
        n = len(t["obs"])
        adv = t["advantages"]
        t["advantages"] = (adv - adv.mean()) / (adv.std() + 1e-8) if n > 1 else adv
        mb = min(c.minibatch_size or n, n)
        sums: dict[str, float] = {}
        count = 0
        for _ in range(c.num_epochs):
            order = torch.randperm(n) if c.shuffle_batch_per_epoch else torch.arange(n)
            for start in range(0, n, mb):
                idx = order[start : start + mb]
                parts = self._loss(module, {k: v[idx] for k, v in t.items()}, mid, ent_coeff)
                norm = self.apply_gradients(parts["total_loss"], opt, c.grad_clip)
                parts["gradients_default_optimizer_global_norm"] = torch.tensor(norm)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                count += 1
        out = {k: v / max(count, 1) for k, v in sums.items()}
        if c.use_kl_loss:
            kl = out.get("mean_kl_loss", 0.0)
            if kl > 2.0 * c.kl_target:
                self.kl_coeff[mid] *= 1.5
            elif kl < 0.5 * c.kl_target:
                self.kl_coeff[mid] *= 0.5
            out["curr_kl_coeff"] = self.kl_coeff[mid]
        with torch.no_grad():
            var = torch.var(t["value_targets"])
            out["vf_explained_var"] = (
                float(1 - torch.var(t["value_targets"] - t["vf_preds"]) / var) if var > 0 else 0.0
            )
        out["num_module_steps_trained"] = float(n * c.num_epochs)
        return out

    def _loss(
        self, module: Any, b: dict[str, torch.Tensor], mid: str, ent_coeff: float
    ) -> dict[str, torch.Tensor]:
        c = self.config
        inputs, values = module(b["obs"])
        dist = module.distribution(inputs)
        logp = dist.log_prob(b["actions"])
        ratio = torch.exp(logp - b["logp"])
        adv = b["advantages"]
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - c.clip_param, 1 + c.clip_param) * adv)
        policy_loss = -surrogate.mean()
        entropy = dist.entropy().mean()
        total = policy_loss - ent_coeff * entropy
        parts: dict[str, torch.Tensor] = {
            "policy_loss": policy_loss.detach(),
            "entropy": entropy.detach(),
        }
        if c.use_critic:
            vf_loss = (values - b["value_targets"]).pow(2)
            clipped = vf_loss.clamp(0, c.vf_clip_param) if c.vf_clip_param else vf_loss
            total = total + c.vf_loss_coeff * clipped.mean()
            parts["vf_loss"] = clipped.mean().detach()
            parts["vf_loss_unclipped"] = vf_loss.mean().detach()
        if c.use_kl_loss:
            kl = torch.distributions.kl_divergence(module.distribution(b["dist_inputs"]), dist)
            kl_mean = kl.mean()
            total = total + self.kl_coeff[mid] * kl_mean
            parts["mean_kl_loss"] = kl_mean.detach()
        parts["total_loss"] = total
        return parts


# ---------------------------------------------------------------------------- algorithm


def concat_batches(results: list[SampleResult]) -> Batch:
    merged: dict[str, dict[str, list[np.ndarray]]] = {}
    for r in results:
        for mid, columns in r.batch.items():
            target = merged.setdefault(mid, {})
            for k, v in columns.items():
                target.setdefault(k, []).append(v)
    return {mid: {k: np.concatenate(v) for k, v in cols.items()} for mid, cols in merged.items()}


class PPO(Algorithm):
    """Proximal Policy Optimization with synchronous sampling."""

    config_class = PPOConfig
    learner_class = PPOLearner
    module_builder = staticmethod(build_module)
    policy_builder = staticmethod(make_policy)

    def training_step(self) -> tuple[list[SampleResult], Stats]:
        c = self.config
        assert self.env_runner_group is not None and self.learner_group is not None
        results = self.env_runner_group.sample(
            c.get_rollout_fragment_length(), c.total_train_batch_size, c.explore, self.timestep
        )
        batch = concat_batches(results)
        stats = self.learner_group.update(batch, self.timestep)
        self._sync_weights()
        trained = sum(r.env_steps for r in results)
        stats[ALL_MODULES] = {"num_env_steps_trained": float(trained)}
        return results, stats


__all__ = ["PPO", "PPOConfig", "PPOLearner", "DEFAULT_MODULE_ID"]
