"""BART (Lewis et al., 2019, https://arxiv.org/abs/1910.13461): a denoising sequence-to-sequence Transformer.

Reads ``model_type: "bart"`` checkpoints (facebook/bart-base, bart-large, bart-large-cnn, bart-large-mnli,
distilbart-*, their fine-tunes): an encoder and a decoder of post-norm layers over one token embedding
(``model.shared``, tied to both stacks' ``embed_tokens`` and the ``lm_head``), learned positions starting two
rows into their table, a LayerNorm over the embeddings (``layernorm_embedding``). Attribute paths are the Hub
weight names. mBART, Marian and Pegasus change class attributes and small hooks, not code: the layers'
``normalize_before`` (pre-norm), the stacks' ``position_class``, ``embedding_norm``, ``final_norm``,
``embedding_scale`` and ``token_vocab_size``, the model's ``shares_embeddings`` and
``decoder_inputs_from_input_ids``, the config's ``default_num_labels``.

The decoder keeps its keys and values in a ``headway.generation.cache.EncoderDecoderCache``: self-attention
keys grow by one position per step; cross-attention keys are computed on the first call and read after.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.generation.cache import EncoderDecoderCache, as_encoder_decoder_cache
from headway.generation.generate import GenerationMixin
from headway.modeling import PreTrainedModel
from headway.models.encoder import check_length, check_one_input, check_token_ids, output_flags, run_layers
from headway.models.heads import ClassificationHead, QuestionAnswering, SequenceClassification, keep_last
from headway.models.seq2seq import (
    IGNORE_INDEX,
    SEQ2SEQ_CLASSIFIER_INPUTS,
    SEQ2SEQ_QA_INPUTS,
    as_encoder_output,
    seq2seq_output,
    shift_tokens_right,
)
from headway.nn.activations import get_activation
from headway.nn.attention import attention, causal_mask, padding_mask
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear
from headway.outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)

Tensor = torch.Tensor
_POSITIVE_FIELDS = (
    "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
    "encoder_ffn_dim", "decoder_ffn_dim",
)  # fmt: skip


def _alias(name: str) -> property:
    return property(lambda self: getattr(self, name), lambda self, value: setattr(self, name, value))


@config_class
class BartConfig(PretrainedConfig):
    """BART's settings, with the reference's names and defaults (bart-large's shape).

    ``hidden_size``, ``num_attention_heads`` and ``num_hidden_layers`` read (and write) ``d_model``,
    ``encoder_attention_heads`` and ``encoder_layers``, as in the reference. Without ``id2label`` a BART
    config has three labels (the MNLI heads' count), as the reference's does.
    """

    model_type: ClassVar[str] = "bart"
    default_num_labels: ClassVar[int] = 3  # labels without id2label (mBART, Marian, Pegasus: 2)

    vocab_size: int = 50265
    max_position_embeddings: int = 1024
    encoder_layers: int = 12
    encoder_ffn_dim: int = 4096
    encoder_attention_heads: int = 16
    decoder_layers: int = 12
    decoder_ffn_dim: int = 4096
    decoder_attention_heads: int = 16
    encoder_layerdrop: float = 0.0
    decoder_layerdrop: float = 0.0
    activation_function: str = "gelu"
    d_model: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    init_std: float = 0.02
    classifier_dropout: float = 0.0
    scale_embedding: bool = False
    use_cache: bool = True
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    is_encoder_decoder: bool = True
    decoder_start_token_id: int | None = 2
    forced_bos_token_id: int | None = None  # written back only when set (the reference has no such field)
    forced_eos_token_id: int | list[int] | None = 2

    def __post_init__(self) -> None:
        if self.id2label is None:
            self.id2label = {i: f"LABEL_{i}" for i in range(self.default_num_labels)}
        super().__post_init__()
        for name in _POSITIVE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for heads in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, heads):
                raise ValueError(
                    f"d_model ({self.d_model}) must be a multiple of {heads} ({getattr(self, heads)})"
                )

    # The reference's attribute map: the generic names read (and write) BART's.
    hidden_size = _alias("d_model")
    num_attention_heads = _alias("encoder_attention_heads")
    num_hidden_layers = _alias("encoder_layers")
    initializer_range = _alias("init_std")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if out.get("forced_bos_token_id") is None:
            out.pop("forced_bos_token_id", None)
        return out


class BartLearnedPositionalEmbedding(Embedding):
    """Learned positions; position ``p`` reads row ``p + 2`` (fairseq kept the first two rows for padding)."""

    offset: ClassVar[int] = 2

    def __init__(self, num_positions: int, embedding_dim: int) -> None:
        super().__init__(num_positions + self.offset, embedding_dim)

    def forward(self, positions: Tensor) -> Tensor:
        """Position vectors (..., dim) of ``positions`` (T,) or (B, T)."""
        return super().forward(positions + self.offset)


class BartAttention(nn.Module):
    """Multi-head attention: self-attention over ``hidden``, or cross-attention over ``key_value_states``.

    With a cache, self-attention appends its keys and values to ``cache.self_attention_cache``; cross-
    attention computes its keys and values on the first call and reads the stored ones afterwards. The
    encoder's output may hold one row per group of consecutive decoder rows (``generate``'s beams of one
    input): each group's queries then attend to their row's keys together, which are neither repeated nor
    stored per beam.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, *, layer_idx: int = 0, bias: bool = True
    ) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.layer_idx = num_heads, embed_dim // num_heads, layer_idx
        self.dropout = dropout
        self.scaling = self.head_dim**-0.5
        self.k_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)

    def _heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, heads, T, head_dim)

    def forward(
        self, hidden: Tensor, mask: Tensor | None, *, key_value_states: Tensor | None = None,
        cache: EncoderDecoderCache | None = None, is_causal: bool = False, output_attentions: bool = False,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """(B, T, hidden) -> (B, T, hidden), and the weights (B, heads, T, S) when ``output_attentions``."""
        B, T, E = hidden.shape
        query = self._heads(self.q_proj(hidden))
        if key_value_states is None:  # self-attention
            key, value = self._heads(self.k_proj(hidden)), self._heads(self.v_proj(hidden))
            if cache is not None:
                key, value = cache.self_attention_cache.update(key, value, self.layer_idx)
        else:  # cross-attention: the encoder's keys, computed once per cache
            stored = cache.cross_attention(self.layer_idx) if cache is not None else None
            if stored is not None:
                key, value = stored
            else:
                key = self._heads(self.k_proj(key_value_states))
                value = self._heads(self.v_proj(key_value_states))
                if cache is not None:
                    key, value = cache.store_cross_attention(key, value, self.layer_idx)
        rows = key.shape[0]
        groups = B // rows
        if groups * rows != B:
            raise ValueError(f"the decoder's {B} rows are not a multiple of the encoder output's {rows} rows")
        if groups > 1:  # a group's queries side by side: (rows, heads, groups * T, head_dim)
            query = (
                query.reshape(rows, groups, self.num_heads, T, self.head_dim).transpose(1, 2).flatten(2, 3)
            )
        out, weights = attention(
            query, key, value, mask, dropout_p=self.dropout if self.training else 0.0, scale=self.scaling,
            is_causal=is_causal and mask is None, output_attentions=output_attentions,
        )  # fmt: skip
        out = out.unflatten(2, (groups, T)).permute(0, 2, 3, 1, 4)  # (rows, groups, T, heads, head_dim)
        out = out.reshape(B, T, E)  # (B, T, hidden)
        if weights is not None and groups > 1:
            weights = weights.unflatten(2, (groups, T)).transpose(1, 2).flatten(0, 1)  # (B, heads, T, S)
        return self.out_proj(out), weights


class BartLayer(nn.Module):
    """What the encoder's and the decoder's layers share: the residual blocks and the feed-forward.

    ``normalize_before`` places each LayerNorm: False (BART, Marian) normalises after the residual sum,
    True (mBART, Pegasus) normalises a block's input and adds the block's output to the unnormalised one.
    """

    normalize_before: ClassVar[bool] = False

    def __init__(self, config: BartConfig, ffn_dim: int) -> None:
        super().__init__()
        d = config.d_model
        self.dropout = Dropout(config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.exact_gelu = config.activation_function in ("gelu", "gelu_python")
        self.activation_dropout = Dropout(config.activation_dropout)
        self.fc1 = Linear(d, ffn_dim)
        self.fc2 = Linear(ffn_dim, d)
        self.final_layer_norm = LayerNorm(d)

    def residual(self, hidden: Tensor, norm: nn.Module, block: Any) -> tuple[Tensor, Tensor | None]:
        """``hidden`` plus ``block``'s output, normalised by ``norm`` where ``normalize_before`` says."""
        if self.normalize_before:
            out, weights = block(norm(hidden))
            return hidden + self.dropout(out), weights
        out, weights = block(hidden)
        return norm(hidden + self.dropout(out)), weights

    def feed_forward(self, hidden: Tensor) -> tuple[Tensor, None]:
        inner = self.fc1.forward_gelu(hidden) if self.exact_gelu else self.activation_fn(self.fc1(hidden))
        return self.fc2(self.activation_dropout(inner)), None


class BartEncoderLayer(BartLayer):
    """Self-attention, then the feed-forward."""

    def __init__(self, config: BartConfig, layer_idx: int = 0) -> None:
        super().__init__(config, config.encoder_ffn_dim)
        self.self_attn = BartAttention(
            config.d_model, config.encoder_attention_heads, config.attention_dropout, layer_idx=layer_idx
        )
        self.self_attn_layer_norm = LayerNorm(config.d_model)

    def forward(
        self, hidden: Tensor, mask: Tensor | None, output_attentions: bool = False, **kwargs: Any
    ) -> tuple[Tensor, Tensor | None]:
        hidden, weights = self.residual(
            hidden, self.self_attn_layer_norm,
            lambda h: self.self_attn(h, mask, output_attentions=output_attentions),
        )  # fmt: skip
        hidden, _ = self.residual(hidden, self.final_layer_norm, self.feed_forward)
        if hidden.dtype == torch.float16 and not bool(torch.isfinite(hidden).all()):
            limit = torch.finfo(hidden.dtype).max - 1000  # as the reference: keep fp16 overflow finite
            hidden = hidden.clamp(min=-limit, max=limit)
        return hidden, weights


class BartDecoderLayer(BartLayer):
    """Causal self-attention, cross-attention over the encoder's output (when given), the feed-forward."""

    def __init__(self, config: BartConfig, layer_idx: int = 0) -> None:
        super().__init__(config, config.decoder_ffn_dim)
        d, heads = config.d_model, config.decoder_attention_heads
        self.self_attn = BartAttention(d, heads, config.attention_dropout, layer_idx=layer_idx)
        self.self_attn_layer_norm = LayerNorm(d)
        self.encoder_attn = BartAttention(d, heads, config.attention_dropout, layer_idx=layer_idx)
        self.encoder_attn_layer_norm = LayerNorm(d)

    def forward(
        self, hidden: Tensor, mask: Tensor | None, output_attentions: bool = False, *,
        encoder_hidden_states: Tensor | None = None, encoder_mask: Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
    ) -> tuple[Tensor, tuple[Tensor | None, Tensor | None] | None]:  # fmt: skip
        """Returns the hidden states and, with ``output_attentions``, (self weights, cross weights)."""
        hidden, self_weights = self.residual(
            hidden, self.self_attn_layer_norm,
            lambda h: self.self_attn(h, mask, cache=cache, is_causal=True, output_attentions=output_attentions),
        )  # fmt: skip
        cross_weights = None
        if encoder_hidden_states is not None:
            hidden, cross_weights = self.residual(
                hidden, self.encoder_attn_layer_norm,
                lambda h: self.encoder_attn(h, encoder_mask, key_value_states=encoder_hidden_states,
                                            cache=cache, output_attentions=output_attentions),
            )  # fmt: skip
        hidden, _ = self.residual(hidden, self.final_layer_norm, self.feed_forward)
        return hidden, ((self_weights, cross_weights) if output_attentions else None)


class BartPreTrainedModel(PreTrainedModel):
    config_class: ClassVar[type[PretrainedConfig]] = BartConfig
    base_model_prefix: ClassVar[str] = "model"
    # The decoder takes an encoder output of one row per group of decoder rows: generate() need not repeat
    # it for each beam (see BartAttention).
    groups_encoder_rows: ClassVar[bool] = True
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [r"encoder\.version", r"decoder\.version"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)  # normal(0, init_std), zero biases, unit norms, zero padding rows
        if isinstance(module, BartForConditionalGeneration):
            module.final_logits_bias.zero_()


class BartStack(BartPreTrainedModel):
    """What the encoder and the decoder share: token and position embeddings, the embedding LayerNorm,
    the layers, an optional final LayerNorm. Subclasses name their layer and say which norms exist."""

    layer_class: ClassVar[type[BartLayer]]
    position_class: ClassVar[type[nn.Module]] = BartLearnedPositionalEmbedding
    embedding_norm: ClassVar[bool] = True  # ``layernorm_embedding`` over the embeddings (BART, mBART)
    final_norm: ClassVar[bool] = False  # ``layer_norm`` after the last layer (mBART, Pegasus)

    def __init__(self, config: BartConfig, num_layers: int, layerdrop: float) -> None:
        super().__init__(config)
        d = config.d_model
        self.padding_idx = config.pad_token_id
        self.embed_scale = self.embedding_scale(config)
        self.embed_tokens = Embedding(self.token_vocab_size(config), d, padding_idx=config.pad_token_id)
        self.embed_positions = self.position_class(config.max_position_embeddings, d)
        self.layers = nn.ModuleList(self.layer_class(config, i) for i in range(num_layers))
        if self.embedding_norm:
            self.layernorm_embedding = LayerNorm(d)
        if self.final_norm:
            self.layer_norm = LayerNorm(d)
        self.dropout = Dropout(config.dropout)
        self.layerdrop = layerdrop
        self.gradient_checkpointing = False
        self.post_init()

    @staticmethod
    def token_vocab_size(config: BartConfig) -> int:
        """The rows of ``embed_tokens``: ``config.vocab_size`` (Marian's decoder may have its own)."""
        return config.vocab_size

    @staticmethod
    def embedding_scale(config: BartConfig) -> float:
        """The factor token embeddings are multiplied by: sqrt(d_model) with ``scale_embedding``, else 1."""
        return math.sqrt(config.d_model) if config.scale_embedding else 1.0

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.embed_tokens = embeddings

    def embed(
        self,
        input_ids: Tensor | None,
        inputs_embeds: Tensor | None,
        positions: Tensor | None = None,
        past: int = 0,
    ) -> Tensor:
        """Token (scaled, when computed from ids) plus position embeddings (``positions``, default ``past ..
        past + T - 1``), the embedding norm, dropout: (B, T, hidden)."""
        check_one_input(input_ids, inputs_embeds)
        T = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        check_length(past + T, self.config.max_position_embeddings)
        if positions is None:
            positions = torch.arange(past, past + T, device=self.embed_tokens.weight.device)
        if inputs_embeds is None:
            check_token_ids(input_ids, self.embed_tokens.num_embeddings)
            inputs_embeds = self.embed_tokens(input_ids)
            if self.embed_scale != 1.0:
                inputs_embeds = inputs_embeds * self.embed_scale
        hidden = inputs_embeds + self.embed_positions(positions)  # (B, T, hidden)
        if self.embedding_norm:
            hidden = self.layernorm_embedding(hidden)
        return self.dropout(hidden)

    def run(
        self, hidden: Tensor, mask: Tensor | None, output_attentions: bool, output_hidden_states: bool,
        **layer_kwargs: Any,
    ) -> tuple[Tensor, tuple[Tensor, ...] | None, tuple[Any, ...] | None]:  # fmt: skip
        """The layers (each skipped with probability ``layerdrop`` in training), then the final norm."""
        layers = list(self.layers)
        if self.training and self.layerdrop > 0.0:  # LayerDrop (https://arxiv.org/abs/1909.11556)
            layers = [layer for layer in layers if not bool(torch.rand([]) < self.layerdrop)]
        hidden, all_hidden, all_attentions = run_layers(
            layers, hidden, mask,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
            checkpointing=self.gradient_checkpointing and self.training, **layer_kwargs,
        )  # fmt: skip
        if self.final_norm:
            hidden = self.layer_norm(hidden)
            if all_hidden is not None:
                all_hidden = (*all_hidden[:-1], hidden)
        return hidden, all_hidden, all_attentions


class BartEncoder(BartStack):
    """The encoder: ``config.encoder_layers`` layers of bidirectional self-attention."""

    layer_class: ClassVar[type[BartLayer]] = BartEncoderLayer

    def __init__(self, config: BartConfig) -> None:
        super().__init__(config, config.encoder_layers, config.encoder_layerdrop)

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None, *, output_attentions: bool | None = None,
        output_hidden_states: bool | None = None, **kwargs: Any,
    ) -> BaseModelOutput:  # fmt: skip
        """Hidden states (B, T, hidden) of ``input_ids`` (B, T) (or ``inputs_embeds``), padding masked out
        by ``attention_mask`` (B, T) of 0/1."""
        flags = output_flags(self.config, output_attentions, output_hidden_states)
        hidden = self.embed(input_ids, inputs_embeds)
        mask = padding_mask(attention_mask, hidden.dtype)
        hidden, all_hidden, all_attentions = self.run(hidden, mask, *flags)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)


class BartDecoder(BartStack):
    """The decoder: ``config.decoder_layers`` layers of causal self-attention and cross-attention."""

    layer_class: ClassVar[type[BartLayer]] = BartDecoderLayer

    def __init__(self, config: BartConfig) -> None:
        super().__init__(config, config.decoder_layers, config.decoder_layerdrop)

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        encoder_hidden_states: Tensor | None = None, encoder_attention_mask: Tensor | None = None,
        past_key_values: EncoderDecoderCache | tuple | None = None, inputs_embeds: Tensor | None = None,
        use_cache: bool | None = None, *, cache_position: Tensor | None = None,
        output_attentions: bool | None = None, output_hidden_states: bool | None = None, **kwargs: Any,
    ) -> BaseModelOutputWithPastAndCrossAttentions:  # fmt: skip
        """Hidden states (B, T, hidden) of T new decoder tokens after the ``past_key_values`` already cached.

        Args:
            input_ids: decoder token ids (B, T); or ``inputs_embeds`` (B, T, hidden).
            attention_mask: 0/1 (B, past + T) over the cached and the new decoder tokens.
            encoder_hidden_states: the encoder's output (B, S, hidden); None skips cross-attention.
            encoder_attention_mask: 0/1 (B, S) over the encoder's tokens.
            past_key_values: an ``EncoderDecoderCache`` (updated in place), legacy 4-tuples per layer, or None.
            use_cache: keep keys and values in a cache (default ``config.use_cache``, off when training with
                gradient checkpointing).
            cache_position: (T,) positions of the new tokens; default ``past .. past + T - 1``.
        """
        flags = output_flags(self.config, output_attentions, output_hidden_states)
        if use_cache is None:
            use_cache = self.config.use_cache and not (self.gradient_checkpointing and self.training)
        cache = as_encoder_decoder_cache(past_key_values, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        hidden = self.embed(input_ids, inputs_embeds, cache_position, past)
        T = hidden.shape[1]
        self_mask = causal_mask(attention_mask, T, hidden.dtype, key_len=past + T, device=hidden.device)
        cross_mask = padding_mask(encoder_attention_mask, hidden.dtype)
        hidden, all_hidden, all_weights = self.run(
            hidden, self_mask, *flags,
            encoder_hidden_states=encoder_hidden_states, encoder_mask=cross_mask, cache=cache,
        )  # fmt: skip
        attentions = cross = None
        if all_weights is not None:
            attentions = tuple(w[0] for w in all_weights)
            cross = tuple(w[1] for w in all_weights) if encoder_hidden_states is not None else None
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden,
            past_key_values=cache if use_cache else None,
            hidden_states=all_hidden,
            attentions=attentions,
            cross_attentions=cross,
        )


class BartModel(BartPreTrainedModel):
    """The bare encoder-decoder; returns the decoder's last hidden state and the encoder's."""

    encoder_class: ClassVar[type[BartStack]] = BartEncoder
    decoder_class: ClassVar[type[BartStack]] = BartDecoder
    shares_embeddings: ClassVar[bool] = True  # one ``shared`` table for both stacks (Marian: its config says)
    _tied_weights_keys: ClassVar[dict[str, str]] = {
        "encoder.embed_tokens.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
    }

    def __init__(self, config: BartConfig) -> None:
        super().__init__(config)
        if self.shares_embeddings:
            self.shared = Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.encoder = self.encoder_class(config)
        self.decoder = self.decoder_class(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.shared = embeddings
        self.encoder.embed_tokens = embeddings
        self.decoder.embed_tokens = embeddings

    def get_encoder(self) -> BartStack:
        return self.encoder

    def get_decoder(self) -> BartStack:
        return self.decoder

    def decoder_inputs_from_input_ids(self, input_ids: Tensor) -> Tensor:
        """The decoder's inputs when only the encoder's are given (denoising): ``input_ids`` shifted right."""
        return shift_tokens_right(input_ids, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        decoder_input_ids: Tensor | None = None, decoder_attention_mask: Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        past_key_values: EncoderDecoderCache | tuple | None = None, inputs_embeds: Tensor | None = None,
        decoder_inputs_embeds: Tensor | None = None, use_cache: bool | None = None, *,
        cache_position: Tensor | None = None, output_attentions: bool | None = None,
        output_hidden_states: bool | None = None, **kwargs: Any,
    ) -> Seq2SeqModelOutput:  # fmt: skip
        """Encode ``input_ids`` (unless ``encoder_outputs`` are given) and decode ``decoder_input_ids``.

        Args:
            input_ids: encoder token ids (B, S); or ``inputs_embeds`` (B, S, hidden).
            attention_mask: 0/1 (B, S) over the encoder's tokens (also masks cross-attention).
            decoder_input_ids: decoder token ids (B, T); default: ``input_ids`` shifted right (denoising).
            decoder_attention_mask: 0/1 (B, past + T) over the decoder's tokens.
            encoder_outputs: the encoder's output (a ``BaseModelOutput`` or a tuple), to skip the encoder.
            past_key_values: the decoder's ``EncoderDecoderCache`` (or legacy 4-tuples per layer).
            use_cache: return the decoder's cache (default ``config.use_cache``).
            cache_position: (T,) positions of the decoder tokens.
        """
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError(
                    "Pass decoder_input_ids or decoder_inputs_embeds, or input_ids to make decoder inputs from "
                    "(input_ids shifted right)"
                )
            decoder_input_ids = self.decoder_inputs_from_input_ids(input_ids)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask, inputs_embeds, **flags)
        else:
            encoder_outputs = as_encoder_output(encoder_outputs)
        decoder_out = self.decoder(
            decoder_input_ids, decoder_attention_mask, encoder_outputs.last_hidden_state, attention_mask,
            past_key_values, decoder_inputs_embeds, use_cache, cache_position=cache_position, **flags,
        )  # fmt: skip
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_out.last_hidden_state,
            past_key_values=decoder_out.past_key_values,
            decoder_hidden_states=decoder_out.hidden_states,
            decoder_attentions=decoder_out.attentions,
            cross_attentions=decoder_out.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class BartForConditionalGeneration(GenerationMixin, BartPreTrainedModel):
    """The encoder-decoder with a language-model head (``lm_head``, tied to ``model.shared``, plus the
    ``final_logits_bias`` buffer): summarization, translation, any text-to-text task."""

    base_model_class: ClassVar[type[BartModel]] = BartModel
    _tied_weights_keys: ClassVar[dict[str, str]] = {
        "lm_head.weight": "model.shared.weight",
        "model.encoder.embed_tokens.weight": "model.shared.weight",
        "model.decoder.embed_tokens.weight": "model.shared.weight",
    }
    _keys_to_ignore_on_load_missing: ClassVar[list[str]] = ["final_logits_bias"]

    def __init__(self, config: BartConfig) -> None:
        super().__init__(config)
        self.model = self.base_model_class(config)
        # The target vocabulary: the decoder's (Marian's may differ from the encoder's).
        vocab_size = self.model.decoder.embed_tokens.num_embeddings
        self.register_buffer("final_logits_bias", torch.zeros(1, vocab_size))
        self.lm_head = Linear(config.d_model, vocab_size, bias=False)
        self.post_init()

    def get_encoder(self) -> BartStack:
        return self.model.encoder

    def get_decoder(self) -> BartStack:
        return self.model.decoder

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, embeddings: nn.Module) -> None:
        self.lm_head = embeddings

    def resize_token_embeddings(
        self, new_num_tokens: int, pad_to_multiple_of: int | None = None
    ) -> nn.Embedding:
        """Resize the vocabulary (see ``PreTrainedModel``); ``final_logits_bias`` follows, new entries 0."""
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of)
        old, new = self.final_logits_bias, embeddings.num_embeddings
        bias = old.new_zeros(1, new)
        bias[:, : min(new, old.shape[-1])] = old[:, :new]
        self.final_logits_bias = bias
        return embeddings

    def prepare_decoder_input_ids_from_labels(self, labels: Tensor) -> Tensor:
        """The decoder inputs the model makes from ``labels`` (B, T): shifted right, -100 turned to pad."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        decoder_input_ids: Tensor | None = None, decoder_attention_mask: Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        past_key_values: EncoderDecoderCache | tuple | None = None, inputs_embeds: Tensor | None = None,
        decoder_inputs_embeds: Tensor | None = None, labels: Tensor | None = None,
        use_cache: bool | None = None, *, cache_position: Tensor | None = None,
        logits_to_keep: int | Tensor = 0, output_attentions: bool | None = None,
        output_hidden_states: bool | None = None, **kwargs: Any,
    ) -> Seq2SeqLMOutput:  # fmt: skip
        """Next-token logits (B, T or logits_to_keep, vocab) of the decoder and, with ``labels``, the loss.

        Args:
            labels: target ids (B, T), -100 where no loss is wanted; without ``decoder_input_ids`` the decoder
                reads them shifted right. The loss is the mean cross-entropy of ``logits[t]`` against
                ``labels[t]``; the cache is off when labels are given.
            logits_to_keep: an int k > 0 projects only the last k positions (generation needs the last one);
                a 1-D tensor names the positions to keep. 0 keeps every position.

        The other arguments are ``BartModel.forward``'s.
        """
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        out = self.model(
            input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs,
            past_key_values, inputs_embeds, decoder_inputs_embeds, use_cache, cache_position=cache_position,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
        )  # fmt: skip
        logits = self.lm_head(keep_last(out.last_hidden_state, logits_to_keep))  # (B, T or k, vocab)
        logits = logits.add_(self.final_logits_bias.to(logits.dtype))  # in place: the product is ours
        loss = None
        if labels is not None:
            flat_labels = labels.to(logits.device).reshape(-1)  # (B * T,)
            loss = F.cross_entropy(
                logits.flatten(0, 1), flat_labels, ignore_index=IGNORE_INDEX
            )  # (B*T, vocab)
        return seq2seq_output(Seq2SeqLMOutput, out, loss=loss, logits=logits)


class BartForSequenceClassification(BartPreTrainedModel, SequenceClassification):
    """Scores each sequence at the decoder's hidden state over its last end-of-sequence token (how
    facebook/bart-large-mnli classifies); every row must hold the same number of eos tokens."""

    base_model_class = BartModel
    pooling = "eos"
    input_order = SEQ2SEQ_CLASSIFIER_INPUTS

    def init_head(self, config: BartConfig) -> None:
        self.classification_head = ClassificationHead(config.d_model, config.num_labels, config.classifier_dropout)

    def score(self, features: Tensor) -> Tensor:
        return self.classification_head(features)


class BartForQuestionAnswering(BartPreTrainedModel, QuestionAnswering):
    """Start and end scores over the decoder's hidden states (``qa_outputs``: two labels)."""

    base_model_class = BartModel
    input_order = SEQ2SEQ_QA_INPUTS

    def init_head(self, config: BartConfig) -> None:
        config.num_labels = 2  # as the reference: a start and an end score
        super().init_head(config)


__all__ = [
    "BartConfig",
    "BartDecoder",
    "BartEncoder",
    "BartForConditionalGeneration",
    "BartForQuestionAnswering",
    "BartForSequenceClassification",
    "BartModel",
    "BartPreTrainedModel",
]
