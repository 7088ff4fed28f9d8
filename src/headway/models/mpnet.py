"""MPNet (Song et al., 2020, https://arxiv.org/abs/2004.09297).

Reads checkpoints of ``model_type: "mpnet"``: microsoft/mpnet-base and sentence-transformers models
built on it (all-mpnet-base-v2). BERT's layer wiring with a T5-style relative position bias shared by
every layer, RoBERTa-style position ids and no segment embeddings. Attribute paths are the Hub weight
names.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.losses import token_classification_loss
from headway.modeling import PreTrainedModel
from headway.models.bert import BertEncoder, BertLayer, BertPooler
from headway.models.encoder import check_companions, check_index_ranges, check_one_input, run_encoder
from headway.models.heads import MultipleChoice, QuestionAnswering, TokenClassification
from headway.models.roberta import ClassificationHeadOnFirstToken, RobertaLMHead, position_ids_from_input_ids
from headway.nn.attention import attention
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear
from headway.nn.relative_position import relative_position_bucket
from headway.outputs import BaseModelOutputWithPooling, MaskedLMOutput

Tensor = torch.Tensor

# The reference buckets relative positions into 32 buckets whatever ``relative_attention_num_buckets``
# says (that field only sizes the bias table), with exact buckets up to 8 and one bucket past 128.
_NUM_BUCKETS = 32
_MAX_DISTANCE = 128


@config_class
class MPNetConfig(PretrainedConfig):
    model_type: ClassVar[str] = "mpnet"

    vocab_size: int = 30527
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512  # released checkpoints say 514 (two reserved rows)
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    relative_attention_num_buckets: int = 32
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    # Not a field: MPNet's heads drop out with hidden_dropout_prob; this lets RoBERTa's head be reused.
    classifier_dropout: ClassVar[float | None] = None

    @property
    def max_input_length(self) -> int:
        """Positions start after the padding row, which MPNet fixes at 1 (see MPNetEmbeddings)."""
        return self.max_position_embeddings - 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )


class MPNetEmbeddings(nn.Module):
    """Word plus position embeddings; positions count non-pad tokens, as in RoBERTa."""

    def __init__(self, config: MPNetConfig) -> None:
        super().__init__()
        self.padding_idx = 1  # fixed by the reference, whatever config.pad_token_id says
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size, padding_idx=self.padding_idx)
        self.position_embeddings = Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=self.padding_idx
        )
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None) -> Tensor:
        check_index_ranges(  # one device->host sync for both
            ("input_ids", input_ids if inputs_embeds is None else None, self.word_embeddings.num_embeddings),
            ("position_ids", position_ids, self.position_embeddings.num_embeddings),
        )
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        B, T = inputs_embeds.shape[:2]
        if position_ids is None:
            if input_ids is not None:
                position_ids = position_ids_from_input_ids(input_ids, self.padding_idx)  # (B, T)
            else:  # no ids to find padding in: every token is a position
                start = self.padding_idx + 1
                position_ids = torch.arange(start, T + start, device=inputs_embeds.device).expand(B, T)
            num = self.position_embeddings.num_embeddings
            if T + self.padding_idx >= num and int(position_ids.max()) >= num:
                raise ValueError(
                    f"Sequence length {T} exceeds the model's maximum of {num - self.padding_idx - 1} "
                    "tokens; truncate the input (tokenizer(..., truncation=True))"
                )
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class MPNetSelfAttention(nn.Module):
    """Multi-head attention with its output projection ``o``; the position bias arrives in the mask."""

    def __init__(self, config: MPNetConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.q = Linear(config.hidden_size, config.hidden_size)
        self.k = Linear(config.hidden_size, config.hidden_size)
        self.v = Linear(config.hidden_size, config.hidden_size)
        self.o = Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, hidden_states: Tensor, mask: Tensor | None, output_attentions: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        B, T, _ = hidden_states.shape
        # (B, T, hidden) -> (B, heads, T, head_dim)
        q = self.q(hidden_states).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k(hidden_states).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v(hidden_states).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        out, weights = attention(
            q, k, v, mask, dropout_p=self.dropout_p if self.training else 0.0, output_attentions=output_attentions
        )
        return self.o(out.transpose(1, 2).reshape(B, T, -1)), weights  # (B, T, hidden)


class MPNetAttention(nn.Module):
    def __init__(self, config: MPNetConfig) -> None:
        super().__init__()
        self.attn = MPNetSelfAttention(config)  # attention.attn.{q,k,v,o}
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: Tensor, mask: Tensor | None, output_attentions: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        out, weights = self.attn(hidden_states, mask, output_attentions)
        return self.LayerNorm(self.dropout(out) + hidden_states), weights


class MPNetLayer(BertLayer):
    """BERT's layer (same feed-forward names and residual wiring) around MPNet's attention block."""

    attention_class = MPNetAttention


class MPNetEncoder(BertEncoder):
    """BERT's encoder loop; a relative position bias, computed once per forward, joins the mask."""

    layer_class = MPNetLayer

    def __init__(self, config: MPNetConfig) -> None:
        super().__init__(config)
        self.relative_attention_bias = Embedding(config.relative_attention_num_buckets, config.num_attention_heads)

    def position_bias(self, seq_len: int) -> Tensor:
        """The (1, heads, T, T) additive bias of each key offset from each query."""
        position = torch.arange(seq_len, device=self.relative_attention_bias.weight.device)
        offsets = position[None, :] - position[:, None]  # (T, T): key - query
        bucket = relative_position_bucket(offsets, _NUM_BUCKETS, _MAX_DISTANCE)
        return self.relative_attention_bias(bucket).permute(2, 0, 1)[None]  # (T, T, heads) -> (1, heads, T, T)

    def forward(
        self, hidden_states: Tensor, mask: Tensor | None, *, output_hidden_states: bool, output_attentions: bool
    ) -> tuple[Tensor, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]:
        bias = self.position_bias(hidden_states.shape[1]).to(hidden_states.dtype)
        mask = bias if mask is None else mask + bias  # (1 or B, heads, T, T)
        return super().forward(
            hidden_states, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )


class MPNetPreTrainedModel(PreTrainedModel):
    config_class = MPNetConfig
    base_model_prefix = "mpnet"
    # Stored by older checkpoints (all-mpnet-base-v2), recomputed here. Like the reference, a pooler the
    # model lacks is reported, not ignored.
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [r"position_ids$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RobertaLMHead):
            module.bias.zero_()


class MPNetModel(MPNetPreTrainedModel):
    """The bare encoder: ``last_hidden_state`` (B, T, hidden) and ``pooler_output`` (B, hidden)."""

    def __init__(self, config: MPNetConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = MPNetEmbeddings(config)
        self.encoder = MPNetEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.embeddings.word_embeddings = embeddings

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        *,
        token_type_ids: Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """``token_type_ids`` is accepted and ignored: MPNet has no segment embeddings."""
        shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.hidden_size)
        check_companions(shape, attention_mask=attention_mask, position_ids=position_ids)
        hidden = self.embeddings(input_ids, position_ids, inputs_embeds)
        hidden, all_hidden, all_attentions = run_encoder(
            self.config, self.encoder, hidden, attention_mask,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
        )
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=self.pooler(hidden) if self.pooler is not None else None,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )


class MPNetForSequenceClassification(MPNetPreTrainedModel, ClassificationHeadOnFirstToken):
    base_model_class = MPNetModel


class MPNetForTokenClassification(MPNetPreTrainedModel, TokenClassification):
    base_model_class = MPNetModel


class MPNetForQuestionAnswering(MPNetPreTrainedModel, QuestionAnswering):
    base_model_class = MPNetModel


class MPNetForMaskedLM(MPNetPreTrainedModel):
    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.decoder.weight": "mpnet.embeddings.word_embeddings.weight"}

    def __init__(self, config: MPNetConfig) -> None:
        super().__init__(config)
        self.mpnet = MPNetModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                position_ids: Tensor | None = None, inputs_embeds: Tensor | None = None,
                labels: Tensor | None = None, **kwargs) -> MaskedLMOutput:
        out = self.mpnet(input_ids, attention_mask, position_ids, inputs_embeds, **kwargs)
        logits = self.lm_head(out.last_hidden_state)  # (B, T, vocab)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class MPNetForMultipleChoice(MPNetPreTrainedModel, MultipleChoice):
    base_model_class = MPNetModel  # classifier(dropout(pooler_output)) per choice


__all__ = [
    "MPNetConfig",
    "MPNetForMaskedLM",
    "MPNetForMultipleChoice",
    "MPNetForQuestionAnswering",
    "MPNetForSequenceClassification",
    "MPNetForTokenClassification",
    "MPNetModel",
]
