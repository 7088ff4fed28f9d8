"""GPT-2 (Radford et al., 2019, "Language Models are Unsupervised Multitask Learners").

Reads checkpoints of ``model_type: "gpt2"``: openai-community/gpt2 (and -medium, -large, -xl),
distilgpt2 and their fine-tunes. A pre-norm decoder with learned absolute positions (``wpe``), one packed
query/key/value projection per layer and a GELU (tanh approximation) feed-forward.

GPT-2 keeps its projections in the original TensorFlow layout, ``Conv1D``: the weight is (in, out) and
``y = x @ W + b``. :class:`Conv1D` is a ``Linear`` whose (out, in) weight is a transposed view of that
tensor, so Hub checkpoints load with no key map and no transposed copy, and the state dict gives the Hub's
``h.N.attn.c_attn.weight`` (n_embd, 3 * n_embd) back (``model...c_attn.weight`` itself is (3 * n_embd,
n_embd), as an ``nn.Linear``'s: peft's LoRA takes these layers as they are). Attribute paths are
the Hub weight names: ``wte``, ``wpe``, ``h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
mlp.c_proj}``, ``ln_f``; head checkpoints prefix them with ``transformer.``.

The key/value cache, ``cache_position``, padding masks and ``logits_to_keep`` follow the decoder contract
shared with the Llama family (see ``headway.generation.cache``). Cross-attention (GPT-2 as the decoder of
an encoder-decoder model) and the double-heads model are not implemented.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.generation.cache import DynamicCache, as_cache
from headway.generation.generate import GenerationMixin
from headway.losses import causal_lm_loss
from headway.modeling import PreTrainedModel
from headway.models.encoder import (
    check_companions,
    check_index_ranges,
    check_length,
    check_one_input,
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
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear
from headway.outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

logger = logging.getLogger(__name__)

Tensor = torch.Tensor

# The reference's generic names for GPT-2's own fields (its ``attribute_map``).
_ALIASES = {
    "hidden_size": "n_embd",
    "num_hidden_layers": "n_layer",
    "num_attention_heads": "n_head",
    "max_position_embeddings": "n_positions",
}


@config_class
class GPT2Config(PretrainedConfig):
    """GPT-2's settings, with the reference's names and defaults (the 124M model's shape).

    ``hidden_size``, ``num_hidden_layers``, ``num_attention_heads`` and ``max_position_embeddings`` are
    aliases of ``n_embd``, ``n_layer``, ``n_head`` and ``n_positions`` (readable, settable, and accepted
    as keyword arguments); only the GPT-2 names are written to config.json. The ``summary_*`` fields
    configure the reference's double-heads model; they are kept and written back.
    """

    model_type: ClassVar[str] = "gpt2"

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None  # feed-forward width; None: 4 * n_embd
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    summary_type: str = "cls_index"
    summary_use_proj: bool = True
    summary_activation: str | None = None
    summary_proj_to_labels: bool = True
    summary_first_dropout: float = 0.1
    scale_attn_weights: bool = True
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    tie_word_embeddings: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


def _alias(name: str) -> property:
    def get(self: GPT2Config) -> Any:
        return getattr(self, name)

    def set_(self: GPT2Config, value: Any) -> None:
        setattr(self, name, value)

    return property(get, set_, doc=f"Alias of ``{name}``.")


for _generic, _own in _ALIASES.items():
    setattr(GPT2Config, _generic, _alias(_own))


def _read_aliases(init):
    """Wrap the config's ``__init__`` so that ``GPT2Config(hidden_size=64)`` sets ``n_embd`` before the
    checks run (the reference accepts the generic names as keyword arguments too)."""

    @functools.wraps(init)
    def __init__(self: GPT2Config, **kwargs: Any) -> None:
        for generic, own in _ALIASES.items():
            if generic in kwargs:
                value = kwargs.pop(generic)
                if own in kwargs and kwargs[own] != value:
                    raise ValueError(f"{generic}={value!r} and {own}={kwargs[own]!r} name the same field")
                kwargs[own] = value
        init(self, **kwargs)

    return __init__


GPT2Config.__init__ = _read_aliases(GPT2Config.__init__)


def _hub_layout(module: Conv1D, state: dict[str, Tensor], prefix: str, metadata: Any) -> None:
    """State-dict hook: ``weight`` as the Hub stores it, (in, out), a view of the parameter (no copy)."""
    key = prefix + "weight"
    if key in state:
        state[key] = state[key].T  # (out, in) -> (in, out)


def _from_hub_layout(module: Conv1D, state: dict[str, Tensor], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: a Hub-layout (in, out) ``weight`` seen as the (out, in) parameter."""
    key = prefix + "weight"
    if key in state:
        state[key] = module.tensor_from_checkpoint("weight", state[key])


class Conv1D(Linear):
    """GPT-2's projection, ``y = x @ W_hub + bias``, as a :class:`~headway.nn.linear.Linear`.

    The Hub stores the weight (in_features, out_features), the TensorFlow layout. Here ``weight`` is the
    (out_features, in_features) transposed VIEW of that tensor, so this is an ``nn.Linear`` (peft's LoRA and
    any code written for ``nn.Linear`` take it as one) while the memory keeps the Hub layout: checkpoints
    load with no transposed copy (:meth:`tensor_from_checkpoint`), and ``state_dict()`` (hence
    ``save_pretrained``) gives the (in, out) tensor back, again a view. ``F.linear(x, weight)`` multiplies
    by ``weight.T``, the contiguous Hub tensor: the reference's ``addmm(bias, x, W_hub)``, bit for bit.
    Arguments come in the reference's order: the output width first.
    """

    def __init__(self, out_features: int, in_features: int) -> None:
        super().__init__(in_features, out_features, device="meta")  # placeholders, replaced below
        hub = torch.empty(in_features, out_features)  # (in, out): the storage, in the Hub layout
        self.weight = nn.Parameter(hub.T)  # (out, in) view
        self.bias = nn.Parameter(torch.empty(out_features))
        self.residual = False  # True for the projections back into the residual stream (depth-scaled init)
        if not self.weight.is_meta:
            nn.init.normal_(self.weight, std=0.02)
            nn.init.zeros_(self.bias)
        self.register_state_dict_post_hook(_hub_layout)
        self.register_load_state_dict_pre_hook(_from_hub_layout)

    def tensor_from_checkpoint(self, name: str, tensor: Tensor) -> Tensor:
        """The parameter ``name`` made from its checkpoint tensor: ``weight`` (in, out) -> its (out, in)
        view. Called by ``PreTrainedModel._load_weights`` and ``load_state_dict``."""
        return tensor.T if name == "weight" and tensor.dim() == 2 else tensor

    def forward(self, x: Tensor) -> Tensor:
        # Always F.linear (addmm on the Hub tensor), never the opt-in oneDNN product of Linear: no checks
        # per call, and products rounding as the reference's.
        return F.linear(x, self.weight, self.bias)

    def packable(self) -> bool:
        return False  # see forward


class GPT2Attention(nn.Module):
    """Causal self-attention: ``c_attn`` gives queries, keys and values at once, ``c_proj`` mixes heads."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.c_attn = Conv1D(3 * config.n_embd, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        self.c_proj.residual = True
        self.attn_pdrop = config.attn_pdrop
        self.resid_dropout = Dropout(config.resid_pdrop)
        self.scaling = self.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)
        self.upcast = config.reorder_and_upcast_attn

    def forward(
        self, hidden: Tensor, mask: Tensor | None, cache: DynamicCache | None, output_attentions: bool
    ) -> tuple[Tensor, Tensor | None]:
        B, T, _ = hidden.shape
        qkv = self.c_attn(hidden).view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, heads, head_dim)
        q, k, v = qkv.transpose(1, 3).unbind(2)  # (B, heads, T, head_dim) each
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)  # (B, heads, past + T, head_dim)
        dropout_p = self.attn_pdrop if self.training else 0.0
        dtype = q.dtype
        if self.upcast and dtype in (torch.float16, torch.bfloat16):
            # reorder_and_upcast_attn: scores and softmax in float32, so half precision cannot overflow
            q, k, v = q.float(), k.float(), v.float()
            mask = mask.float() if mask is not None else None
        out, weights = attention(
            q,
            k,
            v,
            mask,
            dropout_p=dropout_p,
            scale=self.scaling,
            is_causal=mask is None,
            output_attentions=output_attentions,
        )
        out = out.to(dtype).transpose(1, 2).reshape(B, T, -1)  # (B, heads, T, head_dim) -> (B, T, hidden)
        return self.resid_dropout(self.c_proj(out)), weights


class GPT2MLP(nn.Module):
    """``c_proj(act(c_fc(x)))``, the feed-forward of each block."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = Conv1D(inner, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, inner)
        self.c_proj.residual = True
        self.act = get_activation(config.activation_function)
        self.dropout = Dropout(config.resid_pdrop)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(hidden))))


class GPT2Block(nn.Module):
    """Pre-norm block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(
        self,
        hidden: Tensor,
        mask: Tensor | None,
        output_attentions: bool = False,
        *,
        cache: DynamicCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        attended, weights = self.attn(self.ln_1(hidden), mask, cache, output_attentions)
        hidden = hidden + attended
        return hidden + self.mlp(self.ln_2(hidden)), weights


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Old checkpoints carry the causal mask as buffers (attn.bias, attn.masked_bias): masks are built here.
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [
        r"(^|\.)attn\.(masked_)?bias$",
        r"(^|\.)crossattention\.(masked_)?bias$",
    ]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The default scheme, plus Conv1D: normal(0, initializer_range), and for the projections back into
        the residual stream (``c_proj``) std / sqrt(2 * n_layer), the GPT-2 paper's depth scaling."""
        if isinstance(module, Conv1D):
            std = self.config.initializer_range
            if module.residual:
                std /= math.sqrt(2 * self.config.n_layer)
            module.weight.normal_(0.0, std)
            module.bias.zero_()
        else:
            super()._init_weights(module)


class GPT2Model(GPT2PreTrainedModel):
    """The bare decoder: ``last_hidden_state`` (B, T, n_embd) after the final LayerNorm, and the cache.

    Inputs (cached positions included) may be up to ``n_positions`` tokens long (1024 for GPT-2).
    """

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        if config.add_cross_attention:
            raise ValueError(
                "add_cross_attention=True (GPT-2 as an encoder-decoder's decoder) is not supported"
            )
        self.wte = Embedding(config.vocab_size, config.n_embd)
        self.wpe = Embedding(config.n_positions, config.n_embd)
        self.drop = Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self._warned_cache = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.wte = embeddings

    def forward(
        self,
        input_ids: Tensor | None = None,
        past_key_values: DynamicCache | tuple | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        encoder_hidden_states: Tensor | None = None,
        encoder_attention_mask: Tensor | None = None,
        use_cache: bool | None = None,
        *,
        cache_position: Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> BaseModelOutputWithPast:
        """Run the decoder over T new tokens, after the ``past`` positions already in the cache.

        Args:
            input_ids: (B, T) token ids; or ``inputs_embeds`` (B, T, n_embd). Leading dimensions beyond
                the batch are flattened into it and restored in the output, as the reference does.
            past_key_values: a ``DynamicCache`` (updated in place and returned), legacy ``(keys, values)``
                tuples per layer, or None (a new cache when ``use_cache``).
            attention_mask: 0/1 over the ``past + T`` positions (B, past + T); left padding is allowed.
            token_type_ids: (B, T) ids embedded with the token embeddings and added, as in the reference.
            position_ids: (B or 1, T); default ``cache_position``, i.e. ``past .. past + T - 1``.
            use_cache: return the cache; default ``config.use_cache`` (off while training with gradient
                checkpointing).
            cache_position: (T,) positions of the new tokens in the sequence; default
                ``arange(past, past + T)``.
        """
        input_shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.n_embd, leading_dims=True)
        if encoder_hidden_states is not None or encoder_attention_mask is not None:
            raise ValueError("GPT2Model has no cross-attention: encoder_hidden_states are not supported")
        output_attentions, output_hidden_states = output_flags(
            self.config, output_attentions, output_hidden_states
        )
        checkpointing = self.gradient_checkpointing and self.training
        if use_cache is None:  # the config's choice, but no cache while recomputing layers in training
            use_cache = self.config.use_cache and not checkpointing
        elif use_cache and checkpointing:
            if not self._warned_cache:
                logger.warning("use_cache=True is ignored while training with gradient checkpointing")
                self._warned_cache = True
            use_cache = False
        cache = as_cache(past_key_values, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        check_companions(input_shape, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         position_ids=position_ids, key_len=past + input_shape[-1])
        check_index_ranges(  # one device->host sync for the three; token types are embedded by wte
            ("input_ids", input_ids, self.config.vocab_size),
            ("token_type_ids", token_type_ids, self.config.vocab_size, "token embedding (wte)"),
            ("position_ids", position_ids, self.config.n_positions),
        )
        if input_ids is not None:
            inputs_embeds = self.wte(input_ids.reshape(-1, input_shape[-1]))  # (B, T, hidden)
        else:
            inputs_embeds = inputs_embeds.reshape(-1, *inputs_embeds.shape[-2:])  # (B, T, hidden)
        batch, seq_len = inputs_embeds.shape[:2]
        check_length(past + seq_len, self.config.n_positions)
        if cache_position is None:
            cache_position = torch.arange(past, past + seq_len, device=inputs_embeds.device)
        if position_ids is None:
            position_ids = cache_position[None]  # (1, T)
        hidden = inputs_embeds + self.wpe(position_ids.reshape(-1, seq_len))  # (B or 1, T, hidden)
        if token_type_ids is not None:
            hidden = hidden + self.wte(token_type_ids.reshape(-1, seq_len))
        hidden = self.drop(hidden)

        if attention_mask is not None:
            attention_mask = attention_mask.reshape(batch, -1)  # (B, past + T)
        mask = causal_mask(
            attention_mask, seq_len, hidden.dtype, key_len=past + seq_len, device=hidden.device
        )
        hidden, all_hidden, all_attentions = run_layers(
            self.h,
            hidden,
            mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            checkpointing=checkpointing,
            cache=None if checkpointing else cache,
        )
        hidden = self.ln_f(hidden).view(*input_shape, -1)  # (B, T, hidden)
        if all_hidden is not None:  # the last hidden state is given after ln_f, as in the reference
            all_hidden = (*all_hidden[:-1], hidden)
        return BaseModelOutputWithPast(
            last_hidden_state=hidden,
            past_key_values=cache if use_cache else None,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )


class GPT2LMHeadModel(GenerationMixin, GPT2PreTrainedModel):
    """The language model: ``lm_head`` (no bias), tied to ``wte``, over the decoder's last hidden state."""

    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, embeddings: nn.Linear) -> None:
        self.lm_head = embeddings

    def forward(
        self,
        input_ids: Tensor | None = None,
        past_key_values: DynamicCache | tuple | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        encoder_hidden_states: Tensor | None = None,
        encoder_attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | Tensor = 0,
        *,
        cache_position: Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        num_items_in_batch: int | Tensor | None = None,
        shift_labels: Tensor | None = None,
    ) -> CausalLMOutputWithPast:
        """Logits (B, T, vocab), or (B, k, vocab) with ``logits_to_keep=k``; with ``labels`` (B, T) the
        next-token loss (``labels`` are shifted inside: pass ``labels=input_ids``). The other arguments
        are :meth:`GPT2Model.forward`'s."""
        out = self.transformer(
            input_ids,
            past_key_values,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            encoder_hidden_states,
            encoder_attention_mask,
            use_cache,
            cache_position=cache_position,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.lm_head(keep_last(out.last_hidden_state, logits_to_keep))  # (B, T or k, vocab)
        loss = None
        if labels is not None or shift_labels is not None:
            loss = causal_lm_loss(
                logits, labels, num_items_in_batch=num_items_in_batch, shift_labels=shift_labels
            )
        return CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)


# The reference's positional order for the classification heads' inputs.
_HEAD_INPUTS = (
    "input_ids",
    "past_key_values",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "inputs_embeds",
)


class GPT2ForSequenceClassification(ScoreHead, GPT2PreTrainedModel, SequenceClassification):
    """Scores the last non-padding token of each row (``config.pad_token_id`` finds it) with ``score``
    (no bias), the shared decoder head."""

    base_model_class = GPT2Model
    pooling = "last"
    input_order = (*_HEAD_INPUTS, "labels", "use_cache")


class GPT2ForTokenClassification(GPT2PreTrainedModel, TokenClassification):
    base_model_class = GPT2Model
    input_order = (*_HEAD_INPUTS, "labels", "use_cache")

    def init_head(self, config: GPT2Config) -> None:
        # The reference's dropout: classifier_dropout, else hidden_dropout, else 0.1.
        p = getattr(config, "classifier_dropout", None)
        if p is None:
            p = getattr(config, "hidden_dropout", None)
        self.dropout = Dropout(0.1 if p is None else p)
        self.classifier = Linear(config.n_embd, config.num_labels)


class GPT2ForQuestionAnswering(GPT2PreTrainedModel, QuestionAnswering):
    base_model_class = GPT2Model
    input_order = (
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "position_ids",
        "inputs_embeds",
        "start_positions",
        "end_positions",
    )

    def init_head(self, config: GPT2Config) -> None:
        self.qa_outputs = Linear(config.n_embd, 2)  # start and end, whatever num_labels says


__all__ = [
    "Conv1D",
    "GPT2Config",
    "GPT2ForQuestionAnswering",
    "GPT2ForSequenceClassification",
    "GPT2ForTokenClassification",
    "GPT2LMHeadModel",
    "GPT2Model",
    "GPT2PreTrainedModel",
]
