"""IMPALA: runners sample without waiting for the learner; V-trace corrects for the lag.

Each runner always has a sample call in flight; whenever fragments arrive the runner gets
its next call at once (with the newest weights), and the learner trains on fragments as
they come. Fragments stay time-major (``[T, N]``) because V-trace runs backwards in time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from nebula.rl import _settings as s
from nebula.rl._algorithm import Algorithm
from nebula.rl._config import AlgorithmConfig, ConfigError
from nebula.rl._env_runner import SampleResult
from nebula.rl._learner import Batch, Learner, Stats
from nebula.rl._ppo import ActorCriticPolicy, build_module
from nebula.rl._results import ALL_MODULES
from nebula.rl._sampler import Fragment


class IMPALAConfig(AlgorithmConfig):
    """Settings of IMPALA; ``IMPALAConfig().environment("CartPole-v1").build_algo()``."""

    _algo_class_path = "nebula.rl._impala.IMPALA"
    _extra_settings = [
        ("training", "vtrace", True, s.boolean),
        ("training", "vtrace_clip_rho_threshold", 1.0, s.number(0, lo_open=True)),
        ("training", "vtrace_clip_pg_rho_threshold", 1.0, s.number(0, lo_open=True)),
        ("training", "vf_loss_coeff", 0.5, s.number(0)),
        ("training", "entropy_coeff", 0.01, s.schedule),
        ("training", "entropy_coeff_schedule", None, s.optional(s.schedule)),
        ("training", "lr_schedule", None, s.optional(s.schedule)),
        ("training", "broadcast_interval", 1, s.integer(1)),
        ("training", "learner_queue_size", 3, s.integer(1)),
        ("training", "learner_queue_timeout", 300, s.number(0)),
        ("training", "timeout_s_sampler_manager", 0.0, s.number(0)),
        ("training", "timeout_s_aggregator_manager", 0.0, s.number(0)),
        ("training", "num_gpu_loader_threads", 8, s.integer(1)),
        ("training", "opt_type", "adam", s.one_of("adam", "rmsprop")),
        ("training", "decay", 0.99, s.number(0, 1)),
        ("training", "momentum", 0.0, s.number(0)),
        ("training", "epsilon", 0.1, s.number(0, lo_open=True)),
    ]
    _defaults = {
        "lr": 5e-4,
        "grad_clip": 40.0,
        "rollout_fragment_length": 50,
        "train_batch_size": 500,
        "num_env_runners": 2,
        "min_time_s_per_iteration": 10,
    }

    def validate(self) -> None:
        super().validate()
        if self.is_multi_agent:
            raise ConfigError("IMPALA trains one policy here; multi-agent setups run with PPO")


class VTracePolicy(ActorCriticPolicy):
    """Acts like PPO's policy but hands over whole time-major fragments."""

    def finish(self, fragment: Fragment) -> Batch:
        gamma = self.config.gamma
        rewards = fragment.rewards.astype(np.float32).copy()
        if fragment.final_obs:
            # A truncated episode would have gone on: its last reward gets the value of the
            # state it stopped in, and the discount ends the sum there as for a terminal.
            keys = list(fragment.final_obs)
            vals = self.values(np.stack([fragment.final_obs[k] for k in keys]))
            for (t, n), v in zip(keys, vals):
                rewards[t, n] += gamma * float(v)
        done = fragment.terminateds | fragment.truncateds
        return {
            self.module_id: {
                "obs": fragment.obs,
                "actions": fragment.actions,
                "logp": fragment.extras["logp"].astype(np.float32),
                "rewards": rewards,
                "discounts": (gamma * (~done)).astype(np.float32),
                "bootstrap_obs": fragment.next_obs,
            }
        }


def make_policy(config: AlgorithmConfig, module_id: str, obs_space: Any, act_space: Any) -> Any:
    return VTracePolicy(config, module_id, obs_space, act_space)


def vtrace(
    behavior_logp: torch.Tensor,
    target_logp: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    values: torch.Tensor,
    bootstrap: torch.Tensor,
    rho_bar: float,
    pg_rho_bar: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace targets ``vs`` and policy-gradient advantages of ``[T, B]`` steps (no grad)."""
    with torch.no_grad():
        rhos = torch.exp(target_logp - behavior_logp)
        clipped = rhos.clamp(max=rho_bar)
        cs = rhos.clamp(max=1.0)
        next_values = torch.cat([values[1:], bootstrap[None]], dim=0)
        deltas = clipped * (rewards + discounts * next_values - values)
        acc = torch.zeros_like(bootstrap)
        out = torch.empty_like(values)
        for t in range(values.shape[0] - 1, -1, -1):
            acc = deltas[t] + discounts[t] * cs[t] * acc
            out[t] = acc
        vs = out + values
        next_vs = torch.cat([vs[1:], bootstrap[None]], dim=0)
        pg_adv = rhos.clamp(max=pg_rho_bar) * (rewards + discounts * next_vs - values)
    return vs, pg_adv


class IMPALALearner(Learner):
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        if c.opt_type == "rmsprop":
            return {
                mid: torch.optim.RMSprop(
                    m.parameters(),
                    lr=self._lr(0),
                    alpha=c.decay,
                    momentum=c.momentum,
                    eps=c.epsilon,
                )
                for mid, m in self.modules.items()
            }
        return super().configure_optimizers()

    @staticmethod
    def split_batch(batch: Batch, n: int) -> list[Batch]:
        """Shards along the env axis (axis 1), keeping time order within each."""
        shards: list[Batch] = [{} for _ in range(n)]
        for mid, cols in batch.items():
            width = cols["rewards"].shape[1] // n
            for i in range(n):
                sl = slice(i * width, (i + 1) * width)
                shards[i][mid] = {
                    k: (v[sl] if k == "bootstrap_obs" else v[:, sl]) for k, v in cols.items()
                }
        return shards

    def update(self, batch: Batch, timestep: int) -> Stats:
        c = self.config
        lr = s.interpolate(c.lr_schedule if c.lr_schedule is not None else c.lr, timestep)
        ent_coeff = s.interpolate(
            c.entropy_coeff_schedule if c.entropy_coeff_schedule is not None else c.entropy_coeff,
            timestep,
        )
        stats: Stats = {}
        for mid, cols in batch.items():
            module, opt = self.modules[mid], self.optimizers[mid]
            self.set_lr(opt, lr)
            t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in cols.items()}
            T, B = t["rewards"].shape
            inputs, values = module(t["obs"].reshape(T * B, -1))
            dist = module.distribution(inputs)
            actions = t["actions"].reshape((T * B, *t["actions"].shape[2:]))
            target_logp = dist.log_prob(actions).reshape(T, B)
            values = values.reshape(T, B)
            with torch.no_grad():
                bootstrap = module.value(t["bootstrap_obs"])
            behavior = t["logp"] if c.vtrace else target_logp.detach()
            vs, pg_adv = vtrace(
                behavior,
                target_logp.detach(),
                t["rewards"],
                t["discounts"],
                values.detach(),
                bootstrap,
                c.vtrace_clip_rho_threshold,
                c.vtrace_clip_pg_rho_threshold,
            )
            pi_loss = -(target_logp * pg_adv).mean()
            vf_loss = 0.5 * (vs - values).pow(2).mean()
            entropy = dist.entropy().mean()
            total = pi_loss + c.vf_loss_coeff * vf_loss - ent_coeff * entropy
            norm = self.apply_gradients(total, opt, c.grad_clip)
            stats[mid] = {
                "pi_loss": float(pi_loss.detach()),
                "vf_loss": float(vf_loss.detach()),
                "entropy": float(entropy.detach()),
                "mean_kl_loss": float((t["logp"] - target_logp.detach()).mean()),
                "total_loss": float(total.detach()),
                "gradients_default_optimizer_global_norm": norm,
                "default_optimizer_learning_rate": lr,
                "curr_entropy_coeff": ent_coeff,
                "num_module_steps_trained": float(T * B),
            }
        return stats


def concat_time_major(results: list[SampleResult]) -> Batch:
    out: Batch = {}
    mids = results[0].batch.keys()
    for mid in mids:
        cols = [r.batch[mid] for r in results]
        out[mid] = {
            k: np.concatenate([c[k] for c in cols], axis=0 if k == "bootstrap_obs" else 1)
            for k in cols[0]
        }
    return out


class IMPALA(Algorithm):
    """Importance-weighted actor-learner: asynchronous sampling, V-trace off-policy correction."""

    config_class = IMPALAConfig
    learner_class = IMPALALearner
    module_builder = staticmethod(build_module)
    policy_builder = staticmethod(make_policy)

    def setup(self, config: AlgorithmConfig) -> None:
        super().setup(config)
        self._updates = 0

    def training_step(self) -> tuple[list[SampleResult], Stats]:
        c = self.config
        group, learners = self.env_runner_group, self.learner_group
        assert group is not None and learners is not None
        frag = c.get_rollout_fragment_length()
        if group.local is not None:
            results = group.sample(frag, c.total_train_batch_size, c.explore, self.timestep)
        else:
            results = []
            steps = 0
            per_runner = c.max_requests_in_flight_per_env_runner
            while steps < c.total_train_batch_size:
                group.submit_missing(frag, c.explore, self.timestep + steps, per_runner)
                for r in group.fetch_ready(timeout=c.sample_timeout_s or 60.0):
                    results.append(r)
                    steps += r.env_steps
            # Keep the runners busy while the learner works on what arrived.
            group.submit_missing(frag, c.explore, self.timestep + steps, per_runner)
        by_width: dict[int, list[SampleResult]] = {}
        for r in results:  # fragments of one length train together
            by_width.setdefault(next(iter(r.batch.values()))["rewards"].shape[0], []).append(r)
        stats: Stats = {}
        trained = 0
        for group_results in by_width.values():
            stats = learners.update(
                concat_time_major(group_results), self.timestep, IMPALALearner.split_batch
            )
            trained += sum(r.env_steps for r in group_results)
            self._updates += 1
            if self._updates % c.broadcast_interval == 0:
                self._sync_weights()
        stats[ALL_MODULES] = {"num_env_steps_trained": float(trained)}
        return results, stats

    def _result(self, *args: Any) -> dict[str, Any]:
        result = super()._result(*args)
        group = self.env_runner_group
        assert group is not None
        result["env_runner_group"]["actor_manager_num_outstanding_async_reqs"] = len(
            group._in_flight
        )
        return result


Impala = IMPALA
ImpalaConfig = IMPALAConfig

__all__ = ["IMPALA", "IMPALAConfig", "IMPALALearner", "Impala", "ImpalaConfig", "vtrace"]
