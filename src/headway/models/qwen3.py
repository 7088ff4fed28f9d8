"""Qwen3 (Qwen team, 2025, https://arxiv.org/abs/2505.09388).

Reads checkpoints of ``model_type: "qwen3"`` (Qwen/Qwen3-*). Qwen2's layout (``headway.models.qwen2``)
without the projection biases (``attention_bias``, off by default), with an explicit ``head_dim`` and an
RMSNorm over each query and key head (``q_norm``, ``k_norm``) before the rotation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from headway.configuration import config_class
from headway.models.llama import (
    LlamaAttention,
    LlamaConfig,
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaForQuestionAnswering,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
    LlamaModel,
    LlamaPreTrainedModel,
    LlamaRMSNorm,
)
from headway.models.qwen2 import SLIDING, check_layer_types

Tensor = torch.Tensor


@config_class
class Qwen3Config(LlamaConfig):
    """Qwen3's settings, with the reference's names and defaults (Qwen3-8B's shape, ``head_dim`` 128)."""

    model_type: ClassVar[str] = "qwen3"

    vocab_size: int = 151936
    intermediate_size: int = 22016
    num_key_value_heads: int | None = 32
    head_dim: int | None = 128
    max_position_embeddings: int = 32768
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pretraining_tp: int | None = None
    use_sliding_window: bool = False
    sliding_window: int | None = 4096
    max_window_layers: int = 28
    layer_types: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_layer_types(self)

    def layer_windows(self) -> list[int | None]:
        return [self.sliding_window if t == SLIDING else None for t in self.layer_types]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in ("mlp_bias", "pretraining_tp"):  # not Qwen3 fields: written only where read
            if not out.get(key):
                out.pop(key, None)
        return out


class Qwen3Attention(LlamaAttention):
    """Llama's attention with an RMSNorm over each query and key head (``q_norm``, ``k_norm``)."""

    def __init__(self, config: Qwen3Config, layer_idx: int) -> None:
        super().__init__(config, layer_idx)
        self.q_norm = LlamaRMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.k_norm = LlamaRMSNorm(self.head_dim, eps=config.rms_norm_eps)

    def normalize_qk(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        return self.q_norm(query), self.k_norm(key)  # over head_dim of (B, T, heads, head_dim)


class Qwen3DecoderLayer(LlamaDecoderLayer):
    attention_class = Qwen3Attention


class Qwen3PreTrainedModel(LlamaPreTrainedModel):
    config_class = Qwen3Config


class Qwen3Model(Qwen3PreTrainedModel, LlamaModel):
    layer_class = Qwen3DecoderLayer


class Qwen3ForCausalLM(Qwen3PreTrainedModel, LlamaForCausalLM):
    base_model_class = Qwen3Model


class Qwen3ForSequenceClassification(Qwen3PreTrainedModel, LlamaForSequenceClassification):
    base_model_class = Qwen3Model


class Qwen3ForTokenClassification(Qwen3PreTrainedModel, LlamaForTokenClassification):
    base_model_class = Qwen3Model


class Qwen3ForQuestionAnswering(Qwen3PreTrainedModel, LlamaForQuestionAnswering):
    base_model_class = Qwen3Model


__all__ = [
    "Qwen3Config",
    "Qwen3ForCausalLM",
    "Qwen3ForQuestionAnswering",
    "Qwen3ForSequenceClassification",
    "Qwen3ForTokenClassification",
    "Qwen3Model",
    "Qwen3PreTrainedModel",
]
