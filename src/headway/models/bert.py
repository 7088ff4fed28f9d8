"""BERT (Devlin et al., 2018, https://arxiv.org/abs/1810.04805).

Reads checkpoints of ``model_type: "bert"``: bert-base-*, MiniLM (all-MiniLM-L6-v2), and every
sentence-transformers model built on them. Attribute paths are the Hub weight names.
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
from headway.nn.linear import Linear, fused_linear
from headway.outputs import BaseModelOutputWithPooling, MaskedLMOutput, PreTrainingOutput

Tensor = torch.Tensor


@config_class
class BertConfig(PretrainedConfig):
    model_type: ClassVar[str] = "bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    position_embedding_type: str = "absolute"
    use_cache: bool = True
    classifier_dropout: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.position_embedding_type != "absolute":
            raise ValueError(
                f"position_embedding_type {self.position_embedding_type!r} is not supported; only 'absolute'"
            )


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        check_index_ranges(  # one device->host sync for the three
            ("input_ids", input_ids if inputs_embeds is None else None, self.word_embeddings.num_embeddings),
            ("token_type_ids", token_type_ids, self.token_type_embeddings.num_embeddings),
            ("position_ids", position_ids, self.position_embeddings.num_embeddings),
        )
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        seq_len = inputs_embeds.shape[1]
        if position_ids is None:
            check_length(seq_len, self.position_embeddings.num_embeddings)
            position_ids = torch.arange(seq_len, device=inputs_embeds.device)[None]  # (1, T)
        if token_type_ids is None:  # all segment 0: one row, broadcast
            embeddings = inputs_embeds + self.token_type_embeddings.weight[0]
        else:
            embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = Linear(config.hidden_size, config.hidden_size)
        self.key = Linear(config.hidden_size, config.hidden_size)
        self.value = Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, hidden_states: Tensor, mask: Tensor | None, output_attentions: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        B, T, _ = hidden_states.shape
        qkv = fused_linear(hidden_states, (self.query, self.key, self.value))  # CPU inference only
        if qkv is not None:
            q, k, v = qkv.view(B, T, 3, self.num_heads, self.head_dim).unbind(2)
        else:
            q, k, v = (proj(hidden_states).view(B, T, self.num_heads, self.head_dim)
                       for proj in (self.query, self.key, self.value))
        # (B, T, heads, head_dim) -> (B, heads, T, head_dim)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        out, weights = attention(
            q, k, v, mask, dropout_p=self.dropout_p if self.training else 0.0, output_attentions=output_attentions
        )
        return out.transpose(1, 2).reshape(B, T, -1), weights  # (B, T, hidden)


class BertSelfOutput(nn.Module):
    def __init__(self, config: BertConfig, in_features: int | None = None) -> None:
        super().__init__()
        self.dense = Linear(in_features or config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)  # attention.self.{query,key,value}
        self.output = BertSelfOutput(config)  # attention.output.{dense,LayerNorm}

    def forward(self, hidden_states: Tensor, mask: Tensor | None, output_attentions: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        out, weights = self.self(hidden_states, mask, output_attentions)
        return self.output(out, hidden_states), weights


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)
        self.fused_gelu = config.hidden_act == "gelu"  # GELU fused into the matrix product when packed

    def forward(self, hidden_states: Tensor) -> Tensor:
        if self.fused_gelu:
            return self.dense.forward_gelu(hidden_states)
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(BertSelfOutput):
    """Projects the feed-forward back to hidden size, then dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config, in_features=config.intermediate_size)


class BertLayer(nn.Module):
    attention_class: ClassVar[type[nn.Module]] = BertAttention  # families swap in their own attention

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = self.attention_class(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states: Tensor, mask: Tensor | None, output_attentions: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        attended, weights = self.attention(hidden_states, mask, output_attentions)
        return self.output(self.intermediate(attended), attended), weights


class BertEncoder(Encoder):
    """The stack of BERT layers (``encoder.layer.N``); families swap in their own ``layer_class``."""

    layer_class = BertLayer


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))  # the first ([CLS]) token


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        self.decoder.bias = self.bias  # one bias under both Hub names (predictions.bias, decoder.bias)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.decoder(self.transform(hidden_states))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output: Tensor) -> Tensor:
        return self.predictions(sequence_output)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = Linear(config.hidden_size, 2)

    def forward(self, sequence_output: Tensor, pooled_output: Tensor) -> tuple[Tensor, Tensor]:
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # Stored by older checkpoints, recomputed here.
    _keys_to_ignore_on_load_unexpected = [r"position_ids$", r"token_type_ids$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            module.bias.zero_()


class BertModel(BertPreTrainedModel):
    """The bare encoder: ``last_hidden_state`` (B, T, hidden) and ``pooler_output`` (B, hidden)."""

    embeddings_class: ClassVar[type[nn.Module]] = BertEmbeddings  # families swap in their own parts
    encoder_class: ClassVar[type[nn.Module]] = BertEncoder

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = self.encoder_class(config)
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
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        *,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.hidden_size)
        check_companions(shape, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
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


# Heads that build the encoder without its pooler drop the pooler of a full checkpoint silently.
NO_POOLER_IGNORE = [*BertPreTrainedModel._keys_to_ignore_on_load_unexpected, r"pooler"]


class BertForSequenceClassification(BertPreTrainedModel, SequenceClassification):
    base_model_class = BertModel  # classifier(dropout(pooler_output))


class BertForTokenClassification(BertPreTrainedModel, TokenClassification):
    base_model_class = BertModel
    _keys_to_ignore_on_load_unexpected = NO_POOLER_IGNORE


class BertForQuestionAnswering(BertPreTrainedModel, QuestionAnswering):
    base_model_class = BertModel
    _keys_to_ignore_on_load_unexpected = NO_POOLER_IGNORE


class BertForMaskedLM(BertPreTrainedModel):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _keys_to_ignore_on_load_unexpected = [*NO_POOLER_IGNORE, r"cls\.seq_relationship"]

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None, **kwargs) -> MaskedLMOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        logits = self.cls(out.last_hidden_state)  # (B, T, vocab)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class BertForPreTraining(BertPreTrainedModel):
    """Masked-LM and next-sentence prediction heads, as BERT was pre-trained."""

    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None,
                next_sentence_label: Tensor | None = None, **kwargs) -> PreTrainingOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        prediction_logits, nsp_logits = self.cls(out.last_hidden_state, out.pooler_output)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = token_classification_loss(prediction_logits, labels) + F.cross_entropy(
                nsp_logits.view(-1, 2), next_sentence_label.view(-1)
            )
        return PreTrainingOutput(loss, prediction_logits, nsp_logits, out.hidden_states, out.attentions)


class BertForMultipleChoice(BertPreTrainedModel, MultipleChoice):
    base_model_class = BertModel  # classifier(dropout(pooler_output)) per choice


__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertForMultipleChoice",
    "BertForPreTraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
]
