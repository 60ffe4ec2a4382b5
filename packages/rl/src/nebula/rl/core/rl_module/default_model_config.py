"""The default model's settings: layer sizes and activations of the torch networks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["DefaultModelConfig"]


@dataclass
class DefaultModelConfig:
    """What the built-in networks are made of; pass it to ``config.rl_module(model_config=)``.

    ``fcnet_hiddens`` are the hidden layer sizes of the encoder (policy and value networks
    alike), ``fcnet_activation`` one of ``tanh``, ``relu``, ``swish``/``silu``, ``elu`` or
    ``linear``; ``head_fcnet_hiddens`` adds layers to each head. ``vf_share_layers`` makes the
    value head share the policy's encoder. ``free_log_std`` makes a Gaussian policy's standard
    deviation a learned parameter instead of a network output.
    """

    fcnet_hiddens: list[int] = field(default_factory=lambda: [256, 256])
    fcnet_activation: str = "tanh"
    fcnet_kernel_initializer: Any = None
    fcnet_kernel_initializer_kwargs: dict[str, Any] | None = None
    fcnet_bias_initializer: Any = None
    fcnet_bias_initializer_kwargs: dict[str, Any] | None = None
    fcnet_use_layernorm: bool = False
    head_fcnet_hiddens: list[int] = field(default_factory=list)
    head_fcnet_activation: str = "relu"
    head_fcnet_kernel_initializer: Any = None
    head_fcnet_kernel_initializer_kwargs: dict[str, Any] | None = None
    head_fcnet_bias_initializer: Any = None
    head_fcnet_bias_initializer_kwargs: dict[str, Any] | None = None
    free_log_std: bool = False
    log_std_clip_param: float = 20.0
    vf_share_layers: bool = True
    use_lstm: bool = False
    max_seq_len: int = 20
    lstm_cell_size: int = 256
    lstm_use_prev_action: bool = False
    lstm_use_prev_reward: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MODEL_KEYS = frozenset(f.name for f in fields(DefaultModelConfig)) | {
    # Keys of the older ``model={...}`` dicts that the networks understand or ignore.
    "post_fcnet_hiddens",
    "post_fcnet_activation",
    "custom_model",
    "custom_model_config",
    "conv_filters",
    "conv_activation",
    "dim",
    "grayscale",
    "zero_mean",
    "framestack",
}
