"""``RLModuleSpec``: how to build a module (your own torch class, or the default one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["RLModule", "RLModuleSpec"]


class RLModule(nn.Module):
    """Base for your own modules: ``__init__(observation_space, action_space, model_config)``.

    For PPO and IMPALA a module returns ``(action_dist_inputs, values)`` from ``forward(obs)``
    and offers ``distribution(inputs)``, ``deterministic_action(inputs)`` and ``value(obs)``
    (subclassing the built-in ``ActorCritic`` gives all of them).
    """

    inference_prefixes: tuple[str, ...] = ("",)

    def __init__(
        self,
        observation_space: Any = None,
        action_space: Any = None,
        model_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.model_config = model_config or {}

    def inference_state(self) -> dict[str, Any]:
        return {
            k: v.detach().cpu().numpy().copy()
            for k, v in self.state_dict().items()
            if k.startswith(self.inference_prefixes)
        }

    def load_inference_state(self, state: dict[str, Any]) -> None:
        import torch

        self.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)


@dataclass
class RLModuleSpec:
    """A module class and the settings to build it with (``model_config`` merges over the
    algorithm's)."""

    module_class: type | None = None
    observation_space: Any = None
    action_space: Any = None
    model_config: dict[str, Any] | None = None
    inference_only: bool = False
    catalog_class: Any = None
    load_state_path: str | None = None

    def build(self, observation_space: Any, action_space: Any, model_config: dict[str, Any]) -> Any:
        merged = dict(model_config)
        merged.update(self.model_config or {})
        obs = self.observation_space or observation_space
        act = self.action_space or action_space
        if self.module_class is None:
            from nebula.rl._envs import obs_size
            from nebula.rl._models import ActorCritic

            return ActorCritic(obs_size(obs), act, merged)
        return self.module_class(observation_space=obs, action_space=act, model_config=merged)


@dataclass
class MultiRLModuleSpec:
    """One :class:`RLModuleSpec` per module id."""

    rl_module_specs: dict[str, RLModuleSpec] = field(default_factory=dict)

    def build(
        self,
        observation_space: Any,
        action_space: Any,
        model_config: dict[str, Any],
        module_id: str | None = None,
    ) -> Any:
        spec = self.rl_module_specs.get(module_id or "", RLModuleSpec())
        return spec.build(observation_space, action_space, model_config)
