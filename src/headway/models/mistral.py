"""Mistral (Jiang et al., 2023, https://arxiv.org/abs/2310.06825).

Reads checkpoints of ``model_type: "mistral"`` (mistralai/Mistral-7B and fine-tunes). Llama's architecture
(``headway.models.llama``) with sliding-window attention: every layer's queries see only the
``sliding_window`` most recent keys (themselves included), when ``sliding_window`` is set; no biases.
"""

from __future__ import annotations

from typing import ClassVar

from headway.configuration import config_class
from headway.models.llama import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForQuestionAnswering,
    LlamaForSequenceClassification,
    LlamaForTokenClassification,
    LlamaModel,
    LlamaPreTrainedModel,
)


@config_class
class MistralConfig(LlamaConfig):
    """Mistral's settings, with the reference's names and defaults (Mistral-7B's shape).

    The reference's config has no ``attention_bias``, ``mlp_bias`` or ``pretraining_tp``: Mistral has no
    biases, and those keys are not written to config.json unless they were read from it.
    """

    model_type: ClassVar[str] = "mistral"

    intermediate_size: int = 14336
    num_key_value_heads: int | None = 8
    max_position_embeddings: int = 4096 * 32
    sliding_window: int | None = 4096  # None: full attention
    attention_bias: bool = False
    mlp_bias: bool = False
    pretraining_tp: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sliding_window is not None and (
            not isinstance(self.sliding_window, int) or self.sliding_window < 1
        ):
            raise ValueError(f"sliding_window must be a positive int or None, got {self.sliding_window!r}")

    def layer_windows(self) -> list[int | None]:
        return [self.sliding_window] * self.num_hidden_layers

    def to_dict(self) -> dict:
        out = super().to_dict()
        for key in ("attention_bias", "mlp_bias", "pretraining_tp"):  # not Mistral fields: kept only if set
            if not out.get(key):
                out.pop(key, None)
        return out


class MistralPreTrainedModel(LlamaPreTrainedModel):
    config_class = MistralConfig


class MistralModel(MistralPreTrainedModel, LlamaModel):
    """The bare decoder (see ``LlamaModel``), its attention limited to the sliding window."""


class MistralForCausalLM(MistralPreTrainedModel, LlamaForCausalLM):
    base_model_class = MistralModel


class MistralForSequenceClassification(MistralPreTrainedModel, LlamaForSequenceClassification):
    base_model_class = MistralModel


class MistralForTokenClassification(MistralPreTrainedModel, LlamaForTokenClassification):
    base_model_class = MistralModel


class MistralForQuestionAnswering(MistralPreTrainedModel, LlamaForQuestionAnswering):
    base_model_class = MistralModel
    base_model_prefix = "model"  # unlike Llama's and Qwen's, Mistral's QA head keeps the usual name


__all__ = [
    "MistralConfig",
    "MistralForCausalLM",
    "MistralForQuestionAnswering",
    "MistralForSequenceClassification",
    "MistralForTokenClassification",
    "MistralModel",
    "MistralPreTrainedModel",
]
