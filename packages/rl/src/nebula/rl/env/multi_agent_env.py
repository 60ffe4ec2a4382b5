"""The multi-agent env interface: dicts keyed by agent id in, dicts keyed by agent id out."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

__all__ = ["MultiAgentEnv"]

AgentID = Any


class MultiAgentEnv:
    """An env several agents act in; subclass it and implement ``reset`` and ``step``.

    ``reset(seed=, options=)`` returns ``(obs, infos)``; ``step(actions)`` returns ``(obs,
    rewards, terminateds, truncateds, infos)``: each a dict keyed by agent id, holding entries
    only for the agents that act next (obs) or were affected (rewards). ``terminateds`` and
    ``truncateds`` carry the key ``"__all__"``, True when the whole episode is over. Declare
    ``possible_agents`` and, per agent, ``observation_spaces`` and ``action_spaces`` (dicts);
    a single ``observation_space`` / ``action_space`` is used for every agent otherwise.
    """

    possible_agents: list[AgentID] = []
    agents: list[AgentID] = []
    observation_spaces: dict[AgentID, gym.Space] | None = None  # type: ignore[type-arg]
    action_spaces: dict[AgentID, gym.Space] | None = None  # type: ignore[type-arg]
    observation_space: gym.Space | None = None  # type: ignore[type-arg]
    action_space: gym.Space | None = None  # type: ignore[type-arg]

    def __init__(self) -> None:
        if not hasattr(self, "possible_agents"):
            self.possible_agents = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[AgentID, Any], dict[AgentID, Any]]:
        raise NotImplementedError

    def step(self, action_dict: dict[AgentID, Any]) -> tuple[dict[AgentID, Any], ...]:
        raise NotImplementedError

    def get_observation_space(self, agent_id: AgentID) -> gym.Space:  # type: ignore[type-arg]
        if self.observation_spaces is not None:
            return self.observation_spaces[agent_id]
        if isinstance(self.observation_space, gym.spaces.Dict) and agent_id in (
            self.observation_space.spaces
        ):
            return self.observation_space[agent_id]
        if self.observation_space is None:
            raise AttributeError(f"{type(self).__name__} declares no observation space")
        return self.observation_space

    def get_action_space(self, agent_id: AgentID) -> gym.Space:  # type: ignore[type-arg]
        if self.action_spaces is not None:
            return self.action_spaces[agent_id]
        if isinstance(self.action_space, gym.spaces.Dict) and agent_id in (
            self.action_space.spaces
        ):
            return self.action_space[agent_id]
        if self.action_space is None:
            raise AttributeError(f"{type(self).__name__} declares no action space")
        return self.action_space

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    def close(self) -> None:
        pass

    def render(self) -> Any:
        return None
