"""AlgorithmConfig: the chained builder every algorithm is configured with.

Each section method (``environment``, ``env_runners``, ``training``...) takes the settings of
its section as keywords and checks each one there, so ``.training(lrr=0.1)`` fails at that
call saying ``did you mean 'lr'``. Algorithms add their own training settings and default
values by subclassing with ``_extra_settings`` and ``_defaults``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from typing import Any, ClassVar

from nebula.rl import _settings as s
from nebula.rl._settings import ConfigError, Setting, unknown_setting, validate
from nebula.rl.core.rl_module.default_model_config import MODEL_KEYS, DefaultModelConfig

DEFAULT_MODULE_ID = "default_policy"


def _env(value: Any) -> str | None:
    if value is None or isinstance(value, str) or callable(value):
        return None
    return "a registered env name, a gymnasium id, an env class or a creator function"


def _policies(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, set, list, tuple)):
        return None
    return "a dict of policy id -> PolicySpec, or a set of policy ids"


def _to_train(value: Any) -> str | None:
    if value is None or callable(value) or isinstance(value, (set, list, tuple)):
        return None
    return "None, a collection of policy ids or a function (policy_id, batch) -> bool"


def _model_config(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, DefaultModelConfig)):
        return None
    return "a DefaultModelConfig or a dict"


_BASE: list[tuple[str, str, Any, s.Check]] = [
    # environment
    ("environment", "env", None, _env),
    ("environment", "env_config", {}, s.optional(s.mapping)),
    ("environment", "observation_space", None, s.anything),
    ("environment", "action_space", None, s.anything),
    ("environment", "render_env", False, s.boolean),
    ("environment", "clip_rewards", None, s.optional(s.either(s.boolean, s.number(0)))),
    ("environment", "normalize_actions", True, s.boolean),
    ("environment", "clip_actions", False, s.boolean),
    ("environment", "disable_env_checking", False, s.boolean),
    ("environment", "is_atari", False, s.boolean),
    # env_runners
    ("env_runners", "num_env_runners", 0, s.integer(0)),
    ("env_runners", "num_envs_per_env_runner", 1, s.integer(1)),
    ("env_runners", "rollout_fragment_length", "auto", s.either(s.one_of("auto"), s.integer(1))),
    (
        "env_runners",
        "batch_mode",
        "truncate_episodes",
        s.one_of("truncate_episodes", "complete_episodes"),
    ),
    ("env_runners", "explore", True, s.boolean),
    ("env_runners", "num_cpus_per_env_runner", 1, s.number(0)),
    ("env_runners", "num_gpus_per_env_runner", 0, s.number(0)),
    ("env_runners", "custom_resources_per_env_runner", {}, s.mapping),
    ("env_runners", "gym_env_vectorize_mode", "SYNC", s.one_of("SYNC", "ASYNC")),
    ("env_runners", "sample_timeout_s", 60.0, s.optional(s.number(0, lo_open=True))),
    ("env_runners", "create_env_on_local_worker", False, s.boolean),
    ("env_runners", "max_requests_in_flight_per_env_runner", 1, s.integer(1)),
    ("env_runners", "observation_filter", "NoFilter", s.one_of("NoFilter")),
    # learners
    ("learners", "num_learners", 0, s.integer(0)),
    ("learners", "num_cpus_per_learner", 1, s.either(s.one_of("auto"), s.number(0))),
    ("learners", "num_gpus_per_learner", 0, s.number(0)),
    ("learners", "learner_config_dict", {}, s.mapping),
    # training
    ("training", "gamma", 0.99, s.number(0, 1)),
    ("training", "lr", 0.001, s.schedule),
    ("training", "grad_clip", None, s.optional(s.number(0, lo_open=True))),
    ("training", "grad_clip_by", "global_norm", s.one_of("global_norm", "norm", "value")),
    ("training", "train_batch_size", 4000, s.integer(1)),
    ("training", "train_batch_size_per_learner", None, s.optional(s.integer(1))),
    ("training", "num_epochs", 1, s.integer(1)),
    ("training", "minibatch_size", None, s.optional(s.integer(1))),
    ("training", "shuffle_batch_per_epoch", True, s.boolean),
    ("training", "model", {}, s.mapping),
    ("training", "optimizer", {}, s.mapping),
    # rl_module
    ("rl_module", "model_config", None, _model_config),
    ("rl_module", "rl_module_spec", None, s.anything),
    # resources
    ("resources", "num_gpus", 0, s.number(0)),
    ("resources", "num_cpus_for_main_process", 1, s.number(0)),
    (
        "resources",
        "placement_strategy",
        "PACK",
        s.one_of("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"),
    ),
    # framework and api_stack (only torch and the new stack exist here)
    ("framework", "framework", "torch", s.one_of("torch")),
    ("framework", "torch_compile_learner", False, s.boolean),
    ("framework", "torch_compile_worker", False, s.boolean),
    ("api_stack", "enable_rl_module_and_learner", True, s.boolean),
    ("api_stack", "enable_env_runner_and_connector_v2", True, s.boolean),
    # evaluation
    ("evaluation", "evaluation_interval", None, s.optional(s.integer(1))),
    ("evaluation", "evaluation_duration", 10, s.either(s.one_of("auto"), s.integer(1))),
    ("evaluation", "evaluation_duration_unit", "episodes", s.one_of("episodes", "timesteps")),
    ("evaluation", "evaluation_num_env_runners", 0, s.integer(0)),
    ("evaluation", "evaluation_config", None, s.optional(s.mapping)),
    ("evaluation", "evaluation_parallel_to_training", False, s.boolean),
    ("evaluation", "evaluation_sample_timeout_s", 120.0, s.number(0, lo_open=True)),
    ("evaluation", "always_attach_evaluation_results", True, s.boolean),
    # multi_agent
    ("multi_agent", "policies", None, _policies),
    ("multi_agent", "policy_mapping_fn", None, s.optional(s.callable_value)),
    ("multi_agent", "policies_to_train", None, _to_train),
    ("multi_agent", "count_steps_by", "env_steps", s.one_of("env_steps", "agent_steps")),
    # reporting
    ("reporting", "metrics_num_episodes_for_smoothing", 100, s.integer(1)),
    ("reporting", "min_time_s_per_iteration", None, s.optional(s.number(0))),
    ("reporting", "min_sample_timesteps_per_iteration", 0, s.integer(0)),
    ("reporting", "min_train_timesteps_per_iteration", 0, s.integer(0)),
    ("reporting", "keep_per_episode_custom_metrics", False, s.boolean),
    # checkpointing
    ("checkpointing", "export_native_model_files", False, s.boolean),
    ("checkpointing", "checkpoint_trainable_policies_only", False, s.boolean),
    # debugging
    ("debugging", "seed", None, s.optional(s.integer(0))),
    ("debugging", "log_level", "WARN", s.one_of("DEBUG", "INFO", "WARN", "WARNING", "ERROR")),
    ("debugging", "log_sys_usage", True, s.boolean),
    # fault_tolerance
    ("fault_tolerance", "restart_failed_env_runners", True, s.boolean),
    ("fault_tolerance", "ignore_env_runner_failures", False, s.boolean),
    ("fault_tolerance", "max_num_env_runner_restarts", 1000, s.integer(0)),
    ("fault_tolerance", "delay_between_env_runner_restarts_s", 0.0, s.number(0)),
    ("fault_tolerance", "restart_failed_sub_environments", False, s.boolean),
    ("fault_tolerance", "env_runner_health_probe_timeout_s", 30.0, s.number(0, lo_open=True)),
    ("fault_tolerance", "env_runner_restore_timeout_s", 1800.0, s.number(0, lo_open=True)),
    # callbacks
    ("callbacks", "callbacks_class", None, s.optional(s.callable_value)),
    ("callbacks", "on_algorithm_init", None, s.optional(s.callable_value)),
    ("callbacks", "on_train_result", None, s.optional(s.callable_value)),
    ("callbacks", "on_evaluate_start", None, s.optional(s.callable_value)),
    ("callbacks", "on_evaluate_end", None, s.optional(s.callable_value)),
    ("callbacks", "on_checkpoint_loaded", None, s.optional(s.callable_value)),
    ("callbacks", "on_env_runners_recreated", None, s.optional(s.callable_value)),
]

# Older names kept working: old name -> (section, current name).
_ALIASES: dict[str, str] = {
    "num_rollout_workers": "num_env_runners",
    "num_envs_per_worker": "num_envs_per_env_runner",
    "num_sgd_iter": "num_epochs",
    "sgd_minibatch_size": "minibatch_size",
    "evaluation_num_workers": "evaluation_num_env_runners",
    "recreate_failed_env_runners": "restart_failed_env_runners",
    "recreate_failed_workers": "restart_failed_env_runners",
    "ignore_worker_failures": "ignore_env_runner_failures",
    "max_num_worker_restarts": "max_num_env_runner_restarts",
    "num_cpus_per_worker": "num_cpus_per_env_runner",
    "num_gpus_per_worker": "num_gpus_per_env_runner",
    "num_learner_workers": "num_learners",
    "lambda": "lambda_",
    "model_config_dict": "model_config",
    "callbacks": "callbacks_class",
}

# Keys of ``to_dict()`` that are not settings but are accepted back by ``update_from_dict``.
_IGNORED_KEYS = frozenset({"algo_class", "class", "in_evaluation"})


class AlgorithmConfig:
    """Settings of an algorithm, set in chained sections and checked as they are set."""

    _extra_settings: ClassVar[list[tuple[str, str, Any, s.Check]]] = []
    _defaults: ClassVar[dict[str, Any]] = {}
    _settings: ClassVar[dict[str, Setting]] = {}
    _algo_class_path: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, Setting] = dict(AlgorithmConfig._settings)
        for base in reversed(cls.__mro__[1:]):
            table.update(getattr(base, "_settings", {}))
        for section, name, default, check in cls.__dict__.get("_extra_settings", []):
            table[name] = Setting(name, section, default, check)
        merged_defaults: dict[str, Any] = {}
        for base in reversed(cls.__mro__):
            merged_defaults.update(base.__dict__.get("_defaults", {}))
        for name, default in merged_defaults.items():
            old = table[name]
            table[name] = Setting(name, old.section, default, old.check)
        cls._settings = table

    def __init__(self, algo_class: type | None = None) -> None:
        values = {n: copy.deepcopy(st.default) for n, st in self._settings.items()}
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_algo_class", algo_class)
        object.__setattr__(self, "in_evaluation", False)
        self._values["model_config"] = _merge_model_config(None, {})

    # ---------------------------------------------------------------- attribute access
    @property
    def algo_class(self) -> type:
        if self._algo_class is None:
            if self._algo_class_path is None:
                raise ConfigError("this config names no algorithm; pass algo_class=")
            import importlib

            module, _, name = self._algo_class_path.rpartition(".")
            object.__setattr__(self, "_algo_class", getattr(importlib.import_module(module), name))
        return self._algo_class  # type: ignore[return-value]

    @algo_class.setter
    def algo_class(self, value: type) -> None:
        object.__setattr__(self, "_algo_class", value)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        if values is not None and name in _ALIASES and _ALIASES[name] in values:
            return values[_ALIASES[name]]
        raise AttributeError(
            f"{type(self).__name__} has no setting {name!r}"
            + (f"; did you mean {g!r}?" if (g := s.closest(name, self._settings)) else "")
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "algo_class":
            object.__setattr__(self, "_algo_class", value)
            return
        if name == "in_evaluation":
            object.__setattr__(self, name, value)
            return
        self._set_one("config", name, value)

    def _set_one(self, section: str, name: str, value: Any) -> None:
        name = _ALIASES.get(name, name)
        setting = self._settings.get(name)
        allowed = (
            [n for n, st in self._settings.items() if st.section == section]
            if section != "config"
            else list(self._settings)
        )
        if setting is None or (section != "config" and setting.section != section):
            if setting is not None:
                raise s.UnknownSettingError(
                    f"{section}() has no setting {name!r}; it belongs to .{setting.section}()"
                )
            raise unknown_setting(section, name, allowed)
        validate(setting, value)
        if name == "model_config":
            value = _merge_model_config(value, {})
        elif name == "model":
            _check_model_keys(value, "training(model=...)")
            self._values["model_config"] = _merge_model_config(self._values["model_config"], value)
        self._values[name] = value

    def _update(self, section: str, settings: dict[str, Any]) -> AlgorithmConfig:
        for name, value in settings.items():
            self._set_one(section, name, value)
        return self

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def __setitem__(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._values

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(_ALIASES.get(name, name), default)

    def keys(self) -> Iterator[str]:
        return iter(self._values)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self._values.items())

    # ---------------------------------------------------------------- sections
    def environment(self, env: Any = s.NOT_PROVIDED, **settings: Any) -> AlgorithmConfig:
        """The env (registered name, gymnasium id, class or creator) and how to build it."""
        if env is not s.NOT_PROVIDED:
            settings["env"] = env
        return self._update("environment", settings)

    def env_runners(self, **settings: Any) -> AlgorithmConfig:
        """How many EnvRunner actors sample, each with how many vectorized envs."""
        return self._update("env_runners", settings)

    rollouts = env_runners

    def learners(self, **settings: Any) -> AlgorithmConfig:
        """How many Learner actors update the weights (0: one learner in this process)."""
        return self._update("learners", settings)

    def training(self, **settings: Any) -> AlgorithmConfig:
        """Learning settings: ``lr``, ``gamma``, ``train_batch_size``... and the algorithm's."""
        return self._update("training", settings)

    def rl_module(self, **settings: Any) -> AlgorithmConfig:
        """The networks: ``model_config=DefaultModelConfig(...)`` or ``rl_module_spec=``."""
        return self._update("rl_module", settings)

    def resources(self, **settings: Any) -> AlgorithmConfig:
        return self._update("resources", settings)

    def framework(self, framework: Any = s.NOT_PROVIDED, **settings: Any) -> AlgorithmConfig:
        if framework is not s.NOT_PROVIDED:
            settings["framework"] = framework
        return self._update("framework", settings)

    def api_stack(self, **settings: Any) -> AlgorithmConfig:
        return self._update("api_stack", settings)

    def evaluation(self, **settings: Any) -> AlgorithmConfig:
        return self._update("evaluation", settings)

    def multi_agent(self, **settings: Any) -> AlgorithmConfig:
        """``policies``, ``policy_mapping_fn(agent_id, episode, **kw)``, ``policies_to_train``."""
        return self._update("multi_agent", settings)

    def reporting(self, **settings: Any) -> AlgorithmConfig:
        return self._update("reporting", settings)

    def checkpointing(self, **settings: Any) -> AlgorithmConfig:
        return self._update("checkpointing", settings)

    def debugging(self, **settings: Any) -> AlgorithmConfig:
        return self._update("debugging", settings)

    def fault_tolerance(self, **settings: Any) -> AlgorithmConfig:
        return self._update("fault_tolerance", settings)

    def callbacks(self, callbacks_class: Any = s.NOT_PROVIDED, **settings: Any) -> AlgorithmConfig:
        if callbacks_class is not s.NOT_PROVIDED:
            settings["callbacks_class"] = callbacks_class
        return self._update("callbacks", settings)

    # ---------------------------------------------------------------- derived values
    @property
    def is_multi_agent(self) -> bool:
        return bool(self._values["policies"])

    @property
    def model_config_dict(self) -> dict[str, Any]:
        return dict(self._values["model_config"])

    @property
    def total_train_batch_size(self) -> int:
        per_learner = self._values["train_batch_size_per_learner"]
        if per_learner is not None:
            return int(per_learner) * max(1, self._values["num_learners"])
        return int(self._values["train_batch_size"])

    def get_rollout_fragment_length(self, worker_index: int = 0) -> int:
        value = self._values["rollout_fragment_length"]
        if value != "auto":
            return int(value)
        runners = max(1, self._values["num_env_runners"]) * self._values["num_envs_per_env_runner"]
        return max(1, math.ceil(self.total_train_batch_size / runners))

    # ---------------------------------------------------------------- dict round trip
    def to_dict(self) -> dict[str, Any]:
        """Every setting by name: feed it to ``update_from_dict`` or ``Algorithm(config)``."""
        out = {}
        for name, value in self._values.items():
            out[name] = value if callable(value) or name == "env" else copy.deepcopy(value)
        return out

    def update_from_dict(self, config: dict[str, Any]) -> AlgorithmConfig:
        for name, value in config.items():
            if name in _IGNORED_KEYS:
                continue
            self._set_one("config", name, value)
        return self

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> AlgorithmConfig:
        return cls().update_from_dict(config)

    def copy(self, copy_frozen: bool | None = None) -> AlgorithmConfig:
        new = type(self)(self._algo_class)
        object.__setattr__(new, "_values", self.to_dict())
        object.__setattr__(new, "in_evaluation", self.in_evaluation)
        return new

    def freeze(self) -> None:
        """Kept for scripts that call it; settings are checked as they are set instead."""

    def validate(self) -> None:
        """Check the settings against each other (each alone was checked when set)."""
        v = self._values
        if v["env"] is None:
            raise ConfigError("no env is set; call .environment('CartPole-v1') or another env")
        mb = v["minibatch_size"]
        if isinstance(mb, int) and mb > self.total_train_batch_size:
            raise ConfigError(
                f"training(minibatch_size={mb}) is larger than the train batch "
                f"({self.total_train_batch_size}); lower it or raise train_batch_size"
            )
        if (
            v["policies_to_train"] is not None
            and v["policies"]
            and not callable(v["policies_to_train"])
        ):
            unknown = set(v["policies_to_train"]) - set(v["policies"])
            if unknown:
                raise ConfigError(
                    f"multi_agent(policies_to_train=...) names {sorted(unknown)}, "
                    f"which are not in policies {sorted(v['policies'])}"
                )

    def get_evaluation_config_object(self) -> AlgorithmConfig:
        evaluation = self.copy()
        evaluation.update_from_dict(self._values["evaluation_config"] or {})
        evaluation._values["num_env_runners"] = self._values["evaluation_num_env_runners"]
        object.__setattr__(evaluation, "in_evaluation", True)
        return evaluation

    def build_algo(self, env: Any = None, logger_creator: Any = None) -> Any:
        """The algorithm, built from a copy of this config (later changes do not affect it)."""
        if env is not None:
            self.environment(env)
        return self.algo_class(self.copy())

    def build(self, env: Any = None, logger_creator: Any = None) -> Any:
        return self.build_algo(env, logger_creator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self._values['env']!r}, lr={self._values['lr']!r})"


def _check_model_keys(model: dict[str, Any], where: str) -> None:
    for key in model:
        if key not in MODEL_KEYS:
            raise unknown_setting(where.split("(")[0] + " model", key, MODEL_KEYS)


def _merge_model_config(value: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, DefaultModelConfig) or (value is not None and is_dataclass(value)):
        base = asdict(value)  # type: ignore[arg-type]
    else:
        base = asdict(DefaultModelConfig())
        if isinstance(value, dict):
            _check_model_keys(value, "rl_module(model_config=...)")
            base.update(copy.deepcopy(value))
    base.update(copy.deepcopy(overrides))
    return base


AlgorithmConfig._settings = {
    name: Setting(name, section, default, check) for section, name, default, check in _BASE
}

__all__ = ["DEFAULT_MODULE_ID", "AlgorithmConfig", "ConfigError"]
