"""Algorithm: the training loop shared by every algorithm, and what scripts call on it.

``train()`` runs the algorithm's ``training_step`` until the iteration's minimum time and
sample counts are met and returns one result dict; ``evaluate()``, checkpoints
(``save``/``restore``/``from_checkpoint``), ``compute_single_action`` and ``stop`` are here
too. The algorithm-specific parts are the config class, the learner class, and two picklable
builders: one making a torch module for a module id, one making the runners' rollout policy.
It is also a tune trainable: ``cls(config_dict)``, ``train``, ``save_checkpoint``,
``load_checkpoint``, ``stop`` and ``default_resource_request``.
"""

from __future__ import annotations

import datetime
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from nebula.rl import _checkpoint
from nebula.rl._config import DEFAULT_MODULE_ID, AlgorithmConfig, ConfigError
from nebula.rl._env_runner import EnvRunner, EnvRunnerGroup, RunnerSpec, SampleResult
from nebula.rl._envs import EnvContext, flatten_obs, is_multi_agent_env, resolve_env_creator
from nebula.rl._learner import Learner, LearnerGroup, Stats
from nebula.rl._results import ALL_MODULES, EpisodeWindow, evaluation_metrics

import nebula


@dataclass(frozen=True)
class ModuleSpec:
    """The spaces a module is built for (one per policy id)."""

    observation_space: Any
    action_space: Any


def _build_learner(
    learner_class: type[Learner],
    module_builder: Callable[..., Any],
    config: AlgorithmConfig,
    specs: dict[str, ModuleSpec],
    rank: int,
    world_size: int,
) -> Learner:
    import torch

    if config.seed is not None:
        torch.manual_seed(config.seed)
    modules = {
        mid: module_builder(config, mid, spec.observation_space, spec.action_space)
        for mid, spec in specs.items()
    }
    return learner_class(config, modules, rank, world_size)


def _learner_cpus(config: AlgorithmConfig) -> float:
    """A learner actor's CPUs; "auto" is 1, or 0 for a learner on a GPU (as in RLlib)."""
    cpus = config.num_cpus_per_learner
    if cpus == "auto":
        return 0.0 if config.num_gpus_per_learner > 0 else 1.0
    return float(cpus)


class Algorithm:
    """Base class of every algorithm; build one with ``SomeConfig().build_algo()``."""

    config_class: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    learner_class: ClassVar[type[Learner]] = Learner
    # (config, module_id, observation_space, action_space) -> torch module
    module_builder: ClassVar[Callable[..., Any]]
    # (config, module_id, observation_space, action_space) -> RolloutPolicy
    policy_builder: ClassVar[Callable[..., Any]]

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
        return cls.config_class(cls)

    def __init__(
        self,
        config: AlgorithmConfig | dict[str, Any] | None = None,
        env: Any = None,
        logger_creator: Any = None,
        **kwargs: Any,
    ) -> None:
        if config is None:
            built = self.get_default_config()
        elif isinstance(config, dict):
            built = self.get_default_config().update_from_dict(config)
        elif isinstance(config, AlgorithmConfig):
            built = config.copy()
        else:
            raise TypeError(f"config must be an AlgorithmConfig or a dict, not {type(config)}")
        if env is not None:
            built.environment(env)
        built.algo_class = type(self)
        built.validate()
        self.config: AlgorithmConfig = built
        config = built
        self.iteration = 0
        self._time_total = 0.0
        self._iterations_since_restore = 0
        self.counters: dict[str, int] = {
            "num_env_steps_sampled_lifetime": 0,
            "num_agent_steps_sampled_lifetime": 0,
            "num_env_steps_trained_lifetime": 0,
            "num_episodes_lifetime": 0,
        }
        self._episodes = EpisodeWindow(built.metrics_num_episodes_for_smoothing)
        self.callbacks = built.callbacks_class() if built.callbacks_class else None
        self._local_policies: dict[str, Any] = {}
        self._local_policy_version = -1
        self.eval_env_runner_group: EnvRunnerGroup | None = None
        self.env_runner_group: EnvRunnerGroup | None = None
        self.learner_group: LearnerGroup | None = None
        if not nebula.is_initialized():
            nebula.init()
        self._check_resources()
        self.setup(config)
        self._callback("on_algorithm_init", algorithm=self, metrics_logger=None)

    # ------------------------------------------------------------------ set-up
    @classmethod
    def default_resource_request(cls, config: Any) -> list[dict[str, float]]:
        """A tune trial's bundles: the main process's, then one per env runner (evaluation
        ones included) and one per learner actor. Tune reserves them as one placement group
        that captures the actors the algorithm starts."""
        if isinstance(config, dict):
            config = cls.get_default_config().update_from_dict(
                {k: v for k, v in config.items() if not _is_search_space(v)}
            )
        c = config
        main = {"CPU": float(c.num_cpus_for_main_process), "GPU": float(c.num_gpus)}
        if c.num_learners == 0:
            main["GPU"] += c.num_gpus_per_learner
        runner = {
            "CPU": float(c.num_cpus_per_env_runner),
            "GPU": float(c.num_gpus_per_env_runner),
            **{k: float(v) for k, v in (c.custom_resources_per_env_runner or {}).items()},
        }
        learner = {"CPU": _learner_cpus(c), "GPU": float(c.num_gpus_per_learner)}
        runners = c.num_env_runners + c.evaluation_num_env_runners
        bundles = [main] + [dict(runner) for _ in range(runners)]
        bundles += [dict(learner) for _ in range(c.num_learners)]
        return [{k: v for k, v in b.items() if v > 0} for b in bundles]

    def _check_resources(self) -> None:
        c = self.config
        needed = (
            c.num_env_runners * c.num_cpus_per_env_runner
            + c.num_learners * _learner_cpus(c)
            + c.evaluation_num_env_runners * c.num_cpus_per_env_runner
        )
        total = nebula.cluster_resources().get("CPU", 0)
        if needed > total:
            raise ConfigError(
                f"the algorithm's actors need {needed:g} CPUs but the cluster has {total:g}; "
                "lower num_env_runners / num_learners (or num_cpus_per_env_runner)"
            )

    def _module_specs(self, creator: Callable[[Any], Any]) -> dict[str, ModuleSpec]:
        c = self.config
        env = creator(EnvContext(c.env_config, 0, 0, c.num_env_runners))
        try:
            if is_multi_agent_env(env):
                from nebula.rl._multi_agent import module_specs

                return module_specs(c, env)
            obs_space = c.observation_space or env.observation_space
            act_space = c.action_space or env.action_space
            return {DEFAULT_MODULE_ID: ModuleSpec(obs_space, act_space)}
        finally:
            env.close()

    def setup(self, config: AlgorithmConfig) -> None:
        creator = resolve_env_creator(config.env)
        self.module_specs = self._module_specs(creator)
        cls = type(self)
        factory = functools.partial(
            _build_learner, cls.learner_class, cls.module_builder, config, self.module_specs
        )
        self.learner_group = LearnerGroup(
            factory,
            config.num_learners,
            num_cpus=_learner_cpus(config),
            num_gpus=config.num_gpus_per_learner,
        )
        self._env_creator = creator
        self.env_runner_group = self._make_runner_group(config, config.num_env_runners)
        self._sync_weights()

    def _runner_spec(self, config: AlgorithmConfig) -> RunnerSpec:
        multi = None
        if config.is_multi_agent:
            from nebula.rl._multi_agent import MultiAgentSpec

            multi = MultiAgentSpec.from_config(config, type(self).policy_builder, self.module_specs)
        return RunnerSpec(
            env_creator=self._env_creator,
            env_config=dict(config.env_config or {}),
            num_envs=config.num_envs_per_env_runner,
            policy_factory=functools.partial(type(self).policy_builder, config, DEFAULT_MODULE_ID),
            vectorize_mode=config.gym_env_vectorize_mode,
            num_workers=config.num_env_runners,
            seed=config.seed,
            clip_rewards=config.clip_rewards,
            multi_agent=multi,
        )

    def _make_runner_group(self, config: AlgorithmConfig, num_runners: int) -> EnvRunnerGroup:
        return EnvRunnerGroup(
            self._runner_spec(config),
            num_runners,
            num_cpus=config.num_cpus_per_env_runner,
            num_gpus=config.num_gpus_per_env_runner,
            resources=config.custom_resources_per_env_runner or None,
            restart_failed=config.restart_failed_env_runners,
            ignore_failures=config.ignore_env_runner_failures,
            max_restarts=config.max_num_env_runner_restarts,
            restart_delay_s=config.delay_between_env_runner_restarts_s,
            on_recreated=self._on_runners_recreated,
        )

    def _on_runners_recreated(self, indices: list[int]) -> None:
        self._callback(
            "on_env_runners_recreated",
            algorithm=self,
            env_runner_group=self.env_runner_group,
            env_runner_indices=indices,
            is_evaluation=False,
        )

    def _sync_weights(self) -> None:
        assert self.learner_group is not None and self.env_runner_group is not None
        self.env_runner_group.set_weights(self.learner_group.inference_state())

    # ------------------------------------------------------------------ training
    def training_step(self) -> tuple[list[SampleResult], Stats]:
        """One round of sampling and learning; returns the samples and the learner stats."""
        raise NotImplementedError

    def _count_samples(self, results: list[SampleResult]) -> tuple[int, int, int]:
        env_steps = sum(r.env_steps for r in results)
        agent_steps = sum(r.agent_steps for r in results)
        episodes = 0
        for r in results:
            self._episodes.add(r)
            episodes += len(r.episode_returns)
        self.counters["num_env_steps_sampled_lifetime"] += env_steps
        self.counters["num_agent_steps_sampled_lifetime"] += agent_steps
        self.counters["num_episodes_lifetime"] += episodes
        return env_steps, agent_steps, episodes

    @property
    def timestep(self) -> int:
        return self.counters["num_env_steps_sampled_lifetime"]

    def train(self) -> dict[str, Any]:
        """One training iteration; the result dict (see the package README for its keys)."""
        c = self.config
        start = time.time()
        env_steps = agent_steps = episodes = trained = calls = 0
        learner_stats: Stats = {}
        while True:
            samples, stats = self.training_step()
            calls += 1
            e, a, n = self._count_samples(samples)
            env_steps, agent_steps, episodes = env_steps + e, agent_steps + a, episodes + n
            if stats:
                learner_stats = stats
                trained += int(stats.get(ALL_MODULES, {}).get("num_env_steps_trained", 0))
            elapsed = time.time() - start
            if (
                elapsed >= (c.min_time_s_per_iteration or 0)
                and env_steps >= (c.min_sample_timesteps_per_iteration or 0)
                and trained >= (c.min_train_timesteps_per_iteration or 0)
            ):
                break
        self.counters["num_env_steps_trained_lifetime"] += trained
        self.iteration += 1
        self._iterations_since_restore += 1
        result = self._result(env_steps, agent_steps, episodes, trained, learner_stats, calls)
        if c.evaluation_interval and self.iteration % c.evaluation_interval == 0:
            result["evaluation"] = self._evaluate_metrics()
        result["time_this_iter_s"] = time.time() - start
        self._time_total += result["time_this_iter_s"]
        result["time_total_s"] = self._time_total
        self._callback("on_train_result", algorithm=self, result=result, metrics_logger=None)
        return result

    def _result(
        self,
        env_steps: int,
        agent_steps: int,
        episodes: int,
        trained: int,
        stats: Stats,
        calls: int,
    ) -> dict[str, Any]:
        runners = self._episodes.env_runner_metrics()
        lifetime = self.counters["num_env_steps_sampled_lifetime"]
        runners.update(
            num_episodes=episodes,
            num_episodes_lifetime=self.counters["num_episodes_lifetime"],
            num_env_steps_sampled=env_steps,
            num_env_steps_sampled_lifetime=lifetime,
            num_agent_steps_sampled=agent_steps,
            num_agent_steps_sampled_lifetime=self.counters["num_agent_steps_sampled_lifetime"],
        )
        learners: dict[str, Any] = {mid: dict(s) for mid, s in stats.items()}
        learners.setdefault(ALL_MODULES, {}).update(
            num_env_steps_trained=trained,
            num_env_steps_trained_lifetime=self.counters["num_env_steps_trained_lifetime"],
        )
        group = self.env_runner_group
        assert group is not None
        now = datetime.datetime.now()
        return {
            "env_runners": runners,
            "learners": learners,
            "fault_tolerance": {
                "num_healthy_workers": group.num_healthy,
                "num_remote_worker_restarts": group.num_restarts,
                "num_env_runners_dropped_lifetime": group.num_dropped,
            },
            "env_runner_group": {"actor_manager_num_outstanding_async_reqs": 0},
            "training_iteration": self.iteration,
            "iterations_since_restore": self._iterations_since_restore,
            "num_training_step_calls_per_iteration": calls,
            "num_env_steps_sampled_lifetime": lifetime,
            "num_agent_steps_sampled_lifetime": self.counters["num_agent_steps_sampled_lifetime"],
            "num_env_steps_trained_lifetime": self.counters["num_env_steps_trained_lifetime"],
            "timesteps_total": lifetime,
            "episode_return_mean": runners["episode_return_mean"],
            "episode_reward_mean": runners["episode_return_mean"],
            "episode_len_mean": runners["episode_len_mean"],
            "done": False,
            "timestamp": int(now.timestamp()),
            "date": now.strftime("%Y-%m-%d_%H-%M-%S"),
            "pid": os.getpid(),
        }

    # ------------------------------------------------------------------ evaluation
    def _evaluation_group(self) -> EnvRunnerGroup:
        if self.eval_env_runner_group is None:
            eval_config = self.config.get_evaluation_config_object()
            self._eval_config = eval_config
            self.eval_env_runner_group = self._make_runner_group(
                eval_config, self.config.evaluation_num_env_runners
            )
        return self.eval_env_runner_group

    def _evaluate_metrics(self) -> dict[str, Any]:
        group = self._evaluation_group()
        assert self.learner_group is not None
        group.set_weights(self.learner_group.inference_state())
        c = self.config
        duration = 10 if c.evaluation_duration == "auto" else c.evaluation_duration
        self._callback("on_evaluate_start", algorithm=self, metrics_logger=None)
        results = group.evaluate(
            duration, c.evaluation_duration_unit, self._eval_config.explore, self.timestep
        )
        metrics = {"env_runners": evaluation_metrics(results)}
        metrics["fault_tolerance"] = {
            "num_healthy_workers": group.num_healthy,
            "num_remote_worker_restarts": group.num_restarts,
        }
        self._callback(
            "on_evaluate_end", algorithm=self, metrics_logger=None, evaluation_metrics=metrics
        )
        return metrics

    def evaluate(self) -> dict[str, Any]:
        """Roll out ``evaluation_duration`` episodes with the current weights.

        The metrics are under ``["env_runners"]`` and, as a train result holds them, under
        ``["evaluation"]["env_runners"]`` too.
        """
        metrics = self._evaluate_metrics()
        return {**metrics, "evaluation": metrics}

    # ------------------------------------------------------------------ acting
    def _local_policy(self, policy_id: str) -> Any:
        assert self.env_runner_group is not None
        version = self.env_runner_group.version
        if version != self._local_policy_version:
            self._local_policies.clear()
            self._local_policy_version = version
        if policy_id not in self._local_policies:
            if policy_id not in self.module_specs:
                raise KeyError(
                    f"no policy {policy_id!r}; the policies are {sorted(self.module_specs)}"
                )
            spec = self.module_specs[policy_id]
            policy = type(self).policy_builder(
                self.config, policy_id, spec.observation_space, spec.action_space
            )
            assert self.learner_group is not None
            policy.load({policy_id: self.learner_group.inference_state()[policy_id]})
            self._local_policies[policy_id] = policy
        return self._local_policies[policy_id]

    def compute_single_action(
        self,
        observation: Any = None,
        state: Any = None,
        *,
        prev_action: Any = None,
        prev_reward: Any = None,
        info: Any = None,
        input_dict: Any = None,
        policy_id: str = DEFAULT_MODULE_ID,
        full_fetch: bool = False,
        explore: bool | None = None,
        timestep: int | None = None,
        unsquash_action: bool | None = None,
        clip_action: bool | None = None,
    ) -> Any:
        """The action the policy takes for one observation (sampled unless ``explore=False``)."""
        if observation is None and input_dict is not None:
            observation = input_dict["obs"]
        policy = self._local_policy(policy_id)
        space = self.module_specs[policy_id].observation_space
        obs = flatten_obs(space, observation, batched=False)[None]
        explore = self.config.explore if explore is None else explore
        actions, extras = policy.act(obs, explore, self.timestep if timestep is None else timestep)
        action = policy.to_env_actions(actions)[0]
        if full_fetch:
            return action, [], {k: v[0] for k, v in extras.items()}
        return action

    def compute_actions(self, observations: dict[Any, Any], **kwargs: Any) -> dict[Any, Any]:
        return {k: self.compute_single_action(o, **kwargs) for k, o in observations.items()}

    def get_policy(self, policy_id: str = DEFAULT_MODULE_ID) -> Any:
        from nebula.rl.policy.policy import Policy

        self._local_policy(policy_id)
        return Policy(self, policy_id)

    def get_module(self, module_id: str = DEFAULT_MODULE_ID) -> Any:
        """The torch module of ``module_id`` (a copy when the learners are remote)."""
        assert self.learner_group is not None
        if self.learner_group.local is not None:
            return self.learner_group.local.modules[module_id]
        return self._local_policy(module_id).module

    def get_weights(self, policies: list[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
        assert self.learner_group is not None
        modules = self.learner_group.get_state()["modules"]
        return {mid: w for mid, w in modules.items() if policies is None or mid in policies}

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        assert self.learner_group is not None
        state = self.learner_group.get_state()
        for mid, w in weights.items():
            state["modules"][mid].update(w)
        self.learner_group.set_state(state)
        self._sync_weights()

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        assert self.learner_group is not None
        return {
            "algorithm_class": type(self),
            "config": self.config,
            "iteration": self.iteration,
            "time_total": self._time_total,
            "counters": dict(self.counters),
            "episodes": self._episodes.get_state(),
            "learner": self.learner_group.get_state(),
            "extra": self.extra_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        assert self.learner_group is not None
        self.iteration = state["iteration"]
        self._time_total = state["time_total"]
        self.counters.update(state["counters"])
        self._episodes.set_state(state["episodes"])
        self.learner_group.set_state(state["learner"])
        self.set_extra_state(state.get("extra", {}))
        self._iterations_since_restore = 0
        self._sync_weights()

    def extra_state(self) -> dict[str, Any]:
        return {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def save_to_path(self, path: str | os.PathLike[str] | None = None) -> str:
        path = _checkpoint.default_path(self) if path is None else os.fspath(path)
        _checkpoint.write(path, self.get_state())
        return path

    def save(self, checkpoint_dir: str | os.PathLike[str] | None = None) -> _checkpoint.SaveResult:
        """Write a checkpoint; ``.checkpoint.path`` (or ``str()`` of the result) is where."""
        path = self.save_to_path(checkpoint_dir)
        return _checkpoint.SaveResult(
            _checkpoint.Checkpoint(path), {"training_iteration": self.iteration}
        )

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.save_to_path(checkpoint_dir)

    def load_checkpoint(self, checkpoint_dir: str | os.PathLike[str]) -> None:
        self.set_state(_checkpoint.read(os.fspath(checkpoint_dir)))
        self._callback("on_checkpoint_loaded", algorithm=self)

    def restore(self, checkpoint: Any) -> None:
        """Continue from a checkpoint (a path, a ``save()`` result or a checkpoint object)."""
        self.load_checkpoint(_checkpoint.to_path(checkpoint))

    restore_from_path = restore

    @classmethod
    def from_checkpoint(cls, path: Any, **kwargs: Any) -> Algorithm:
        """A new algorithm of the saved class and config, in the saved state."""
        directory = _checkpoint.to_path(path)
        state = _checkpoint.read(directory)
        algo_class = state["algorithm_class"]
        algo = algo_class(state["config"])
        algo.set_state(state)
        return algo  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ lifecycle
    def _callback(self, name: str, **kwargs: Any) -> None:
        if self.callbacks is not None and hasattr(self.callbacks, name):
            getattr(self.callbacks, name)(**kwargs)
        function = self.config.get(name)
        if function is not None:
            function(**kwargs)

    def stop(self) -> None:
        """Stop the env runners and learners (the cluster keeps running)."""
        for group in (self.env_runner_group, self.eval_env_runner_group):
            if group is not None:
                group.stop()
        if self.learner_group is not None:
            self.learner_group.stop()
        self.env_runner_group = self.eval_env_runner_group = None

    cleanup = stop

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.config.env!r})"


def _is_search_space(value: Any) -> bool:
    from nebula.rl._settings import is_search_space

    return is_search_space(value)


__all__ = ["Algorithm", "EnvRunner", "ModuleSpec"]
