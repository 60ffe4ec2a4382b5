"""EnvRunner: one process stepping vectorized envs; EnvRunnerGroup: the runners of an algorithm.

An :class:`EnvRunner` is a plain object (the driver uses one directly when there are no
remote runners); the group runs it as a Nebula actor per runner. Weights reach the runners
through the object store: the group puts them once per update and every sample call carries
that one reference with a version number, so a runner loads each version once. A runner
that fails (its env raised, or its process died) is replaced by a new actor and the work it
owed is asked of the new one; the group counts these restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import nebula
from nebula.exceptions import NebulaError

PolicyFactory = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class RunnerSpec:
    """Everything a runner process needs to build its envs and its policy (picklable)."""

    env_creator: Callable[[Any], Any]
    env_config: dict[str, Any]
    num_envs: int
    policy_factory: PolicyFactory  # (observation_space, action_space) -> RolloutPolicy
    vectorize_mode: str = "SYNC"
    num_workers: int = 0
    seed: int | None = None
    clip_rewards: Any = None
    multi_agent: Any = None  # a MultiAgentSpec for multi-agent envs
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleResult:
    """What one sample call returns: the batch, finished episodes, and steps taken."""

    batch: Any
    episode_returns: list[float]
    episode_lengths: list[int]
    env_steps: int
    agent_steps: int
    module_returns: dict[str, list[float]] = field(default_factory=dict)


class EnvRunner:
    """Builds ``spec``'s envs and policy and samples them; ``worker_index`` 0 is the driver's."""

    def __init__(self, spec: RunnerSpec, worker_index: int = 0, limit_threads: bool = True):
        import torch

        if limit_threads:
            # Small networks run fastest on one thread; runners share the machine's cores.
            torch.set_num_threads(1)
        seed = None if spec.seed is None else spec.seed + 1000 * worker_index
        if seed is not None:
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
        self.worker_index = worker_index
        self.version = -1
        if spec.multi_agent is not None:
            from nebula.rl._multi_agent import MultiAgentSampler

            self.sampler: Any = MultiAgentSampler(spec, worker_index, seed)
        else:
            from nebula.rl._envs import make_vector_env
            from nebula.rl._sampler import VectorSampler

            env = make_vector_env(
                spec.env_creator,
                spec.env_config,
                spec.num_envs,
                worker_index,
                spec.num_workers,
                spec.vectorize_mode,
            )
            policy = spec.policy_factory(env.single_observation_space, env.single_action_space)
            self.sampler = VectorSampler(env, policy, seed, spec.clip_rewards)

    def _sync(self, weights: Any, version: int) -> None:
        if weights is not None and version != self.version:
            self.sampler.policy.load(weights)
            self.version = version

    def sample(
        self, weights: Any, version: int, steps_per_env: int, explore: bool, timestep: int
    ) -> SampleResult:
        self._sync(weights, version)
        batch, stats = self.sampler.sample(steps_per_env, explore, timestep)
        steps = steps_per_env * getattr(self.sampler, "num_envs", 1)
        return SampleResult(
            batch,
            stats.returns,
            stats.lengths,
            steps,
            getattr(stats, "agent_steps", steps),
            getattr(stats, "module_returns", {}),
        )

    def evaluate(
        self, weights: Any, version: int, duration: int, unit: str, explore: bool, timestep: int
    ) -> SampleResult:
        self._sync(weights, version)
        if unit == "episodes":
            stats = self.sampler.run_episodes(duration, explore, timestep)
        else:
            stats = self.sampler.run_steps(duration, explore, timestep)
        steps = int(sum(stats.lengths))
        return SampleResult(
            None, stats.returns, stats.lengths, steps, steps, getattr(stats, "module_returns", {})
        )

    def ping(self) -> int:
        return self.worker_index

    def get_pid(self) -> int:
        import os

        return os.getpid()

    def stop(self) -> None:
        self.sampler.close()


class SingleAgentEnvRunner(EnvRunner):
    """The env runner for single-agent envs (the name scripts import)."""


class MultiAgentEnvRunner(EnvRunner):
    """The env runner for multi-agent envs (the name scripts import)."""


_RemoteEnvRunner = nebula.remote(EnvRunner)


class EnvRunnerGroup:
    """The local runner (no remote ones) or ``num_runners`` EnvRunner actors, kept healthy."""

    def __init__(
        self,
        spec: RunnerSpec,
        num_runners: int,
        *,
        num_cpus: float = 1,
        num_gpus: float = 0,
        resources: dict[str, float] | None = None,
        restart_failed: bool = True,
        ignore_failures: bool = False,
        max_restarts: int = 1000,
        restart_delay_s: float = 0.0,
        on_recreated: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.spec = spec
        self.num_runners = num_runners
        self._options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        if resources:
            self._options["resources"] = resources
        self.restart_failed = restart_failed
        self.ignore_failures = ignore_failures
        self.max_restarts = max_restarts
        self.restart_delay_s = restart_delay_s
        self.on_recreated = on_recreated
        self.num_restarts = 0
        self.num_dropped = 0
        self.version = 0
        self._weights: Any = None
        self._weights_ref: Any = None
        self.local: EnvRunner | None = None
        self.actors: dict[int, Any] = {}
        if num_runners == 0:
            self.local = EnvRunner(spec, 0, limit_threads=False)
        else:
            for i in range(1, num_runners + 1):
                self.actors[i] = self._start(i)
        self._in_flight: dict[Any, tuple[int, tuple[Any, ...]]] = {}

    def _start(self, index: int) -> Any:
        return _RemoteEnvRunner.options(**self._options).remote(self.spec, index)

    # ------------------------------------------------------------------ weights
    def set_weights(self, weights: Any) -> None:
        """Make ``weights`` the ones the next sample calls use (one put for all runners)."""
        self.version += 1
        self._weights = weights
        self._weights_ref = nebula.put(weights) if self.actors else None

    @property
    def num_healthy(self) -> int:
        return len(self.actors) if self.actors else (1 if self.local else 0)

    # ------------------------------------------------------------------ failures
    def _replace(self, index: int, error: BaseException) -> bool:
        """Restart runner ``index`` after ``error``; False when it was dropped instead."""
        old = self.actors.pop(index, None)
        if old is not None:
            try:
                nebula.kill(old)
            except NebulaError:
                pass
        if not self.restart_failed or self.num_restarts >= self.max_restarts:
            if self.ignore_failures and self.actors:
                self.num_dropped += 1
                return False
            raise RuntimeError(
                f"env runner {index} failed and may not be restarted "
                f"(restart_failed_env_runners={self.restart_failed}, "
                f"{self.num_restarts} restarts so far): {error}"
            ) from error
        if self.restart_delay_s:
            time.sleep(self.restart_delay_s)
        self.actors[index] = self._start(index)
        self.num_restarts += 1
        if self.on_recreated is not None:
            self.on_recreated([index])
        return True

    # ------------------------------------------------------------------ synchronous
    def sample(
        self, steps_per_env: int, min_env_steps: int, explore: bool, timestep: int
    ) -> list[SampleResult]:
        """Rounds of one fragment per runner until ``min_env_steps`` steps were taken."""
        results: list[SampleResult] = []
        taken = 0
        while taken < min_env_steps or not results:
            if self.local is not None:
                self.local._sync(self._weights, self.version)
                round_results = [
                    self.local.sample(None, self.version, steps_per_env, explore, timestep)
                ]
            else:
                round_results = self._call_all("sample", steps_per_env, explore, timestep + taken)
            results.extend(round_results)
            taken += sum(r.env_steps for r in round_results)
        return results

    def _call_all(self, method: str, *args: Any) -> list[Any]:
        pending = {
            getattr(actor, method).remote(self._weights_ref, self.version, *args): index
            for index, actor in self.actors.items()
        }
        out = []
        while pending:
            ref, index = pending.popitem()
            try:
                out.append(nebula.get(ref))
            except Exception as error:  # the runner died or its env raised
                if self._replace(index, error):
                    retry = getattr(self.actors[index], method)
                    pending[retry.remote(self._weights_ref, self.version, *args)] = index
        return out

    def evaluate(
        self, duration: int, unit: str, explore: bool, timestep: int
    ) -> list[SampleResult]:
        """Split ``duration`` episodes (or steps) over the runners and run them."""
        if self.local is not None:
            self.local._sync(self._weights, self.version)
            return [self.local.evaluate(None, self.version, duration, unit, explore, timestep)]
        n = len(self.actors)
        shares = [duration // n + (1 if i < duration % n else 0) for i in range(n)]
        pending = {}
        for (index, actor), share in zip(list(self.actors.items()), shares):
            if share:
                ref = actor.evaluate.remote(
                    self._weights_ref, self.version, share, unit, explore, timestep
                )
                pending[ref] = (index, share)
        out = []
        while pending:
            ref, (index, share) = pending.popitem()
            try:
                out.append(nebula.get(ref))
            except Exception as error:
                if self._replace(index, error):
                    ref = self.actors[index].evaluate.remote(
                        self._weights_ref, self.version, share, unit, explore, timestep
                    )
                    pending[ref] = (index, share)
        return out

    # ------------------------------------------------------------------ asynchronous
    def submit_missing(
        self, steps_per_env: int, explore: bool, timestep: int, per_runner: int = 1
    ) -> None:
        """Keep ``per_runner`` sample calls in flight on every runner (with current weights)."""
        busy: dict[int, int] = {}
        for index, _ in self._in_flight.values():
            busy[index] = busy.get(index, 0) + 1
        for index, actor in self.actors.items():
            for _ in range(per_runner - busy.get(index, 0)):
                args = (steps_per_env, explore, timestep)
                ref = actor.sample.remote(self._weights_ref, self.version, *args)
                self._in_flight[ref] = (index, args)

    def fetch_ready(self, timeout: float) -> list[SampleResult]:
        """The sample calls that finished within ``timeout`` (failed runners are replaced)."""
        if self.local is not None:
            self.local._sync(self._weights, self.version)
            return []
        if not self._in_flight:
            return []
        ready, _ = nebula.wait(list(self._in_flight), num_returns=1, timeout=timeout)
        if ready:
            more, _ = nebula.wait(
                list(self._in_flight), num_returns=len(self._in_flight), timeout=0
            )
            ready = list(dict.fromkeys(list(ready) + list(more)))
        out = []
        for ref in ready:
            index, _args = self._in_flight.pop(ref)
            try:
                out.append(nebula.get(ref))
            except Exception as error:
                self._replace(index, error)
        return out

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        for actor in self.actors.values():
            try:
                nebula.kill(actor)
            except NebulaError:
                pass
        self.actors.clear()
        self._in_flight.clear()
        if self.local is not None:
            self.local.stop()
            self.local = None
