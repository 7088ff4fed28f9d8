"""T5 (Raffel et al., 2020, https://arxiv.org/abs/1910.10683), and T5 v1.1 / Flan-T5 (gated-GELU
feed-forward, a language-model head of its own).

Reads checkpoints of ``model_type: "t5"`` (google-t5/t5-*, google/t5-v1_1-*, google/flan-t5-*). An
encoder-decoder of pre-norm layers: a scale-only RMS norm, attention without the 1/sqrt(d_kv) scaling whose
scores get a learned bias per head and bucket of relative position (held by the first layer of each stack,
shared by the others; two-sided buckets in the encoder, past-only in the decoder), and a ReLU or gated-GELU
feed-forward. Attribute paths are the Hub weight names (``shared``, ``encoder.block.N.layer.0.SelfAttention.q``,
``decoder.block.N.layer.1.EncDecAttention.k``, ``decoder.block.N.layer.2.DenseReluDense.wi_0``,
``encoder.final_layer_norm``, ``lm_head``).

Each stack adds its position bias to the padding (and causal) mask once per forward, so every layer runs
SDPA with ``scale=1.0`` and that one additive mask. The decoder caches its self- and cross-attention keys in
an ``EncoderDecoderCache``; a cached step reads the bias at its true position (the cached length).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.generation.cache import EncoderDecoderCache, as_encoder_decoder_cache
from headway.generation.generate import GenerationMixin
from headway.losses import token_classification_loss
from headway.modeling import PreTrainedModel
from headway.models.encoder import (
    check_companions,
    check_one_input,
    check_token_ids,
    output_flags,
    run_layers,
)
from headway.models.heads import (
    ClassificationHead,
    QuestionAnswering,
    SequenceClassification,
    TokenClassification,
    classifier_dropout,
    keep_last,
)
from headway.models.seq2seq import (
    SEQ2SEQ_CLASSIFIER_INPUTS,
    SEQ2SEQ_QA_INPUTS,
    as_encoder_output,
    seq2seq_output,
    shift_tokens_right,
)
from headway.nn.activations import ACT2FN, get_activation
from headway.nn.attention import attention, padding_mask
from headway.nn.layers import Dropout, Embedding, RMSNorm
from headway.nn.linear import Linear
from headway.nn.relative_position import relative_position_bucket
from headway.outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)

Tensor = torch.Tensor
_SIZES = ("d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
          "relative_attention_num_buckets", "relative_attention_max_distance")  # fmt: skip


@config_class
class T5Config(PretrainedConfig):
    """T5's settings, with the reference's names and defaults (t5-small's shape).

    ``hidden_size``, ``num_attention_heads``, ``num_hidden_layers`` and ``head_dim`` read (and write)
    ``d_model``, ``num_heads``, ``num_layers`` and ``d_kv``, as in the reference. ``feed_forward_proj`` is
    ``"<act>"`` or ``"gated-<act>"`` (``"gated-gelu"`` means the tanh GELU, ``gelu_new``); ``dense_act_fn``
    and ``is_gated_act`` are derived from it and written back for the reference.

    ``scale_decoder_outputs`` (None: derived) says whether the decoder's output is multiplied by
    ``d_model ** -0.5`` before the language-model head. Original T5 ties that head to the embeddings and
    scales; v1.1 and Flan-T5 (``tie_word_embeddings: false``) do neither. The reference writes
    ``tie_word_embeddings: true`` with ``scale_decoder_outputs: false`` for them, so the scaling is read
    from ``scale_decoder_outputs`` when a config.json has it, and only otherwise from the tie.
    """

    model_type: ClassVar[str] = "t5"

    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 6
    num_decoder_layers: int | None = None  # None: as many as the encoder
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    feed_forward_proj: str = "relu"
    dense_act_fn: str | None = None  # derived from feed_forward_proj
    is_gated_act: bool | None = None  # derived from feed_forward_proj
    scale_decoder_outputs: bool | None = None  # None: derived from tie_word_embeddings
    is_encoder_decoder: bool = True
    use_cache: bool = True
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    decoder_start_token_id: int | None = 0
    classifier_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        for name in _SIZES:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        buckets, distance = self.relative_attention_num_buckets, self.relative_attention_max_distance
        if buckets < 4 or distance <= buckets // 2:  # half the buckets per direction, half of those exact
            raise ValueError(
                f"relative_attention_num_buckets must be at least 4 and relative_attention_max_distance more "
                f"than half of it (the log-spaced buckets reach it), got {buckets} and {distance}"
            )
        parts = self.feed_forward_proj.split("-") if isinstance(self.feed_forward_proj, str) else []
        if not 1 <= len(parts) <= 2 or (len(parts) == 2 and parts[0] != "gated") or parts[-1] not in ACT2FN:
            raise ValueError(
                f"feed_forward_proj must be '<act>' or 'gated-<act>' with <act> one of {sorted(ACT2FN)} "
                f"(e.g. 'relu', 'gated-gelu'), got {self.feed_forward_proj!r}"
            )
        self.is_gated_act = len(parts) == 2
        # "gated-gelu" has always meant the tanh approximation (Mesh TensorFlow's), as in the reference.
        self.dense_act_fn = "gelu_new" if self.feed_forward_proj == "gated-gelu" else parts[-1]
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self.tie_word_embeddings is not False

    # The reference's attribute map: the generic names read T5's own fields.
    hidden_size = property(lambda self: self.d_model, lambda self, v: setattr(self, "d_model", v))
    num_attention_heads = property(lambda self: self.num_heads, lambda self, v: setattr(self, "num_heads", v))
    num_hidden_layers = property(lambda self: self.num_layers, lambda self, v: setattr(self, "num_layers", v))
    head_dim = property(lambda self: self.d_kv, lambda self, v: setattr(self, "d_kv", v))

    @property
    def max_input_length(self) -> None:
        """Relative positions limit no length: None."""
        return None


class T5LayerNorm(RMSNorm):
    """T5's norm: ``weight * x / sqrt(mean(x^2) + eps)`` with no bias and no mean subtracted, normalised in
    float32 (Llama's RMSNorm is the same computation)."""


def _clamp_fp16(hidden: Tensor) -> Tensor:
    """In float16, keep activations finite as the reference does (T5's grow past float16's range)."""
    if hidden.dtype != torch.float16:
        return hidden
    top = torch.finfo(torch.float16).max
    limit = torch.where(torch.isinf(hidden).any(), top - 1000, top)
    return hidden.clamp(-limit, limit)


class T5DenseActDense(nn.Module):
    """``wo(dropout(act(wi(x))))`` (original T5: ReLU)."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.init_inner(config)
        self.wo = Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def init_inner(self, config: T5Config) -> None:
        self.wi = Linear(config.d_model, config.d_ff, bias=False)

    def inner(self, hidden: Tensor) -> Tensor:
        return self.act(self.wi(hidden))  # (B, T, d_ff)

    def forward(self, hidden: Tensor) -> Tensor:
        # cast: wo may be kept in float32 in a half-precision model
        return self.wo(self.dropout(self.inner(hidden)).to(self.wo.weight.dtype))


class T5DenseGatedActDense(T5DenseActDense):
    """``wo(dropout(act(wi_0(x)) * wi_1(x)))`` (T5 v1.1, Flan-T5: gated GELU)."""

    def init_inner(self, config: T5Config) -> None:
        self.wi_0 = Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = Linear(config.d_model, config.d_ff, bias=False)

    def inner(self, hidden: Tensor) -> Tensor:
        return self.act(self.wi_0(hidden)) * self.wi_1(hidden)  # (B, T, d_ff)


class T5Attention(nn.Module):
    """Multi-head attention with no score scaling; the relative position bias arrives inside ``mask``.

    Self-attention appends its keys and values to the cache's self-attention part; cross-attention
    (``key_value_states``: the encoder's output) computes them on the decoder's first call and reads them
    from the cache afterwards. The encoder's output may hold one row per group of consecutive decoder rows
    (``generate``'s beams of one input): a group's queries then attend to their row's keys together, which
    are neither repeated nor stored per beam. Only the first layer of a stack holds
    ``relative_attention_bias``.
    """

    def __init__(self, config: T5Config, *, relative_bias: bool = False, layer_idx: int = 0) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.key_value_proj_dim = config.num_heads, config.d_kv
        self.dropout = config.dropout_rate
        inner = config.num_heads * config.d_kv
        self.q = Linear(config.d_model, inner, bias=False)
        self.k = Linear(config.d_model, inner, bias=False)
        self.v = Linear(config.d_model, inner, bias=False)
        self.o = Linear(inner, config.d_model, bias=False)
        buckets = config.relative_attention_num_buckets
        self.relative_attention_bias = Embedding(buckets, config.num_heads) if relative_bias else None

    def _heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.key_value_proj_dim).transpose(1, 2)  # (B, heads, T, d_kv)

    def forward(
        self, hidden: Tensor, mask: Tensor | None, output_attentions: bool = False, *,
        key_value_states: Tensor | None = None, cache: EncoderDecoderCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """(B, T, d_model) -> (B, T, d_model), and the weights (B, heads, T, S) when ``output_attentions``.

        ``mask`` is additive, (B or 1, heads or 1, T, S): position bias, padding and causality together.
        """
        query = self._heads(self.q(hidden))
        if key_value_states is None:
            key, value = self._heads(self.k(hidden)), self._heads(self.v(hidden))
            if cache is not None:  # (B, heads, past + T, d_kv): every key so far
                key, value = cache.self_attention_cache.update(key, value, self.layer_idx)
        else:
            stored = cache.cross_attention(self.layer_idx) if cache is not None else None
            if stored is not None:
                key, value = stored
            else:
                key, value = self._heads(self.k(key_value_states)), self._heads(self.v(key_value_states))
                if cache is not None:
                    key, value = cache.store_cross_attention(key, value, self.layer_idx)
        B, heads, T, d_kv = query.shape
        rows = key.shape[0]
        groups = B // rows
        if groups * rows != B:
            raise ValueError(f"the decoder's {B} rows are not a multiple of the encoder output's {rows} rows")
        if groups > 1:  # a group's queries side by side: (rows, heads, groups * T, d_kv)
            query = query.reshape(rows, groups, heads, T, d_kv).transpose(1, 2).flatten(2, 3)
        p = self.dropout if self.training else 0.0
        out, weights = attention(
            query, key, value, mask, dropout_p=p, scale=1.0, output_attentions=output_attentions
        )
        if groups > 1:
            out = out.view(rows, heads, groups, T, d_kv).permute(
                0, 2, 3, 1, 4
            )  # (rows, groups, T, heads, d_kv)
            if weights is not None:  # (rows, heads, groups * T, S) -> (B, heads, T, S)
                weights = weights.view(rows, heads, groups, T, -1).transpose(1, 2).flatten(0, 1)
        else:
            out = out.transpose(1, 2)  # (B, T, heads, d_kv)
        return self.o(out.reshape(B, T, heads * d_kv)), weights


class T5LayerSelfAttention(nn.Module):
    """``x + dropout(SelfAttention(layer_norm(x)))``."""

    attention_name: ClassVar[str] = "SelfAttention"

    def __init__(self, config: T5Config, *, relative_bias: bool = False, layer_idx: int = 0) -> None:
        super().__init__()
        self.add_module(
            self.attention_name, T5Attention(config, relative_bias=relative_bias, layer_idx=layer_idx)
        )
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = Dropout(config.dropout_rate)

    def forward(self, hidden: Tensor, mask: Tensor | None, output_attentions: bool = False, **kwargs: Any
                ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """``kwargs``: ``T5Attention``'s (``key_value_states``, ``cache``)."""
        attend = self._modules[self.attention_name]
        out, weights = attend(self.layer_norm(hidden), mask, output_attentions, **kwargs)
        return hidden + self.dropout(out), weights


class T5LayerCrossAttention(T5LayerSelfAttention):
    """``x + dropout(EncDecAttention(layer_norm(x), encoder output))``."""

    attention_name: ClassVar[str] = "EncDecAttention"


class T5LayerFF(nn.Module):
    """``x + dropout(DenseReluDense(layer_norm(x)))``."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(config) if config.is_gated_act else T5DenseActDense(config)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = Dropout(config.dropout_rate)

    def forward(self, hidden: Tensor) -> Tensor:
        return hidden + self.dropout(self.DenseReluDense(self.layer_norm(hidden)))


class T5Block(nn.Module):
    """One layer: self-attention, cross-attention (decoder only), feed-forward, as ``layer.0/1/2``."""

    def __init__(self, config: T5Config, *, is_decoder: bool, layer_idx: int) -> None:
        super().__init__()
        self.is_decoder = is_decoder
        self.layer = nn.ModuleList(
            [T5LayerSelfAttention(config, relative_bias=layer_idx == 0, layer_idx=layer_idx)]
        )
        if is_decoder:
            self.layer.append(T5LayerCrossAttention(config, layer_idx=layer_idx))
        self.layer.append(T5LayerFF(config))

    def forward(
        self, hidden: Tensor, mask: Tensor | None, output_attentions: bool = False, *,
        encoder_hidden_states: Tensor | None = None, encoder_mask: Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
    ) -> tuple[Tensor, Any]:  # fmt: skip
        """Returns the new hidden state and the attention weights: the self-attention's, or in the decoder
        the pair (self-attention's, cross-attention's)."""
        hidden, weights = self.layer[0](hidden, mask, output_attentions, cache=cache)
        hidden = _clamp_fp16(hidden)
        cross_weights = None
        if self.is_decoder and encoder_hidden_states is not None:
            hidden, cross_weights = self.layer[1](
                hidden, encoder_mask, output_attentions, key_value_states=encoder_hidden_states, cache=cache
            )
            hidden = _clamp_fp16(hidden)
        hidden = _clamp_fp16(self.layer[-1](hidden))
        return hidden, (weights, cross_weights) if self.is_decoder else weights


class T5PreTrainedModel(PreTrainedModel):
    config_class: ClassVar[type[PretrainedConfig]] = T5Config
    base_model_prefix: ClassVar[str] = "transformer"
    # The decoder takes an encoder output of one row per group of decoder rows: generate() need not repeat
    # it for each beam (see T5Attention).
    groups_encoder_rows: ClassVar[bool] = True
    # Some checkpoints carry a relative bias table for the first cross-attention, which no layer reads.
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [
        r"decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight"
    ]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """T5's initialisation (Mesh TensorFlow's), scaled by ``initializer_factor``: unit-variance
        embeddings, projections with variance 1 / fan-in (the query's also divided by d_kv, standing in for
        the missing score scaling). ``apply`` visits a parent after its children, so these override the
        default of the leaf layers."""
        super()._init_weights(module)
        c, factor = self.config, self.config.initializer_factor
        if isinstance(module, T5LayerNorm):
            module.weight.fill_(factor)
        elif isinstance(module, T5Attention):
            module.q.weight.normal_(0.0, factor * (c.d_model * c.d_kv) ** -0.5)
            module.k.weight.normal_(0.0, factor * c.d_model**-0.5)
            module.v.weight.normal_(0.0, factor * c.d_model**-0.5)
            module.o.weight.normal_(0.0, factor * (c.num_heads * c.d_kv) ** -0.5)
            if module.relative_attention_bias is not None:
                module.relative_attention_bias.weight.normal_(0.0, factor * c.d_model**-0.5)
        elif isinstance(module, T5DenseActDense):
            for name, layer in module.named_children():
                if isinstance(layer, nn.Linear):
                    layer.weight.normal_(0.0, factor * (c.d_ff if name == "wo" else c.d_model) ** -0.5)
        elif isinstance(module, ClassificationHead):
            for layer in (module.dense, module.out_proj):
                layer.weight.normal_(0.0, factor * c.d_model**-0.5)
                layer.bias.zero_()
        elif module in (
            self._modules.get("shared"),
            self._modules.get("lm_head"),
            self._modules.get("classifier"),
        ):
            module.weight.normal_(0.0, factor)  # (a new token classifier too, as the reference)
        elif module is self._modules.get("qa_outputs"):
            module.weight.normal_(0.0, factor * c.d_model**-0.5)
        if module in (self._modules.get("classifier"), self._modules.get("qa_outputs")):
            module.bias.zero_()

    def _shift_right(self, input_ids: Tensor) -> Tensor:
        """Decoder inputs for targets ``input_ids`` (B, T): the start token (T5's is its pad token, 0), then
        each row but its last token, -100 (ignored labels) made padding."""
        return shift_tokens_right(input_ids, self.config.pad_token_id, self.config.decoder_start_token_id)


class T5Stack(T5PreTrainedModel):
    """The encoder or the decoder: the (shared) token embeddings, ``block``, ``final_layer_norm``."""

    def __init__(self, config: T5Config, embed_tokens: nn.Embedding | None = None, *, is_decoder: bool = False
                 ) -> None:  # fmt: skip
        super().__init__(config)
        self.is_decoder = is_decoder
        self.embed_tokens = embed_tokens or Embedding(config.vocab_size, config.d_model)
        layers = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList(T5Block(config, is_decoder=is_decoder, layer_idx=i) for i in range(layers))
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = Dropout(config.dropout_rate)
        self.gradient_checkpointing = False
        # No post_init: the model holding the stack initialises it (and ties the embeddings).

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.embed_tokens = embeddings

    def position_bias(self, query_len: int, past: int, padding: Tensor | None, dtype: torch.dtype) -> Tensor:
        """The additive mask of self-attention, (B or 1, heads, T, past + T): the learned bias of each
        key-minus-query offset's bucket, -inf on the keys ``padding`` (0/1, (B, S)) drops and, in the decoder, on future keys. The
        queries sit at positions ``past .. past + T - 1``."""
        table = self.block[0].layer[0].SelfAttention.relative_attention_bias
        key_len = past + query_len
        keys = torch.arange(key_len, device=table.weight.device)
        relative = keys[None, :] - keys[past:, None]  # (T, S): key position minus query position
        buckets, max_distance = (
            self.config.relative_attention_num_buckets,
            self.config.relative_attention_max_distance,
        )
        if self.is_decoder:
            # Past-only buckets are the lower half of the two-sided scheme with twice the buckets.
            bucket = relative_position_bucket(relative.clamp(max=0), 2 * buckets, max_distance)
        else:
            bucket = relative_position_bucket(relative, buckets, max_distance)
        bias = table(bucket).permute(2, 0, 1)[None].to(dtype)  # (T, S, heads) -> (1, heads, T, S)
        if self.is_decoder:
            bias = bias.masked_fill(relative > 0, float("-inf"))
        padding = padding_mask(padding, dtype)  # (B, 1, 1, S) or None
        return bias if padding is None else bias + padding  # (B, heads, T, S)

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        encoder_hidden_states: Tensor | None = None, encoder_attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None, past_key_values: EncoderDecoderCache | tuple | None = None,
        use_cache: bool | None = None, *, output_attentions: bool | None = None,
        output_hidden_states: bool | None = None, cache_position: Tensor | None = None, **kwargs: Any,
    ) -> BaseModelOutput | BaseModelOutputWithPastAndCrossAttentions:  # fmt: skip
        """Hidden states (B, T, d_model) of the encoder, or of the decoder's T new positions.

        Args:
            input_ids: token ids (B, T); or ``inputs_embeds`` (B, T, d_model).
            attention_mask: 0/1 (B, T) over the tokens (the decoder's: over cached + new positions).
            encoder_hidden_states: the encoder's output (B, S, d_model), which the decoder attends to.
            encoder_attention_mask: 0/1 (B, S) over the encoder's positions.
            past_key_values: the decoder's ``EncoderDecoderCache`` (updated in place), legacy tuples, or None.
            use_cache: keep the decoder's keys and values (default ``config.use_cache``; never in the encoder).
            cache_position: accepted for compatibility; positions come from the cache's length.
        """
        shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.d_model)
        output_attentions, output_hidden_states = output_flags(
            self.config, output_attentions, output_hidden_states
        )
        checkpointing = self.gradient_checkpointing and self.training
        if use_cache and not self.is_decoder:
            raise ValueError("use_cache=True needs the decoder: the encoder keeps no cache")
        if use_cache is None:
            use_cache = self.is_decoder and self.config.use_cache and not checkpointing
        if inputs_embeds is None:
            check_token_ids(input_ids, self.embed_tokens.num_embeddings)
            inputs_embeds = self.embed_tokens(input_ids)
        cache = as_encoder_decoder_cache(past_key_values, use_cache) if self.is_decoder else None
        past = cache.get_seq_length() if cache is not None else 0
        check_companions(shape, attention_mask=attention_mask, key_len=past + shape[1])
        dtype = inputs_embeds.dtype
        mask = self.position_bias(shape[1], past, attention_mask, dtype)  # (B or 1, heads, T, S)
        layer_kwargs: dict[str, Any] = {}
        if self.is_decoder:
            if encoder_hidden_states is not None:  # the encoder's mask matches the encoder's output
                check_companions(
                    tuple(encoder_hidden_states.shape[:2]), attention_mask=encoder_attention_mask
                )
            layer_kwargs = {
                "encoder_hidden_states": encoder_hidden_states,
                "encoder_mask": padding_mask(encoder_attention_mask, dtype),  # (B, 1, 1, S_enc) or None
                "cache": cache,
            }
        hidden, all_hidden, all_weights = run_layers(
            self.block, self.dropout(inputs_embeds), mask, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions, checkpointing=checkpointing, **layer_kwargs,
        )  # fmt: skip
        hidden = self.dropout(self.final_layer_norm(hidden))
        if all_hidden is not None:  # the last hidden state is the normalised one, as in the reference
            all_hidden = (*all_hidden[:-1], hidden)
        if not self.is_decoder:
            return BaseModelOutput(hidden, all_hidden, all_weights)
        attentions = cross = None
        if all_weights is not None:
            attentions = tuple(w[0] for w in all_weights)
            if encoder_hidden_states is not None:
                cross = tuple(w[1] for w in all_weights)
        return BaseModelOutputWithPastAndCrossAttentions(hidden, cache, all_hidden, attentions, cross)


class T5EncoderModel(T5PreTrainedModel):
    """The encoder alone (sentence-T5, the text encoders of diffusion models): ``shared`` and ``encoder``."""

    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [r"^decoder\.", r"^lm_head\."]

    def __init__(self, config: T5Config) -> None:
        super().__init__(config)
        self.shared = Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.shared = self.encoder.embed_tokens = embeddings

    def get_encoder(self) -> T5Stack:
        return self.encoder

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None, *, output_attentions: bool | None = None,
        output_hidden_states: bool | None = None, **kwargs: Any,
    ) -> BaseModelOutput:  # fmt: skip
        """The encoder's hidden states (B, T, d_model) of ``input_ids`` (B, T) or ``inputs_embeds``."""
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        return self.encoder(input_ids, attention_mask, inputs_embeds=inputs_embeds, **flags)


class T5Model(T5PreTrainedModel):
    """The bare encoder-decoder: ``shared`` embeddings (the encoder's and the decoder's), ``encoder``,
    ``decoder``; returns the decoder's last hidden state and the encoder's."""

    def __init__(self, config: T5Config) -> None:
        super().__init__(config)
        self.shared = Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.init_head(config)
        self.post_init()

    def init_head(self, config: T5Config) -> None:
        """Modules on top of the decoder (the language-model head adds ``lm_head``); none here."""

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.shared = self.encoder.embed_tokens = self.decoder.embed_tokens = embeddings

    def get_encoder(self) -> T5Stack:
        return self.encoder

    def get_decoder(self) -> T5Stack:
        return self.decoder

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        decoder_input_ids: Tensor | None = None, decoder_attention_mask: Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        past_key_values: EncoderDecoderCache | tuple | None = None, inputs_embeds: Tensor | None = None,
        decoder_inputs_embeds: Tensor | None = None, use_cache: bool | None = None, *,
        output_attentions: bool | None = None, output_hidden_states: bool | None = None,
        cache_position: Tensor | None = None, **kwargs: Any,
    ) -> Seq2SeqModelOutput:  # fmt: skip
        """Encode (unless ``encoder_outputs`` are given), then decode.

        Args:
            input_ids: the encoder's token ids (B, S); or ``inputs_embeds`` (B, S, d_model).
            attention_mask: 0/1 (B, S) over the encoder's tokens (padding on either side).
            decoder_input_ids: the decoder's token ids (B, T), starting with ``decoder_start_token_id``; or
                ``decoder_inputs_embeds``. Neither: ``input_ids`` shifted right, as the reference's
                classification and question-answering heads make them.
            decoder_attention_mask: 0/1 (B, past + T) over the decoder's cached and new tokens.
            encoder_outputs: the encoder's output (a ``BaseModelOutput`` or a tuple) from an earlier call.
            past_key_values: the decoder's ``EncoderDecoderCache`` (updated in place), or legacy tuples.
            use_cache: return the decoder's cache (default ``config.use_cache``).
            cache_position: accepted for compatibility; positions come from the cache's length.
        """
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError(
                    f"{type(self).__name__} needs decoder_input_ids or decoder_inputs_embeds (or input_ids to "
                    "shift right into them)"
                )
            decoder_input_ids = self._shift_right(input_ids)
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        if encoder_outputs is None:
            enc = self.encoder(input_ids, attention_mask, inputs_embeds=inputs_embeds, **flags)
        else:
            enc = as_encoder_output(encoder_outputs)
        dec = self.decoder(
            decoder_input_ids, decoder_attention_mask, enc.last_hidden_state, attention_mask,
            inputs_embeds=decoder_inputs_embeds, past_key_values=past_key_values, use_cache=use_cache, **flags,
        )  # fmt: skip
        return Seq2SeqModelOutput(
            dec.last_hidden_state, dec.past_key_values, dec.hidden_states, dec.attentions, dec.cross_attentions,
            enc.last_hidden_state, enc.hidden_states, enc.attentions,
        )  # fmt: skip


class T5ForConditionalGeneration(GenerationMixin, T5Model):
    """T5 with its language-model head (``lm_head``): next-token logits over the decoder's positions, the
    cross-entropy with ``labels``, and ``generate``.

    ``lm_head`` is tied to ``shared`` when ``config.tie_word_embeddings``. A checkpoint decides in the end,
    as in the reference: one whose ``lm_head.weight`` differs from ``shared.weight`` (Flan-T5, whatever
    its config says) loads untied, and one without ``lm_head.weight`` loads tied.
    """

    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "shared.weight"}

    def init_head(self, config: T5Config) -> None:
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, embeddings: nn.Module) -> None:
        self.lm_head = embeddings

    def prepare_decoder_input_ids_from_labels(self, labels: Tensor) -> Tensor:
        """The decoder inputs for ``labels`` (B, T): shifted right (see ``_shift_right``)."""
        return self._shift_right(labels)

    def _load_weights(self, state: Any, **kwargs: Any) -> dict[str, list[str]]:
        """Tie or untie ``lm_head`` to what the checkpoint holds, then load (see the class docstring)."""
        head = state.get("lm_head.weight")
        shared = next(
            (state[k] for k in ("shared.weight", "encoder.embed_tokens.weight") if k in state), None
        )
        tied = head is None or (
            shared is not None and head.shape == shared.shape and torch.equal(head, shared)
        )
        if tied != self.config.tie_word_embeddings:
            self.config.tie_word_embeddings = tied
            if tied:
                self.lm_head.weight = self.shared.weight
            else:  # a placeholder of its own, filled by the checkpoint
                self.lm_head.weight = nn.Parameter(torch.empty_like(self.shared.weight, device="meta"))
        return super()._load_weights(state, **kwargs)

    def forward(
        self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
        decoder_input_ids: Tensor | None = None, decoder_attention_mask: Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        past_key_values: EncoderDecoderCache | tuple | None = None, inputs_embeds: Tensor | None = None,
        decoder_inputs_embeds: Tensor | None = None, labels: Tensor | None = None, use_cache: bool | None = None,
        logits_to_keep: int | Tensor = 0, *, output_attentions: bool | None = None,
        output_hidden_states: bool | None = None, cache_position: Tensor | None = None, **kwargs: Any,
    ) -> Seq2SeqLMOutput:  # fmt: skip
        """Logits (B, T or logits_to_keep, vocab) over the decoder's positions and, with ``labels``, the loss.

        Args:
            labels: target ids (B, T), -100 where no loss is wanted. Position t is scored on ``labels[t]``;
                without decoder inputs, the decoder reads ``labels`` shifted right.
            logits_to_keep: an int k > 0 projects only the last k positions (generation needs the last one);
                a 1-D tensor names the positions to keep. 0 keeps every position.

        The other arguments are ``T5Model.forward``'s.
        """
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if labels is None:
                raise ValueError(
                    "T5ForConditionalGeneration needs decoder_input_ids, decoder_inputs_embeds or labels "
                    "(shifted right into decoder inputs)"
                )
            decoder_input_ids = self._shift_right(labels)
        if labels is not None and not (isinstance(logits_to_keep, int) and logits_to_keep == 0):
            raise ValueError(
                f"labels need the logits of every position; got logits_to_keep={logits_to_keep!r}"
            )
        out = super().forward(
            input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs, past_key_values,
            inputs_embeds, decoder_inputs_embeds, use_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
        )  # fmt: skip
        hidden = keep_last(out.last_hidden_state, logits_to_keep)  # (B, T or k, d_model)
        if self.config.scale_decoder_outputs:  # original T5 (tied head): the scale of the embeddings
            hidden = hidden * self.config.d_model**-0.5
        logits = self.lm_head(hidden)  # (B, T or k, vocab)
        loss = token_classification_loss(logits, labels.to(logits.device)) if labels is not None else None
        return seq2seq_output(Seq2SeqLMOutput, out, loss=loss, logits=logits)


class T5ForSequenceClassification(T5PreTrainedModel, SequenceClassification):
    """Scores each sequence at the decoder's hidden state over its last end-of-sequence token (``"eos"``
    pooling, as BART's classifier; the decoder reads ``input_ids`` shifted right unless given its own
    inputs); every row must hold the same number of eos tokens. The head is ``classification_head.dense`` /
    ``.out_proj``."""

    base_model_class = T5Model
    pooling = "eos"
    input_order = SEQ2SEQ_CLASSIFIER_INPUTS

    def init_head(self, config: T5Config) -> None:
        self.classification_head = ClassificationHead(config.hidden_size, config.num_labels, classifier_dropout(config))

    def score(self, features: Tensor) -> Tensor:
        return self.classification_head(features)


class T5ForTokenClassification(T5PreTrainedModel, TokenClassification):
    """One label per token from the encoder alone (``transformer`` is a ``T5EncoderModel``)."""

    base_model_class = T5EncoderModel
    _keys_to_ignore_on_load_unexpected = T5EncoderModel._keys_to_ignore_on_load_unexpected


class T5ForQuestionAnswering(T5PreTrainedModel, QuestionAnswering):
    """Start and end scores (``qa_outputs``) over the decoder's hidden states; the decoder reads
    ``input_ids`` shifted right unless given its own inputs.

    The reference keeps this model's encoder-decoder at the top level (``shared``, ``encoder``, ``decoder``
    next to ``qa_outputs``); here it is the shared head's base model, ``transformer``, so checkpoint keys
    under those three names are read with ``transformer.`` in front, and saved with it (the reference
    strips that prefix when it loads them).
    """

    base_model_class = T5Model
    input_order = SEQ2SEQ_QA_INPUTS

    @classmethod
    def _rename_checkpoint_key(cls, key: str) -> str:
        key = super()._rename_checkpoint_key(key)
        return f"transformer.{key}" if key.split(".", 1)[0] in ("shared", "encoder", "decoder") else key


__all__ = [
    "T5Config",
    "T5EncoderModel",
    "T5ForConditionalGeneration",
    "T5ForQuestionAnswering",
    "T5ForSequenceClassification",
    "T5ForTokenClassification",
    "T5Model",
    "T5PreTrainedModel",
    "T5Stack",
]
