"""Batched ensemble of independent Q critics (one ``baddbmm`` per layer for all members).

IntegratedRL trains m = 24 critics. Running them as m separate modules costs m small matmuls per layer plus
Python overhead; stacking their weights into ``[m, in, out]`` tensors runs each layer as one batched matmul
(CORL's ``VectorizedLinear`` idea). The members stay mathematically independent: no parameter is shared and each
member's loss only reaches its own slice of every weight tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from d3rlpy.models.encoders import EncoderFactory
from d3rlpy.models.torch import VectorEncoderWithAction
from d3rlpy.types import Shape
from torch import nn

__all__ = [
    "EnsembleQFunction",
    "VectorizedLayerNorm",
    "VectorizedLinear",
    "build_ensemble_q_function",
    "make_critic_members",
]


class VectorizedLinear(nn.Module):
    """``m`` independent affine maps: ``[m, B, in] -> [m, B, out]``.

    Weights are stored transposed relative to ``nn.Linear`` (``[m, in, out]``) so the forward pass is a single
    ``baddbmm`` without a transpose.
    """

    def __init__(self, in_features: int, out_features: int, ensemble_size: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.ensemble_size = ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same distribution as nn.Linear's default init (kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in))),
        # drawn independently for every member.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_linears(cls, linears: Sequence[nn.Linear]) -> VectorizedLinear:
        """Stack the weights of ``len(linears)`` equally shaped ``nn.Linear`` layers (copied, not shared)."""
        first = linears[0]
        layer = cls(first.in_features, first.out_features, len(linears))
        with torch.no_grad():
            for i, linear in enumerate(linears):
                if linear.bias is None or linear.weight.shape != first.weight.shape:
                    raise ValueError("all members must be nn.Linear layers of equal shape with a bias")
                layer.weight[i].copy_(linear.weight.T)
                layer.bias[i, 0].copy_(linear.bias)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.out_features == 1:
            # Scalar Q heads: batched GEMMs with N = 1 (and their K = 1 backward) are ~3x slower on CPU than a
            # batched dot product.
            return torch.linalg.vecdot(x, self.weight.transpose(1, 2)).unsqueeze(-1) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, ensemble={self.ensemble_size}"


class VectorizedLayerNorm(nn.Module):
    """Layer norm over the feature axis with a separate affine transform per member."""

    def __init__(self, normalized_size: int, ensemble_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.normalized_size = normalized_size
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ensemble_size, 1, normalized_size))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, normalized_size))

    @classmethod
    def from_layer_norms(cls, norms: Sequence[nn.LayerNorm]) -> VectorizedLayerNorm:
        first = norms[0]
        if len(first.normalized_shape) != 1 or not first.elementwise_affine or first.bias is None:
            raise ValueError("only 1-D nn.LayerNorm with elementwise affine and bias can be vectorised")
        layer = cls(first.normalized_shape[0], len(norms), first.eps)
        with torch.no_grad():
            for i, norm in enumerate(norms):
                layer.weight[i, 0].copy_(norm.weight)
                layer.bias[i, 0].copy_(norm.bias)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = nn.functional.layer_norm(x, (self.normalized_size,), eps=self.eps)
        return normed * self.weight + self.bias


def _vectorize_layer(layers: Sequence[nn.Module]) -> nn.Module:
    """Turn the same position of every member's layer stack into one ensemble layer."""
    first = layers[0]
    if any(type(layer) is not type(first) for layer in layers):
        raise ValueError("critic members differ in architecture; they must come from one encoder factory")
    if isinstance(first, nn.Linear):
        return VectorizedLinear.from_linears(layers)  # type: ignore[arg-type]
    if isinstance(first, nn.LayerNorm):
        return VectorizedLayerNorm.from_layer_norms(layers)  # type: ignore[arg-type]
    if isinstance(first, nn.Dropout):
        # Elementwise with fresh masks per element, hence independent across members.
        return nn.Dropout(first.p)
    if next(first.parameters(), None) is None and next(first.buffers(), None) is None:
        # Stateless activations (ReLU, GELU, Tanh, Swish, Identity, GEGLU) act on the last axis only.
        return first
    raise ValueError(
        f"{type(first).__name__} cannot be vectorised across critics (batch norm is not supported); use a vector "
        "encoder factory with hidden_units/activation/use_layer_norm/dropout_rate options instead"
    )


def _require_vector_encoder(encoder: nn.Module) -> VectorEncoderWithAction:
    if not isinstance(encoder, VectorEncoderWithAction):
        # A config value (the factory) is wrong, not an argument type: ValueError like every other config check.
        raise ValueError(
            f"critic_encoder_factory must build d3rlpy VectorEncoderWithAction encoders (factories 'vector' or "
            f"'default' on vector observations), got {type(encoder).__name__}"
        )
    return encoder


class EnsembleQFunction(nn.Module):
    """``Q_i(s, a)`` for ``i = 1..m`` in one pass; ``forward`` returns ``[m, B, 1]``."""

    def __init__(self, layers: nn.Sequential, ensemble_size: int) -> None:
        super().__init__()
        self.layers = layers
        self.ensemble_size = ensemble_size

    @classmethod
    def from_members(cls, encoders: Sequence[VectorEncoderWithAction], heads: Sequence[nn.Linear]) -> EnsembleQFunction:
        """Vectorise ``m`` d3rlpy state-action encoders, each followed by its ``Linear(hidden, 1)`` head.

        Member ``i`` of the result computes exactly ``heads[i](encoders[i](s, a))``.
        """
        if len(encoders) != len(heads) or not encoders:
            raise ValueError("need one head per encoder and at least one member")
        stacks: list[list[nn.Module]] = []
        for encoder in encoders:
            _require_vector_encoder(encoder)
            (sequential,) = encoder.children()
            # Iterate the Sequential itself: d3rlpy reuses one activation instance for every layer, and
            # children() would yield that shared module only once.
            stacks.append(list(sequential))
        depth = len(stacks[0])
        if any(len(stack) != depth for stack in stacks):
            raise ValueError("critic members differ in depth; they must come from one encoder factory")
        layers = [_vectorize_layer([stack[j] for stack in stacks]) for j in range(depth)]
        for j in range(1, depth):
            # [m, B, hidden] activations are megabytes: ReLU in place saves an allocation + copy per layer. Safe
            # because baddbmm's backward needs its inputs, never its output.
            if type(layers[j]) is nn.ReLU and isinstance(layers[j - 1], VectorizedLinear):
                layers[j] = nn.ReLU(inplace=True)
        layers.append(VectorizedLinear.from_linears(heads))
        return cls(nn.Sequential(*layers), len(encoders))

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, action], dim=-1)
        # Every member sees the same input; expand is a stride-0 view, no copy.
        return self.layers(h.unsqueeze(0).expand(self.ensemble_size, *h.shape))


def make_critic_members(
    observation_shape: Shape, action_size: int, encoder_factory: EncoderFactory, n_critics: int
) -> tuple[list[VectorEncoderWithAction], list[nn.Linear]]:
    """Build ``n_critics`` independently initialised d3rlpy critics (encoder + scalar head), like TD3+BC's."""
    encoders: list[VectorEncoderWithAction] = []
    heads: list[nn.Linear] = []
    for _ in range(n_critics):
        encoder = _require_vector_encoder(encoder_factory.create_with_action(observation_shape, action_size))
        hidden = [m for m in encoder.modules() if isinstance(m, nn.Linear)][-1].out_features
        encoders.append(encoder)
        heads.append(nn.Linear(hidden, 1))
    return encoders, heads


def build_ensemble_q_function(
    observation_shape: Shape,
    action_size: int,
    encoder_factory: EncoderFactory,
    n_critics: int,
    device: str | torch.device = "cpu",
) -> EnsembleQFunction:
    """Ensemble whose members are initialised exactly as ``n_critics`` separate d3rlpy critics would be, on
    ``device`` (members are drawn on the CPU, so the initial weights do not depend on the device)."""
    encoders, heads = make_critic_members(observation_shape, action_size, encoder_factory, n_critics)
    return EnsembleQFunction.from_members(encoders, heads).to(device)
