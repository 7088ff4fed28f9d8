"""BERT (Devlin et al., 2018, https://arxiv.org/abs/1810.04805).

Reads checkpoints of ``model_type: "bert"``: bert-base-*, MiniLM (all-MiniLM-L6-v2), and every
sentence-transformers model built on them. Attribute paths are the Hub weight names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from headway.configuration import PretrainedConfig, config_class
from headway.losses import sequence_classification_loss, span_loss, token_classification_loss
from headway.modeling import PreTrainedModel
from headway.nn.activations import get_activation
from headway.nn.attention import attention, padding_mask
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear, fused_linear, fused_packed, packed_inference
from headway.outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    PreTrainingOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

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


def check_token_ids(input_ids: Tensor, vocab_size: int) -> None:
    """Out-of-range ids would index past the embedding table: say which and what was expected."""
    if not input_ids.numel():
        return
    low, high = torch.aminmax(input_ids)
    if int(high) >= vocab_size or int(low) < 0:
        bad = input_ids[(input_ids >= vocab_size) | (input_ids < 0)].unique()[:10].tolist()
        raise ValueError(
            f"input_ids contain token ids {bad} outside the vocabulary [0, {vocab_size}); was the text "
            "encoded with this model's tokenizer, and was the embedding resized after adding tokens?"
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
        if inputs_embeds is None:
            check_token_ids(input_ids, self.word_embeddings.num_embeddings)
            inputs_embeds = self.word_embeddings(input_ids)
        seq_len = inputs_embeds.shape[1]
        if position_ids is None:
            if seq_len > self.position_embeddings.num_embeddings:
                raise ValueError(
                    f"Sequence length {seq_len} exceeds the model's maximum of "
                    f"{self.position_embeddings.num_embeddings} positions; truncate the input "
                    "(tokenizer(..., truncation=True))"
                )
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


class BertEncoder(nn.Module):
    layer_class: ClassVar[type[nn.Module]] = BertLayer  # families swap in their own layer

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(self.layer_class(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(
        self, hidden_states: Tensor, mask: Tensor | None, *, output_hidden_states: bool, output_attentions: bool
    ) -> tuple[Tensor, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]:
        all_hidden = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        fast = None if output_attentions else _inference_layers(self, hidden_states)
        if fast is not None:
            for parts in fast:
                hidden_states = _inference_layer(parts, hidden_states, mask)
                if all_hidden is not None:
                    all_hidden.append(hidden_states)
            return hidden_states, tuple(all_hidden) if all_hidden is not None else None, None
        for layer in self.layer:
            if self.gradient_checkpointing and self.training:
                hidden_states, weights = checkpoint(layer, hidden_states, mask, output_attentions, use_reentrant=False)
            else:
                hidden_states, weights = layer(hidden_states, mask, output_attentions)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            if all_attentions is not None:
                all_attentions.append(weights)
        return (
            hidden_states,
            tuple(all_hidden) if all_hidden is not None else None,
            tuple(all_attentions) if all_attentions is not None else None,
        )


class _LayerParts(NamedTuple):
    """The modules of one ``BertLayer`` that its inference fast path reads, resolved once per forward."""

    qkv: tuple[Linear, Linear, Linear]  # attention.self.{query,key,value}
    heads: int
    head_dim: int
    attention_out: Linear  # attention.output.dense
    attention_norm: LayerNorm  # attention.output.LayerNorm
    up: Linear  # intermediate.dense
    fused_gelu: bool
    activation: Callable[[Tensor], Tensor]
    down: Linear  # output.dense
    output_norm: LayerNorm  # output.LayerNorm


def _inference_layers(encoder: BertEncoder, hidden: Tensor) -> list[_LayerParts] | None:
    """Each layer's parts when the encoder may run its layers without module calls, else None.

    For CPU float32 inference without autograd (the packed products), exactly the BERT layer classes
    (families that swap parts in keep the module path), and no hooks on any module involved: skipping
    ``Module.__call__`` and the per-product checks then changes nothing but the time (on MiniLM at
    batch 1 x 16, ~0.04 ms a layer). The outputs are bit-identical, since the kernels are the same
    (tests/models/test_bert_fast_path.py).
    """
    if encoder.training or not packed_inference(hidden):
        return None
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return None
    found = []
    for layer in encoder.layer:
        if type(layer) is not BertLayer:
            return None
        attn, inter, out = (layer._modules[name] for name in ("attention", "intermediate", "output"))
        if type(attn) is not BertAttention or type(inter) is not BertIntermediate or type(out) is not BertOutput:
            return None
        sa, so = attn._modules["self"], attn._modules["output"]
        if type(sa) is not BertSelfAttention or type(so) is not BertSelfOutput:
            return None
        qkv = (sa._modules["query"], sa._modules["key"], sa._modules["value"])
        linears = (*qkv, so._modules["dense"], inter._modules["dense"], out._modules["dense"])
        others = (so._modules["LayerNorm"], out._modules["LayerNorm"], so._modules["dropout"], out._modules["dropout"])
        if any(type(m) is not Linear or not m.packable() for m in linears) or any(m.bias is None for m in qkv):
            return None
        if tuple(type(m) for m in others) != (LayerNorm, LayerNorm, Dropout, Dropout):
            return None
        if any(m._forward_hooks or m._forward_pre_hooks for m in (layer, attn, sa, so, inter, out, *linears, *others)):
            return None
        found.append(_LayerParts(qkv, sa.num_heads, sa.head_dim, linears[3], others[0], linears[4],
                                 inter.fused_gelu, inter.intermediate_act_fn, linears[5], others[1]))
    return found


def _inference_layer(parts: _LayerParts, hidden: Tensor, mask: Tensor | None) -> Tensor:
    """``BertLayer.forward`` in eval mode, on the packed path, without module calls (same kernels)."""
    B, T, _ = hidden.shape
    q, k, v = fused_packed(hidden, parts.qkv).view(B, T, 3, parts.heads, parts.head_dim).unbind(2)
    attended, _ = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)  # (B, heads, T, d)
    attended = attended.transpose(1, 2).reshape(B, T, -1)  # (B, T, hidden)
    hidden = _layer_norm(parts.attention_out.packed(attended) + hidden, parts.attention_norm)
    if parts.fused_gelu:
        wide = parts.up.packed(hidden, gelu=True)  # (B, T, intermediate)
    else:
        wide = parts.activation(parts.up.packed(hidden))
    return _layer_norm(parts.down.packed(wide) + hidden, parts.output_norm)


def _layer_norm(x: Tensor, norm: LayerNorm) -> Tensor:
    params = norm._parameters
    return F.layer_norm(x, norm.normalized_shape, params["weight"], params["bias"], norm.eps)


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


def run_encoder(
    config: PretrainedConfig,
    encoder: nn.Module,
    hidden: Tensor,
    attention_mask: Tensor | None,
    *,
    output_attentions: bool | None,
    output_hidden_states: bool | None,
) -> tuple[Tensor, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]:
    """The encoder stack over embedded ``hidden`` (B, T, hidden), the output flags defaulting to the config.

    Returns the last hidden state and, when asked, every hidden state and every attention map.
    """
    output_attentions = config.output_attentions if output_attentions is None else output_attentions
    output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
    mask = padding_mask(attention_mask, hidden.dtype)
    return encoder(hidden, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions)


def check_one_input(input_ids: Tensor | None, inputs_embeds: Tensor | None) -> None:
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids or inputs_embeds")


def flatten_choices(*inputs: Tensor | None) -> tuple[int, list[Tensor | None]]:
    """(B, choices, T...) inputs -> the number of choices and the inputs as (B * choices, T...)."""
    num_choices = next(t for t in inputs if t is not None).shape[1]
    return num_choices, [t.flatten(0, 1) if t is not None else None for t in inputs]


def choice_output(scores: Tensor, num_choices: int, labels: Tensor | None,
                  out: BaseModelOutputWithPooling) -> MultipleChoiceModelOutput:
    """(B * choices, 1) scores -> (B, choices) logits, with the cross-entropy loss when labels are given."""
    logits = scores.view(-1, num_choices)  # (B, choices)
    loss = F.cross_entropy(logits, labels) if labels is not None else None
    return MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions)


def classifier_dropout(config: PretrainedConfig) -> float:
    """The head's dropout: ``classifier_dropout`` when a config sets it, else ``hidden_dropout_prob``."""
    value = getattr(config, "classifier_dropout", None)
    return value if value is not None else config.hidden_dropout_prob


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
        check_one_input(input_ids, inputs_embeds)
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


class BertForSequenceClassification(BertPreTrainedModel):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.dropout = Dropout(classifier_dropout(config))
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None, **kwargs) -> SequenceClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = sequence_classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class BertForTokenClassification(BertPreTrainedModel):
    _keys_to_ignore_on_load_unexpected = [*BertPreTrainedModel._keys_to_ignore_on_load_unexpected, r"pooler"]

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = Dropout(classifier_dropout(config))
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None, **kwargs) -> TokenClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class BertForQuestionAnswering(BertPreTrainedModel):
    _keys_to_ignore_on_load_unexpected = [*BertPreTrainedModel._keys_to_ignore_on_load_unexpected, r"pooler"]

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, start_positions: Tensor | None = None,
                end_positions: Tensor | None = None, **kwargs) -> QuestionAnsweringModelOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        return qa_output(self.qa_outputs(out.last_hidden_state), start_positions, end_positions, out)


def qa_output(logits: Tensor, start_positions: Tensor | None, end_positions: Tensor | None,
              out: BaseModelOutputWithPooling) -> QuestionAnsweringModelOutput:
    """Split (B, T, 2) span logits into start and end, with the span loss when positions are given."""
    start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))  # (B, T) each
    loss = None
    if start_positions is not None and end_positions is not None:
        loss = span_loss(start_logits, end_logits, start_positions, end_positions)
    return QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)


class BertForMaskedLM(BertPreTrainedModel):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _keys_to_ignore_on_load_unexpected = [
        *BertPreTrainedModel._keys_to_ignore_on_load_unexpected, r"pooler", r"cls\.seq_relationship"
    ]

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


class BertForMultipleChoice(BertPreTrainedModel):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.dropout = Dropout(classifier_dropout(config))
        self.classifier = Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None, **kwargs
                ) -> MultipleChoiceModelOutput:
        num_choices, flat = flatten_choices(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        out = self.bert(*flat, **kwargs)
        return choice_output(self.classifier(self.dropout(out.pooler_output)), num_choices, labels, out)


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
