"""Environments: the name registry, env contexts, and building (vectorized) envs.

An env is named by a name given to :func:`register_env`, a gymnasium id, an env class
(constructed with the :class:`EnvContext`), or a creator function taking it. The name is
resolved to a creator on the driver, so env runners in other processes get the creator
itself and need no registry of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

EnvCreator = Callable[["EnvContext"], Any]

_REGISTRY: dict[str, EnvCreator] = {}


class EnvContext(dict):  # type: ignore[type-arg]
    """The ``env_config`` dict, plus where the env runs (``worker_index``, ``vector_index``)."""

    def __init__(
        self,
        env_config: dict[str, Any] | None = None,
        worker_index: int = 0,
        vector_index: int = 0,
        num_workers: int = 0,
        remote: bool = False,
        recreated_worker: bool = False,
    ) -> None:
        super().__init__(env_config or {})
        self.worker_index = worker_index
        self.vector_index = vector_index
        self.num_workers = num_workers
        self.remote = remote
        self.recreated_worker = recreated_worker

    def copy_with_overrides(
        self,
        env_config: dict[str, Any] | None = None,
        worker_index: int | None = None,
        vector_index: int | None = None,
    ) -> EnvContext:
        return EnvContext(
            dict(self) if env_config is None else env_config,
            self.worker_index if worker_index is None else worker_index,
            self.vector_index if vector_index is None else vector_index,
            self.num_workers,
            self.remote,
            self.recreated_worker,
        )

    def __reduce__(self) -> Any:
        return (
            EnvContext,
            (
                dict(self),
                self.worker_index,
                self.vector_index,
                self.num_workers,
                self.remote,
                self.recreated_worker,
            ),
        )


def register_env(name: str, env_creator: EnvCreator) -> None:
    """Make ``name`` usable as ``config.environment(name)``: ``env_creator(env_context)``."""
    if not isinstance(name, str) or not callable(env_creator):
        raise TypeError("register_env(name, creator): name is a str, creator a callable")
    _REGISTRY[name] = env_creator


def _make_gym(env_id: str) -> EnvCreator:
    def create(ctx: EnvContext) -> Any:
        return gym.make(env_id, **dict(ctx))

    return create


def _make_class(cls: type) -> EnvCreator:
    def create(ctx: EnvContext) -> Any:
        return cls(ctx)

    return create


def resolve_env_creator(env: Any) -> EnvCreator:
    """A picklable function building one env from an :class:`EnvContext`."""
    if isinstance(env, str):
        if env in _REGISTRY:
            return _REGISTRY[env]
        if env in gym.registry:
            return _make_gym(env)
        from nebula.rl._settings import closest

        guess = closest(env, list(_REGISTRY) + list(gym.registry))
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise ValueError(
            f"env {env!r} is neither registered with nebula.rl.register_env nor a gymnasium "
            f"id{hint}"
        )
    if isinstance(env, type):
        return _make_class(env)
    if callable(env):
        return env  # type: ignore[no-any-return]
    raise TypeError(f"cannot build an env from {env!r}; pass a name, an env class or a creator")


def is_multi_agent_env(env: Any) -> bool:
    from nebula.rl.env.multi_agent_env import MultiAgentEnv

    return isinstance(env, MultiAgentEnv)


def make_vector_env(
    creator: EnvCreator,
    env_config: dict[str, Any],
    num_envs: int,
    worker_index: int,
    num_workers: int,
    mode: str = "SYNC",
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of the env stepped as one batch; done envs reset in the same step."""

    def thunk(i: int) -> Callable[[], Any]:
        def build() -> Any:
            ctx = EnvContext(env_config, worker_index, i, num_workers, remote=worker_index > 0)
            env = creator(ctx)
            if not isinstance(env, gym.Env):
                raise TypeError(
                    f"the env creator returned {type(env).__name__}, not a gymnasium.Env; "
                    "multi-agent envs subclass nebula.rl.env.multi_agent_env.MultiAgentEnv"
                )
            return env

        return build

    vector_class = gym.vector.AsyncVectorEnv if mode == "ASYNC" else gym.vector.SyncVectorEnv
    return vector_class(
        [thunk(i) for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


# ---- spaces: observations become flat float32 vectors, actions keep their space ----


def obs_size(space: gym.Space) -> int:  # type: ignore[type-arg]
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    return int(gym.spaces.flatdim(space))


def flatten_obs(space: gym.Space, obs: Any, batched: bool = True) -> np.ndarray:  # type: ignore[type-arg]
    """Observations as a float32 ``[batch, features]`` array (one-hot for Discrete)."""
    if isinstance(space, gym.spaces.Box):
        arr = np.asarray(obs, dtype=np.float32)
        return arr.reshape(arr.shape[0], -1) if batched else arr.reshape(-1)
    if isinstance(space, gym.spaces.Discrete):
        idx = np.asarray(obs, dtype=np.int64) - int(space.start)
        eye = np.eye(int(space.n), dtype=np.float32)
        return eye[idx] if batched else eye[int(idx)]
    if batched:
        return np.stack([np.asarray(gym.spaces.flatten(space, o), np.float32) for o in obs])
    return np.asarray(gym.spaces.flatten(space, obs), np.float32)
