"""DistilBERT (Sanh et al., 2019, https://arxiv.org/abs/1910.01108).

Reads checkpoints of ``model_type: "distilbert"``: distilbert-base-*, multi-qa-distilbert-*, and the
sentence-transformers models built on them. A BERT without token types or pooler, with post-norm blocks
named ``attention.{q,k,v,out}_lin``, ``sa_layer_norm``, ``ffn.lin{1,2}``, ``output_layer_norm``.
Attribute paths are the Hub weight names.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.losses import token_classification_loss
from headway.modeling import PreTrainedModel
from headway.models.encoder import (
    Encoder,
    check_companions,
    check_index_ranges,
    check_length,
    check_one_input,
    run_encoder,
)
from headway.models.heads import (
    MultipleChoice,
    QuestionAnswering,
    SequenceClassification,
    TokenClassification,
)
from headway.nn.activations import get_activation
from headway.nn.attention import attention
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear
from headway.outputs import BaseModelOutput, MaskedLMOutput

Tensor = torch.Tensor

LAYER_NORM_EPS = 1e-12  # fixed in DistilBERT, not a config field


@config_class
class DistilBertConfig(PretrainedConfig):
    """DistilBERT's own field names; ``hidden_size``, ``num_attention_heads`` and ``num_hidden_layers``
    are aliases of ``dim``, ``n_heads`` and ``n_layers`` (readable, settable, never saved), as in the
    reference.
    """

    model_type: ClassVar[str] = "distilbert"

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 4 * 768
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    qa_dropout: float = 0.1
    seq_classif_dropout: float = 0.2
    pad_token_id: int | None = 0

    @property
    def hidden_size(self) -> int:
        return self.dim

    @hidden_size.setter
    def hidden_size(self, value: int) -> None:
        self.dim = value

    @property
    def num_attention_heads(self) -> int:
        return self.n_heads

    @num_attention_heads.setter
    def num_attention_heads(self, value: int) -> None:
        self.n_heads = value

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layers

    @num_hidden_layers.setter
    def num_hidden_layers(self, value: int) -> None:
        self.n_layers = value


def sinusoidal_positions(num_positions: int, dim: int) -> Tensor:
    """(num_positions, dim) table: sin on even columns, cos on odd, frequency 10000^(-2*(j//2)/dim).

    Computed in float64 like the reference's numpy, then rounded to float32.
    """
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    j = torch.arange(dim, dtype=torch.float64)
    angles = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)  # (P, dim)
    out = torch.empty(num_positions, dim, dtype=torch.float32)
    out[:, 0::2] = torch.sin(angles[:, 0::2]).float()
    out[:, 1::2] = torch.cos(angles[:, 1::2]).float()
    return out


class Embeddings(nn.Module):
    """Word plus position embeddings, LayerNorm, dropout (no token types)."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.dim)
        # Sinusoidal positions are only an initialisation (the table stays trainable), as in the reference.
        self.position_embeddings.sinusoidal = config.sinusoidal_pos_embds
        self.LayerNorm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.dropout = Dropout(config.dropout)

    def forward(self, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None,
                position_ids: Tensor | None = None) -> Tensor:
        check_index_ranges(  # one device->host sync for both
            ("input_ids", input_ids, self.word_embeddings.num_embeddings),
            ("position_ids", position_ids, self.position_embeddings.num_embeddings),
        )
        if input_ids is not None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, dim)
        seq_len = inputs_embeds.shape[1]
        if position_ids is None:
            check_length(seq_len, self.position_embeddings.num_embeddings)
            position_ids = torch.arange(seq_len, device=inputs_embeds.device)[None]  # (1, T)
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class DistilBertSelfAttention(nn.Module):
    """Multi-head self-attention with its output projection ``out_lin`` (no residual, no norm)."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        if config.dim % config.n_heads:
            raise ValueError(f"n_heads ({config.n_heads}) must divide dim ({config.dim}) evenly")
        self.n_heads = config.n_heads
        self.head_dim = config.dim // config.n_heads
        self.q_lin = Linear(config.dim, config.dim)
        self.k_lin = Linear(config.dim, config.dim)
        self.v_lin = Linear(config.dim, config.dim)
        self.out_lin = Linear(config.dim, config.dim)
        self.dropout_p = config.attention_dropout

    def forward(self, hidden_states: Tensor, mask: Tensor | None, output_attentions: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        B, T, _ = hidden_states.shape
        # (B, T, dim) -> (B, heads, T, head_dim)
        q = self.q_lin(hidden_states).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_lin(hidden_states).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v_lin(hidden_states).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        out, weights = attention(
            q, k, v, mask, dropout_p=self.dropout_p if self.training else 0.0,
            output_attentions=output_attentions,
        )
        return self.out_lin(out.transpose(1, 2).reshape(B, T, -1)), weights  # (B, T, dim)


class FFN(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.lin1 = Linear(config.dim, config.hidden_dim)
        self.lin2 = Linear(config.hidden_dim, config.dim)
        self.activation = get_activation(config.activation)
        self.fused_gelu = config.activation == "gelu"  # GELU fused into the matrix product when packed
        self.dropout = Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.lin1.forward_gelu(x) if self.fused_gelu else self.activation(self.lin1(x))
        return self.dropout(self.lin2(hidden))


class TransformerBlock(nn.Module):
    """Post-norm block: LayerNorm(x + attention(x)), then LayerNorm(h + ffn(h))."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.attention = DistilBertSelfAttention(config)
        self.sa_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.ffn = FFN(config)
        self.output_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def forward(self, hidden_states: Tensor, mask: Tensor | None, output_attentions: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        attended, weights = self.attention(hidden_states, mask, output_attentions)
        attended = self.sa_layer_norm(attended + hidden_states)
        return self.output_layer_norm(self.ffn(attended) + attended), weights


class Transformer(Encoder):
    """The stack of blocks (``transformer.layer.N``) run by the shared layer loop."""

    layer_class = TransformerBlock


class DistilBertPreTrainedModel(PreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    # Stored by older checkpoints, recomputed here.
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [r"position_ids$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if getattr(module, "sinusoidal", False):
            module.weight.copy_(sinusoidal_positions(*module.weight.shape))


class DistilBertModel(DistilBertPreTrainedModel):
    """The bare encoder: ``last_hidden_state`` (B, T, dim); DistilBERT has no pooler."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.transformer = Transformer(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.embeddings.word_embeddings = embeddings

    def get_position_embeddings(self) -> nn.Embedding:
        return self.embeddings.position_embeddings

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        position_ids: Tensor | None = None,
        *,
        token_type_ids: Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput:
        """``token_type_ids`` is accepted and ignored, as the reference does (DistilBERT has no segments)."""
        shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.dim)
        check_companions(shape, attention_mask=attention_mask, position_ids=position_ids)
        hidden = self.embeddings(input_ids, inputs_embeds, position_ids)
        hidden, all_hidden, all_attentions = run_encoder(
            self.config, self.transformer, hidden, attention_mask,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
        )
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)


class DistilBertForMaskedLM(DistilBertPreTrainedModel):
    _tied_weights_keys: ClassVar[dict[str, str]] = {
        "vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"
    }

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        self.activation = get_activation(config.activation)
        self.distilbert = DistilBertModel(config)
        self.vocab_transform = Linear(config.dim, config.dim)
        self.vocab_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.vocab_projector = Linear(config.dim, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.vocab_projector

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None,
                position_ids: Tensor | None = None, **kwargs) -> MaskedLMOutput:
        out = self.distilbert(input_ids, attention_mask, inputs_embeds, position_ids, **kwargs)
        hidden = self.vocab_layer_norm(self.activation(self.vocab_transform(out.last_hidden_state)))
        logits = self.vocab_projector(hidden)  # (B, T, vocab)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


# DistilBERT's heads take labels before position_ids, as the reference's do.
_ORDER = ("input_ids", "attention_mask", "inputs_embeds", "labels", "position_ids")


class _FirstTokenHead:
    """The sentence heads' modules: ``pre_classifier`` with ReLU on the first token, dropout
    (``seq_classif_dropout``), ``classifier``."""

    pooling = "first"

    def init_head(self, config: DistilBertConfig) -> None:
        self.pre_classifier = Linear(config.dim, config.dim)
        self.classifier = Linear(config.dim, self.num_outputs(config))
        self.dropout = Dropout(config.seq_classif_dropout)

    def score(self, first_token: Tensor) -> Tensor:
        return self.classifier(self.dropout(F.relu(self.pre_classifier(first_token))))  # (B, num_outputs)


class DistilBertForSequenceClassification(_FirstTokenHead, DistilBertPreTrainedModel, SequenceClassification):
    base_model_class = DistilBertModel
    input_order = _ORDER


class DistilBertForQuestionAnswering(DistilBertPreTrainedModel, QuestionAnswering):
    base_model_class = DistilBertModel
    input_order = ("input_ids", "attention_mask", "inputs_embeds", "start_positions", "end_positions",
                   "position_ids")

    def init_head(self, config: DistilBertConfig) -> None:
        if config.num_labels != 2:
            raise ValueError(
                f"config.num_labels should be 2 (span start and end), but it is {config.num_labels}"
            )
        self.qa_outputs = Linear(config.dim, config.num_labels)
        self.dropout = Dropout(config.qa_dropout)

    def score(self, tokens: Tensor) -> Tensor:
        return self.qa_outputs(self.dropout(tokens))  # (B, T, 2)


class DistilBertForTokenClassification(DistilBertPreTrainedModel, TokenClassification):
    base_model_class = DistilBertModel
    input_order = _ORDER

    def init_head(self, config: DistilBertConfig) -> None:
        self.dropout = Dropout(config.dropout)
        self.classifier = Linear(config.dim, config.num_labels)


class DistilBertForMultipleChoice(_FirstTokenHead, DistilBertPreTrainedModel, MultipleChoice):
    # Unlike the reference, which leaves position_ids unflattened (and fails), they are flattened like the rest.
    base_model_class = DistilBertModel
    input_order = _ORDER


__all__ = [
    "DistilBertConfig",
    "DistilBertForMaskedLM",
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
    "DistilBertModel",
]
