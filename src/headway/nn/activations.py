"""Activation functions by the names configs use (``hidden_act``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of GELU used by GPT-2 ("gelu_new")."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


ACT2FN: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": gelu_new,
    "quick_gelu": quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
}


def get_activation(name: str | Callable) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation called ``name``; a ValueError lists the known names."""
    if callable(name):
        return name
    if name not in ACT2FN:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(ACT2FN)}")
    return ACT2FN[name]
