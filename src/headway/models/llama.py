"""Llama (Touvron et al., 2023, https://arxiv.org/abs/2302.13971; Llama 2 and 3 keep the architecture).

Reads checkpoints of ``model_type: "llama"`` (meta-llama/Llama-2/3, TinyLlama, SmolLM/SmolLM2, and their
fine-tunes), and is the base that Mistral, Qwen2 and Qwen3 subclass. A pre-norm decoder: RMSNorm,
self-attention with rotary positions and grouped-query heads (``num_key_value_heads`` key/value heads
shared by the query heads), a SiLU-gated feed-forward. Attribute paths are the Hub weight names
(``model.embed_tokens``, ``model.layers.N.self_attn.q_proj``, ``model.layers.N.mlp.gate_proj``,
``model.norm``, ``lm_head``, ``score``).

A forward builds the rotary cos/sin and the attention mask once and hands them to every layer; keys and
values go into a ``headway.generation.cache.DynamicCache`` when ``use_cache``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.generation.cache import DynamicCache, as_cache
from headway.generation.generate import GenerationMixin
from headway.losses import causal_lm_loss
from headway.modeling import PreTrainedModel
from headway.models.encoder import (
    check_companions,
    check_one_input,
    check_token_ids,
    output_flags,
    run_layers,
)
from headway.models.heads import (
    QuestionAnswering,
    ScoreHead,
    SequenceClassification,
    TokenClassification,
    keep_last,
)
from headway.nn.activations import get_activation
from headway.nn.attention import attention, causal_mask
from headway.nn.layers import Embedding, RMSNorm
from headway.nn.linear import Linear
from headway.nn.rotary import RotaryEmbedding, rotate, rotation_tables, standardize_rope_parameters
from headway.outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

Tensor = torch.Tensor
IGNORE_INDEX = -100


@config_class
class LlamaConfig(PretrainedConfig):
    """Llama's settings, with the reference's names and defaults (Llama-2-7B's shape).

    Rotary settings live in ``rope_parameters`` (``rope_type``, ``rope_theta``, ``factor``...); config.json
    files of transformers 4 spell them ``rope_theta`` and ``rope_scaling``, which are read into it (see
    ``headway.nn.rotary.standardize_rope_parameters``) and written back under the names they were read
    from, besides ``rope_parameters``. ``pretraining_tp`` is kept but ignored, as in the reference.
    """

    model_type: ClassVar[str] = "llama"

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None  # None: one per query head (no grouping)
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pretraining_tp: int | None = 1
    tie_word_embeddings: bool = False
    rope_parameters: dict[str, Any] | None = None
    rope_theta: float | None = None  # the transformers 4 spellings, read into rope_parameters
    rope_scaling: dict[str, Any] | None = None
    attention_bias: bool = False
    attention_dropout: float = 0.0
    mlp_bias: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if getattr(self, "head_dim", 0) is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.num_key_value_heads < 1 or self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_key_value_heads "
                f"({self.num_key_value_heads}): each key/value head serves a whole group of query heads"
            )
        self.rope_parameters = standardize_rope_parameters(
            self.rope_parameters,
            rope_scaling=self.rope_scaling,
            rope_theta=self.rope_theta,
            max_position_embeddings=self.max_position_embeddings,
        )

    @property
    def attention_head_dim(self) -> int:
        """The size of one attention head (``head_dim`` where the family has the field)."""
        return getattr(self, "head_dim", None) or self.hidden_size // self.num_attention_heads

    def layer_windows(self) -> list[int | None]:
        """Per layer, how many most recent keys a query sees (None: all of them). Llama: all."""
        return [None] * self.num_hidden_layers

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # The older spellings are written only where they were read, in step with rope_parameters.
        params = self.rope_parameters or {}
        for key, value in (("rope_theta", params.get("rope_theta")), ("rope_scaling", dict(params))):
            if out.get(key) is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out


class LlamaRMSNorm(RMSNorm):
    """Llama's name for the shared RMSNorm (the reference's module names show in a model's repr)."""


class LlamaMLP(nn.Module):
    """SiLU-gated feed-forward: ``down_proj(act(gate_proj(x)) * up_proj(x))``."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        bias = getattr(config, "mlp_bias", False)
        self.gate_proj = Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.up_proj = Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.down_proj = Linear(config.intermediate_size, config.hidden_size, bias=bias)
        self.act_fn = get_activation(config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaAttention(nn.Module):
    """Self-attention with rotary positions and ``num_key_value_heads`` key/value heads, each shared by
    ``num_attention_heads / num_key_value_heads`` query heads (grouped-query attention)."""

    qkv_bias: ClassVar[bool | None] = None  # None: ``config.attention_bias``; Qwen2 fixes it
    o_bias: ClassVar[bool | None] = None

    def __init__(self, config: LlamaConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.head_dim = config.attention_head_dim
        self.num_heads, self.num_kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_kv_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        bias = getattr(config, "attention_bias", False)
        qkv_bias = bias if self.qkv_bias is None else self.qkv_bias
        o_bias = bias if self.o_bias is None else self.o_bias
        self.q_proj = Linear(config.hidden_size, self.num_heads * self.head_dim, bias=qkv_bias)
        self.k_proj = Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = Linear(self.num_heads * self.head_dim, config.hidden_size, bias=o_bias)

    def normalize_qk(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        """Hook on (B, T, heads, head_dim) queries and keys before rotation (Qwen3 normalises them)."""
        return query, key

    def forward(
        self,
        hidden_states: Tensor,
        mask: Tensor | None,
        position_embeddings: tuple[Tensor, Tensor],
        cache: DynamicCache | None = None,
        output_attentions: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        B, T, _ = hidden_states.shape
        query = self.q_proj(hidden_states).view(B, T, -1, self.head_dim)  # (B, T, heads, head_dim)
        key = self.k_proj(hidden_states).view(B, T, -1, self.head_dim)  # (B, T, kv_heads, head_dim)
        value = (
            self.v_proj(hidden_states).view(B, T, -1, self.head_dim).transpose(1, 2)
        )  # (B, kv_heads, T, hd)
        query, key = self.normalize_qk(query, key)
        # (B, T, heads, head_dim) -> (B, heads, T, head_dim), rotated by the tables of rotation_tables
        query, key = (
            rotate(query.transpose(1, 2), *position_embeddings),
            rotate(key.transpose(1, 2), *position_embeddings),
        )
        if cache is not None:
            key, value = cache.update(
                key, value, self.layer_idx
            )  # (B, kv_heads, S, head_dim): all keys so far
        out, weights = self._attend(query, key, value, mask, output_attentions)
        out = out.transpose(1, 2).reshape(B, T, -1)  # (B, heads, T, head_dim) -> (B, T, heads * head_dim)
        return self.o_proj(out), weights

    def _attend(
        self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, output_attentions: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Attention of (B, heads, T, hd) queries over (B, kv_heads, S, hd) keys and values."""
        dropout_p = self.attention_dropout if self.training else 0.0
        # A None mask means causality alone (causal_mask's contract): SDPA's own causal kernel when T == S.
        return attention(
            query,
            key,
            value,
            mask,
            dropout_p=dropout_p,
            scale=self.scaling,
            is_causal=mask is None,
            output_attentions=output_attentions,
        )


class LlamaDecoderLayer(nn.Module):
    """Pre-norm layer: ``x + self_attn(input_layernorm(x))``, then ``x + mlp(post_attention_layernorm(x))``."""

    attention_class: ClassVar[type[LlamaAttention]] = LlamaAttention
    norm_class: ClassVar[type[nn.Module]] = LlamaRMSNorm

    def __init__(self, config: LlamaConfig, layer_idx: int, window: int | None = None) -> None:
        super().__init__()
        self.window = window  # how many recent keys a query sees (sliding-window layers), None for all
        self.self_attn = self.attention_class(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = self.norm_class(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = self.norm_class(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: Tensor,
        masks: dict[int | None, Tensor | None],
        output_attentions: bool = False,
        *,
        position_embeddings: tuple[Tensor, Tensor],
        cache: DynamicCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``masks`` holds the forward's mask per window; the layer takes its own window's."""
        normed = self.input_layernorm(hidden_states)
        attended, weights = self.self_attn(
            normed, masks[self.window], position_embeddings, cache, output_attentions
        )
        hidden_states = hidden_states + attended
        hidden_states = hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))
        return hidden_states, weights


class LlamaPreTrainedModel(PreTrainedModel):
    config_class: ClassVar[type[PretrainedConfig]] = LlamaConfig
    base_model_prefix: ClassVar[str] = "model"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, LlamaRMSNorm):
            module.weight.fill_(1.0)


class LlamaModel(LlamaPreTrainedModel):
    """The bare decoder: token embeddings, the layers, a final RMSNorm; returns the last hidden state."""

    layer_class: ClassVar[type[LlamaDecoderLayer]] = LlamaDecoderLayer

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.embed_tokens = Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.layer_windows = config.layer_windows()
        self.layers = nn.ModuleList(
            self.layer_class(config, i, window) for i, window in enumerate(self.layer_windows)
        )
        self.norm = self.layer_class.norm_class(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(
            config.rope_parameters, config.attention_head_dim, config.max_position_embeddings
        )
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.embed_tokens = embeddings

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: DynamicCache | tuple | None = None,
        inputs_embeds: Tensor | None = None,
        use_cache: bool | None = None,
        cache_position: Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        """Hidden states (B, T, hidden) of T new tokens after the ``past_key_values`` already cached.

        Args:
            input_ids: token ids (B, T); or ``inputs_embeds`` (B, T, hidden).
            attention_mask: 0/1 (B, past + T) over the cached and the new tokens; left padding allowed.
            position_ids: (B or 1, T) rotary positions; default ``cache_position[None]``.
            past_key_values: a ``DynamicCache`` (updated in place), legacy per-layer (keys, values), or None.
            use_cache: keep keys and values in a cache (default ``config.use_cache``, off when training
                with gradient checkpointing).
            cache_position: (T,) indices of the new tokens in the sequence; default ``past .. past + T - 1``.
        """
        shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.hidden_size)
        output_attentions, output_hidden_states = output_flags(
            self.config, output_attentions, output_hidden_states
        )
        checkpointing = self.gradient_checkpointing and self.training
        if use_cache is None:
            use_cache = self.config.use_cache and not checkpointing
        if inputs_embeds is None:
            check_token_ids(input_ids, self.embed_tokens.num_embeddings)
            inputs_embeds = self.embed_tokens(input_ids)
        cache = as_cache(past_key_values, use_cache)
        hidden = inputs_embeds  # (B, T, hidden)
        T = hidden.shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        check_companions(shape, attention_mask=attention_mask, position_ids=position_ids, key_len=past + T, rotary=True)
        if cache_position is None:
            cache_position = torch.arange(past, past + T, device=hidden.device)
        if position_ids is None:
            position_ids = cache_position[None]  # (1, T)
        # Once per forward: the rotary tables and one mask per distinct window.
        position_embeddings = rotation_tables(
            *self.rotary_emb(position_ids, hidden.dtype)
        )  # (B or 1, 1, T, hd)
        masks = {
            window: causal_mask(
                attention_mask, T, hidden.dtype, key_len=past + T, window=window, device=hidden.device
            )
            for window in set(self.layer_windows)
        }
        hidden, all_hidden, all_attentions = run_layers(
            self.layers,
            hidden,
            masks,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            checkpointing=checkpointing,
            position_embeddings=position_embeddings,
            cache=cache,
        )
        hidden = self.norm(hidden)
        if all_hidden is not None:  # the last hidden state is the normalised one, as in the reference
            all_hidden = (*all_hidden[:-1], hidden)
        return BaseModelOutputWithPast(
            last_hidden_state=hidden,
            past_key_values=cache,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )


class LlamaForCausalLM(GenerationMixin, LlamaPreTrainedModel):
    """The decoder with a language-model head (``lm_head``, tied to the embeddings when
    ``tie_word_embeddings``): next-token logits, and the shifted cross-entropy with ``labels``."""

    base_model_class: ClassVar[type[LlamaModel]] = LlamaModel
    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__(config)
        self.model = self.base_model_class(config)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, embeddings: nn.Module) -> None:
        self.lm_head = embeddings

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: DynamicCache | tuple | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | Tensor = 0,
        *,
        cache_position: Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Logits (B, T or logits_to_keep, vocab) and, with ``labels`` (B, T), the next-token loss.

        Args:
            labels: the input ids (or -100 where no loss is wanted); position t is scored on ``labels[t + 1]``.
            logits_to_keep: an int k > 0 projects only the last k positions (generation needs the last one);
                a 1-D tensor names the positions to keep. 0 keeps every position.
            kwargs: ``num_items_in_batch`` (the Trainer's) and ``shift_labels`` reach the loss.

        The other arguments are ``LlamaModel.forward``'s.
        """
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            cache_position=cache_position,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.lm_head(keep_last(out.last_hidden_state, logits_to_keep))  # (B, T or k, vocab)
        loss = None
        if labels is not None or kwargs.get("shift_labels") is not None:
            loss = causal_lm_loss(
                logits,
                labels,
                num_items_in_batch=kwargs.get("num_items_in_batch"),
                shift_labels=kwargs.get("shift_labels"),
            )
        return CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)


# The reference's generic decoder heads take their inputs in this order.
_HEAD_INPUTS = ("input_ids", "attention_mask", "position_ids", "past_key_values", "inputs_embeds")


class LlamaForSequenceClassification(ScoreHead, LlamaPreTrainedModel, SequenceClassification):
    """Scores each sequence at its last non-padding token (found from ``config.pad_token_id``)."""

    base_model_class = LlamaModel
    pooling = "last"
    input_order = (*_HEAD_INPUTS, "labels", "use_cache")


class LlamaForTokenClassification(ScoreHead, LlamaPreTrainedModel, TokenClassification):
    base_model_class = LlamaModel
    input_order = (*_HEAD_INPUTS, "labels", "use_cache")


class LlamaForQuestionAnswering(LlamaPreTrainedModel, QuestionAnswering):
    base_model_class = LlamaModel
    base_model_prefix = "transformer"  # the reference's name for this head's decoder (older checkpoints)
    input_order = (*_HEAD_INPUTS, "start_positions", "end_positions")


__all__ = [
    "LlamaConfig",
    "LlamaForCausalLM",
    "LlamaForQuestionAnswering",
    "LlamaForSequenceClassification",
    "LlamaForTokenClassification",
    "LlamaModel",
    "LlamaPreTrainedModel",
]
