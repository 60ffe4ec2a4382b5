"""Torch networks built from a model config: actor-critic, Q-network and SAC's actor and critics.

Each module knows which of its parameters the env runners need (``inference_state``) so
that only those travel to the runners, as numpy arrays, once per update.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module] | None] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "linear": None,
    "none": None,
}


def _activation(name: str | None) -> type[nn.Module] | None:
    key = (name or "linear").lower()
    if key not in _ACTIVATIONS:
        raise ValueError(
            f"fcnet_activation={name!r} is not one of {', '.join(sorted(_ACTIVATIONS))}"
        )
    return _ACTIVATIONS[key]


def mlp(
    in_size: int,
    hiddens: list[int],
    activation: str | None,
    out_size: int | None = None,
    out_gain: float = 1.0,
    layernorm: bool = False,
) -> nn.Sequential:
    """Dense layers with orthogonal initialization (which makes small policies learn fast)."""
    layers: list[nn.Module] = []
    act = _activation(activation)
    size = in_size
    for h in hiddens:
        linear = nn.Linear(size, h)
        nn.init.orthogonal_(linear.weight, math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if layernorm:
            layers.append(nn.LayerNorm(h))
        if act is not None:
            layers.append(act())
        size = h
    if out_size is not None:
        linear = nn.Linear(size, out_size)
        nn.init.orthogonal_(linear.weight, out_gain)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
    return nn.Sequential(*layers)


def _out_features(net: nn.Sequential, default: int) -> int:
    for layer in reversed(net):
        if isinstance(layer, nn.Linear):
            return int(layer.out_features)
    return default


def action_dim(space: gym.Space) -> int:  # type: ignore[type-arg]
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise TypeError(f"action space {space} is not supported; use Discrete or Box actions")


class InferenceStateMixin:
    """Numpy copies of the parameters the runners need, and loading them back."""

    inference_prefixes: tuple[str, ...] = ("",)

    def inference_state(self) -> dict[str, np.ndarray]:
        return {
            k: v.detach().cpu().numpy().copy()
            for k, v in self.state_dict().items()  # type: ignore[attr-defined]
            if k.startswith(self.inference_prefixes)
        }

    def load_inference_state(self, state: dict[str, np.ndarray]) -> None:
        tensors = {
            k: torch.tensor(v) for k, v in state.items()
        }  # a copy: store arrays are read-only
        self.load_state_dict(tensors, strict=False)  # type: ignore[attr-defined]


class ActorCritic(InferenceStateMixin, nn.Module):
    """Policy and value networks (PPO, IMPALA); Discrete -> logits, Box -> Gaussian mean/std."""

    def __init__(self, obs_dim: int, action_space: gym.Space, model_config: dict[str, Any]):  # type: ignore[type-arg]
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        n = action_dim(action_space)
        self.free_log_std = bool(model_config.get("free_log_std")) and not self.discrete
        self.log_std_clip = float(model_config.get("log_std_clip_param", 20.0))
        pi_out = n if self.discrete or self.free_log_std else 2 * n
        hiddens = list(model_config.get("fcnet_hiddens", [256, 256]))
        act = model_config.get("fcnet_activation", "tanh")
        head_hiddens = list(model_config.get("head_fcnet_hiddens") or [])
        head_act = model_config.get("head_fcnet_activation", "relu")
        norm = bool(model_config.get("fcnet_use_layernorm"))
        self.share = bool(model_config.get("vf_share_layers", True))
        if self.share:
            self.encoder = mlp(obs_dim, hiddens, act, layernorm=norm)
            size = _out_features(self.encoder, obs_dim)
            self.pi = mlp(size, head_hiddens, head_act, pi_out, out_gain=0.01)
            self.vf = mlp(size, head_hiddens, head_act, 1, out_gain=1.0)
        else:
            self.pi = mlp(
                obs_dim, hiddens + head_hiddens, act, pi_out, out_gain=0.01, layernorm=norm
            )
            self.vf = mlp(obs_dim, hiddens + head_hiddens, act, 1, out_gain=1.0, layernorm=norm)
        if self.free_log_std:
            self.log_std = nn.Parameter(torch.zeros(n))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.share:
            z = self.encoder(obs)
            return self._dist_inputs(self.pi(z)), self.vf(z).squeeze(-1)
        return self._dist_inputs(self.pi(obs)), self.vf(obs).squeeze(-1)

    def _dist_inputs(self, out: torch.Tensor) -> torch.Tensor:
        if self.free_log_std:
            return torch.cat([out, self.log_std.expand_as(out)], dim=-1)
        return out

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs)[1]

    def distribution(self, dist_inputs: torch.Tensor) -> torch.distributions.Distribution:
        if self.discrete:
            return torch.distributions.Categorical(logits=dist_inputs, validate_args=False)
        mean, log_std = dist_inputs.chunk(2, dim=-1)
        log_std = log_std.clamp(-self.log_std_clip, self.log_std_clip)
        return torch.distributions.Independent(
            torch.distributions.Normal(mean, log_std.exp(), validate_args=False),
            1,
            validate_args=False,
        )

    def deterministic_action(self, dist_inputs: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return dist_inputs.argmax(-1)
        return dist_inputs.chunk(2, dim=-1)[0]


class QNetwork(InferenceStateMixin, nn.Module):
    """Q-values per discrete action, optionally dueling (value + centred advantages)."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        model_config: dict[str, Any],
        dueling: bool = True,
        head_hiddens: list[int] | None = None,
    ):
        super().__init__()
        hiddens = list(model_config.get("fcnet_hiddens", [256, 256]))
        act = model_config.get("fcnet_activation", "relu")
        head = list(head_hiddens or [])
        self.encoder = mlp(obs_dim, hiddens, act)
        size = _out_features(self.encoder, obs_dim)
        self.dueling = dueling
        self.advantages = mlp(size, head, "relu", n_actions)
        if dueling:
            self.state_value = mlp(size, head, "relu", 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        z = self.encoder(obs)
        adv = self.advantages(z)
        if not self.dueling:
            return adv
        return self.state_value(z) + adv - adv.mean(dim=-1, keepdim=True)


class SACModule(InferenceStateMixin, nn.Module):
    """A tanh-squashed Gaussian actor and twin Q critics; runners need only the actor."""

    inference_prefixes = ("pi.",)

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.spaces.Box,
        policy_config: dict[str, Any],
        q_config: dict[str, Any],
        twin_q: bool = True,
    ):
        super().__init__()
        n = action_dim(action_space)
        self.pi = mlp(
            obs_dim, list(policy_config["fcnet_hiddens"]), policy_config["fcnet_activation"], 2 * n
        )
        q_hiddens = list(q_config["fcnet_hiddens"])
        self.q1 = mlp(obs_dim + n, q_hiddens, q_config["fcnet_activation"], 1)
        self.q2 = mlp(obs_dim + n, q_hiddens, q_config["fcnet_activation"], 1) if twin_q else None

    def policy(self, obs: torch.Tensor, explore: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions in [-1, 1] and their log-probabilities (tanh change of variables)."""
        mean, log_std = self.pi(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(-20.0, 2.0)
        if not explore:
            return torch.tanh(mean), torch.zeros(mean.shape[0])
        normal = torch.distributions.Normal(mean, log_std.exp(), validate_args=False)
        u = normal.rsample()
        action = torch.tanh(u)
        logp = normal.log_prob(u).sum(-1) - (
            2 * (math.log(2) - u - nn.functional.softplus(-2 * u))
        ).sum(-1)
        return action, logp

    def q_values(self, obs: torch.Tensor, action: torch.Tensor) -> list[torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        nets = [self.q1] + ([self.q2] if self.q2 is not None else [])
        return [net(x).squeeze(-1) for net in nets]
