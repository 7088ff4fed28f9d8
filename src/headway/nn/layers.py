"""Embedding and LayerNorm that skip initialisation on the meta device; RMSNorm; Dropout that costs nothing
in eval and draws keyed masks under the Trainer (:mod:`headway.nn.dropout`).

``from_pretrained`` builds a model on the meta device and then puts the checkpoint's tensors in place,
so initialising those placeholder weights is wasted work: for MiniLM it was two thirds of building
the model. On any real device these layers initialise exactly as torch's do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from headway.nn.dropout import active_keys, dropout


class SkipMetaInit:
    """Mixin for ``nn`` layers: ``reset_parameters`` does nothing while the weight is on the meta device."""

    def reset_parameters(self) -> None:
        weight = getattr(self, "weight", None)
        if weight is not None and weight.is_meta:
            return
        super().reset_parameters()  # type: ignore[misc]


class Embedding(SkipMetaInit, nn.Embedding):
    """``nn.Embedding`` (same parameters, same state dict), not initialised on the meta device."""


class LayerNorm(SkipMetaInit, nn.LayerNorm):
    """``nn.LayerNorm`` (same parameters, same state dict), not initialised on the meta device."""


class RMSNorm(nn.Module):
    """``weight * x / sqrt(mean(x^2) + eps)``, normalised in float32 and cast back before the weight
    (Llama's RMSNorm; T5's layer norm is the same computation)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: Tensor) -> Tensor:
        dtype = hidden_states.dtype
        # torch's fused kernel: one op instead of five (pow, mean, add, rsqrt, mul), the same numbers
        x = F.rms_norm(hidden_states.float(), hidden_states.shape[-1:], eps=self.variance_epsilon)
        return self.weight * x.to(dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class Dropout(nn.Dropout):
    """``nn.Dropout`` that returns its input untouched in eval mode without a call into torch.

    In training under :func:`headway.nn.dropout.keyed_dropout` (the Trainer's default) the mask is a
    function of the example and the element's position, not of torch's RNG; elsewhere it is torch's.
    ``shared=True`` marks inputs with no batch dimension (a table every example uses): their mask is
    then keyed by the step and call alone, whatever the input's first dimension happens to be.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, shared: bool = False) -> None:
        super().__init__(p, inplace)
        self.shared = shared

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        keys = active_keys()
        if keys is not None:
            return dropout(x, self.p, keys, shared=self.shared)
        return F.dropout(x, self.p, True, self.inplace)
