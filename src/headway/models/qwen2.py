"""Qwen2 (Qwen team, 2024, https://arxiv.org/abs/2407.10671) and Qwen2.5.

Reads checkpoints of ``model_type: "qwen2"`` (Qwen/Qwen2-*, Qwen/Qwen2.5-*). Llama's architecture
(``headway.models.llama``) with biases on the query, key and value projections (none on the output), and
optional sliding-window attention in the layers from ``max_window_layers`` on (``layer_types`` says which
layers slide; only when ``use_sliding_window``).
"""

from __future__ import annotations

from typing import Any, ClassVar

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
)

FULL, SLIDING = "full_attention", "sliding_attention"


def check_layer_types(config: LlamaConfig) -> None:
    """Complete ``layer_types`` as the reference does (sliding from ``max_window_layers`` on, when a window
    is in use) and check it names one known type per layer; ``sliding_window`` is None unless used."""
    if not config.use_sliding_window:
        config.sliding_window = None
    if config.layer_types is None:
        n = config.num_hidden_layers
        full = n if config.sliding_window is None else max(0, min(n, config.max_window_layers))
        config.layer_types = [FULL] * full + [SLIDING] * (n - full)  # sliding from max_window_layers on
    config.layer_types = list(config.layer_types)
    try:
        known = set(config.layer_types) <= {FULL, SLIDING}
    except TypeError:  # an unhashable entry: not a layer type
        known = False
    if len(config.layer_types) != config.num_hidden_layers or not known:
        raise ValueError(
            f"layer_types must name {config.num_hidden_layers} layers (num_hidden_layers), each one of "
            f"{(FULL, SLIDING)}; got {config.layer_types!r}"
        )


@config_class
class Qwen2Config(LlamaConfig):
    """Qwen2's settings, with the reference's names and defaults (Qwen2-7B's shape).

    Qwen2's config has no ``head_dim``, ``attention_bias``, ``mlp_bias`` or ``pretraining_tp`` (they are
    not written back unless read): the head size is ``hidden_size // num_attention_heads``.
    """

    model_type: ClassVar[str] = "qwen2"

    vocab_size: int = 151936
    intermediate_size: int = 22016
    num_key_value_heads: int | None = 32
    head_dim: int | None = None
    max_position_embeddings: int = 32768
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pretraining_tp: int | None = None
    use_sliding_window: bool = False
    sliding_window: int | None = 4096
    max_window_layers: int = 28
    layer_types: list[str] | None = None

    _NOT_FIELDS: ClassVar[tuple[str, ...]] = ("head_dim", "attention_bias", "mlp_bias", "pretraining_tp")

    def __post_init__(self) -> None:
        given_head_dim = self.head_dim
        super().__post_init__()
        if given_head_dim is None:
            self.head_dim = None  # derived, not a field of Qwen2 (attention_head_dim computes it)
        check_layer_types(self)

    def layer_windows(self) -> list[int | None]:
        return [self.sliding_window if t == SLIDING else None for t in self.layer_types]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in self._NOT_FIELDS:
            if not out.get(key):
                out.pop(key, None)
        return out


class Qwen2Attention(LlamaAttention):
    """Llama's attention with biased query, key and value projections and an unbiased output."""

    qkv_bias = True
    o_bias = False


class Qwen2DecoderLayer(LlamaDecoderLayer):
    attention_class = Qwen2Attention


class Qwen2PreTrainedModel(LlamaPreTrainedModel):
    config_class = Qwen2Config


class Qwen2Model(Qwen2PreTrainedModel, LlamaModel):
    layer_class = Qwen2DecoderLayer


class Qwen2ForCausalLM(Qwen2PreTrainedModel, LlamaForCausalLM):
    base_model_class = Qwen2Model


class Qwen2ForSequenceClassification(Qwen2PreTrainedModel, LlamaForSequenceClassification):
    base_model_class = Qwen2Model


class Qwen2ForTokenClassification(Qwen2PreTrainedModel, LlamaForTokenClassification):
    base_model_class = Qwen2Model


class Qwen2ForQuestionAnswering(Qwen2PreTrainedModel, LlamaForQuestionAnswering):
    base_model_class = Qwen2Model


__all__ = [
    "Qwen2Config",
    "Qwen2ForCausalLM",
    "Qwen2ForQuestionAnswering",
    "Qwen2ForSequenceClassification",
    "Qwen2ForTokenClassification",
    "Qwen2Model",
    "Qwen2PreTrainedModel",
    "check_layer_types",
]
