"""ModernBERT (Warner et al., 2024, https://arxiv.org/abs/2412.13663).

Reads checkpoints of ``model_type: "modernbert"``: answerdotai/ModernBERT-base and -large and their
fine-tunes. A pre-norm encoder without absolute positions: rotary positions (one base for the global
layers, another for the local ones), global attention every few layers and sliding-window attention in
between, a gated GELU feed-forward, and LayerNorms without bias. Attribute paths are the Hub weight names
(``model.layers.N.attn.Wqkv``, ``model.layers.N.mlp.Wi``, ``head.dense``, ``decoder``, ``classifier``).

The reference also has an unpadded flash-attention path for GPUs; headway computes what its padded
SDPA / eager path computes, including at padded positions.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.losses import token_classification_loss
from headway.modeling import PreTrainedModel
from headway.models.encoder import (
    check_companions,
    check_length,
    check_one_input,
    check_token_ids,
    output_flags,
    run_layers,
)
from headway.models.heads import (
    MultipleChoice,
    QuestionAnswering,
    SequenceClassification,
    TokenClassification,
)
from headway.nn.activations import get_activation
from headway.nn.attention import attention, padding_mask
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear
from headway.nn.rotary import rotate, rotation_tables
from headway.outputs import BaseModelOutput, MaskedLMOutput, ModelOutput

Tensor = torch.Tensor

FULL, SLIDING = "full_attention", "sliding_attention"
LAYER_TYPES = (FULL, SLIDING)
DEFAULT_THETA = {FULL: 160_000.0, SLIDING: 10_000.0}
ROPE_TYPES = ("default", "linear")  # the rotary variants implemented here (see rotary_inv_freq)


@config_class
class ModernBertConfig(PretrainedConfig):
    """ModernBERT's settings, with the reference's names and defaults (ModernBERT-base's shape).

    Checkpoints on the Hub spell the layer pattern and the rotary bases the older way
    (``global_attn_every_n_layers``, ``global_rope_theta``, ``local_rope_theta``, ``rope_scaling``);
    they are read into ``layer_types`` and ``rope_parameters`` as the reference reads them, and
    ``global_attn_every_n_layers`` is kept and written back, as there.
    """

    model_type: ClassVar[str] = "modernbert"

    vocab_size: int = 50368
    hidden_size: int = 768
    intermediate_size: int = 1152
    num_hidden_layers: int = 22
    num_attention_heads: int = 12
    hidden_activation: str = "gelu"
    max_position_embeddings: int = 8192
    initializer_range: float = 0.02
    initializer_cutoff_factor: float = 2.0
    norm_eps: float = 1e-5
    norm_bias: bool = False
    pad_token_id: int | None = 50283
    eos_token_id: int | list[int] | None = 50282
    bos_token_id: int | None = 50281
    cls_token_id: int | None = 50281
    sep_token_id: int | None = 50282
    attention_bias: bool = False
    attention_dropout: float = 0.0
    layer_types: list[str] | None = None  # "full_attention" | "sliding_attention", one per layer
    rope_parameters: dict[str, dict[str, Any]] | None = None  # per layer type: rope_type, rope_theta, ...
    local_attention: int = 128  # the sliding window: local_attention // 2 tokens on each side
    embedding_dropout: float = 0.0
    mlp_bias: bool = False
    mlp_dropout: float = 0.0
    decoder_bias: bool = True
    classifier_pooling: str = "cls"  # "cls" | "mean"
    classifier_dropout: float = 0.0
    classifier_bias: bool = False
    classifier_activation: str = "gelu"
    deterministic_flash_attn: bool = False
    sparse_prediction: bool = False
    sparse_pred_ignore_index: int = -100
    tie_word_embeddings: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if not isinstance(self.local_attention, int) or isinstance(self.local_attention, bool) or (
            self.local_attention < 2
        ):
            raise ValueError(f"local_attention (the sliding window) must be an int >= 2, got {self.local_attention!r}")
        if self.classifier_pooling not in ("cls", "mean"):
            raise ValueError(f"classifier_pooling must be 'cls' or 'mean', got {self.classifier_pooling!r}")

    @property
    def sliding_window(self) -> int:
        """How many tokens a sliding-window layer sees on each side: half of ``local_attention``."""
        return self.local_attention // 2

    @sliding_window.setter
    def sliding_window(self, value: int) -> None:
        self.local_attention = 2 * value

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("reference_compile", None)  # a setting of the original training code, dropped as the reference does
        return out


def _names_of(layer_types: list) -> set:
    """The distinct entries of ``layer_types`` (a set, fast for any number of layers)."""
    try:
        return set(layer_types)
    except TypeError:  # an unhashable entry: not a layer type
        return {None}


def _read_older_keys(init):
    """Wrap the config's ``__init__`` to read the older spellings, as the reference does.

    ``global_attn_every_n_layers`` (default 3) makes ``layer_types`` when none are given: layer i is global
    when i is a multiple of it. ``global_rope_theta`` / ``local_rope_theta`` fill a missing ``rope_theta``
    per layer type (defaults 160000 and 10000), and a ``rope_scaling`` dict is merged into both types.
    """

    @functools.wraps(init)
    def __init__(self: ModernBertConfig, **kwargs: Any) -> None:
        every_n = kwargs.get("global_attn_every_n_layers", 3)  # left in kwargs: kept as an attribute
        if not isinstance(every_n, int) or isinstance(every_n, bool) or every_n < 1:
            raise ValueError(f"global_attn_every_n_layers must be a positive int, got {every_n!r}")
        thetas = {FULL: kwargs.pop("global_rope_theta", None), SLIDING: kwargs.pop("local_rope_theta", None)}
        rope_scaling = kwargs.pop("rope_scaling", None)
        init(self, **kwargs)
        n = self.num_hidden_layers
        if self.layer_types is None:  # layer i global when i % every_n == 0, made by repeating one period
            period = [FULL] + [SLIDING] * (min(every_n, n) - 1)
            self.layer_types = (period * -(-n // len(period)))[:n]
        self.layer_types = list(self.layer_types)
        if len(self.layer_types) != n or not _names_of(self.layer_types) <= set(LAYER_TYPES):
            raise ValueError(
                f"layer_types must name {self.num_hidden_layers} layers (num_hidden_layers), each one of "
                f"{LAYER_TYPES}; got {self.layer_types!r}"
            )
        rope = copy.deepcopy(self.rope_parameters) if self.rope_parameters is not None else {}
        for layer_type in LAYER_TYPES:
            params = rope.get(layer_type) or {"rope_type": "default"}
            if rope_scaling:
                params.update(rope_scaling)
            theta = thetas[layer_type]
            params.setdefault("rope_theta", DEFAULT_THETA[layer_type] if theta is None else theta)
            if layer_type in self.layer_types:  # the reference completes only the types in use
                params.setdefault("rope_type", params.get("type", "default"))
            rope[layer_type] = params
        self.rope_parameters = rope

    return __init__


ModernBertConfig.__init__ = _read_older_keys(ModernBertConfig.__init__)


def rotary_inv_freq(config: ModernBertConfig, layer_type: str) -> Tensor:
    """The rotary inverse frequencies (head_dim / 2,) of one layer type; a ValueError for an unknown type."""
    params = config.rope_parameters[layer_type]
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in ROPE_TYPES:
        raise ValueError(
            f"rope_parameters[{layer_type!r}] asks for rope_type {rope_type!r}, which headway's ModernBERT does "
            f"not implement; supported: {list(ROPE_TYPES)}"
        )
    dim = config.hidden_size // config.num_attention_heads
    inv_freq = 1.0 / (params["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    if rope_type == "linear":  # position interpolation: positions divided by ``factor``
        inv_freq = inv_freq / params["factor"]
    return inv_freq


class ModernBertRotaryEmbedding(nn.Module):
    """cos / sin tables of each layer type in use, computed once per forward for the given positions."""

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.layer_types = sorted(set(config.layer_types))
        for layer_type in self.layer_types:  # not in checkpoints: rebuilt from the config
            self.register_buffer(f"{layer_type}_inv_freq", rotary_inv_freq(config, layer_type), persistent=False)
        self.config = config

    def reset_buffers(self) -> None:
        """Recompute the tables (after loading on the meta device)."""
        for layer_type in self.layer_types:
            buffer = getattr(self, f"{layer_type}_inv_freq")
            setattr(self, f"{layer_type}_inv_freq", rotary_inv_freq(self.config, layer_type).to(buffer.device))

    @torch.no_grad()
    def forward(self, position_ids: Tensor, dtype: torch.dtype) -> dict[str, tuple[Tensor, Tensor]]:
        """Per layer type, the ``(cos, signed_sin)`` tables of :func:`headway.nn.rotary.rotate` for each
        position, of shape (B or 1, T, 1, 1, head_dim) to broadcast over query and key heads. As in the
        reference, cos and sin are rounded to the model's dtype and the rotation is computed in float32."""
        tables = {}
        for layer_type in self.layer_types:
            inv_freq = getattr(self, f"{layer_type}_inv_freq")
            angles = position_ids[..., None].float() * inv_freq  # (B or 1, T, head_dim / 2)
            angles = torch.cat((angles, angles), dim=-1)  # (B or 1, T, head_dim): pairs i and i + head_dim / 2
            cos, signed_sin = rotation_tables(angles.cos().to(dtype).float(), angles.sin().to(dtype).float(), 2)
            tables[layer_type] = (cos.unsqueeze(2), signed_sin.unsqueeze(2))  # (B or 1, T, 1, 1, head_dim)
        return tables


def apply_rotary(x: Tensor, rotation: tuple[Tensor, Tensor]) -> Tensor:
    """Rotate (B, T, ..., head_dim) by position, in float32 (dimension i pairs with i + head_dim / 2)."""
    return rotate(x.float(), *rotation).to(x.dtype)


class LocalChunk(NamedTuple):
    """A block of queries of a sliding-window layer with the only keys they can see, and its mask."""

    queries: slice
    keys: slice
    mask: Tensor  # (B or 1, 1, queries, keys), additive


Mask = Tensor | list[LocalChunk] | None  # what one layer type's attention takes


def attention_masks(attention_mask: Tensor | None, layer_types: list[str], seq_len: int, window: int, *,
                    dtype: torch.dtype, device: torch.device, chunked: bool) -> dict[str, Mask]:
    """Additive masks (0 or -inf), one per layer type, built once per forward.

    ``full_attention``: the padding mask (B, 1, 1, T), None without padding. ``sliding_attention``: keys
    at most ``window`` positions away that are not padding, (B or 1, 1, T, T); the padding mask alone when
    the window covers every pair. A query that sees no key at all (a padding position far from the text)
    gets what the reference gives it (see ``headway.nn.attention``).

    With ``chunked`` (no attention weights asked for) and an input long enough that it pays, the sliding
    mask comes as :class:`LocalChunk` blocks instead: each block of ``2 * window`` queries (at least 64)
    is scored against the keys its window reaches, so work and memory grow with T * window rather than
    T * T. Every query sees the same keys with the same scores as through the (T, T) mask.
    """
    full = padding_mask(attention_mask, dtype)  # (B, 1, 1, T) or None
    masks: dict[str, Mask] = {FULL: full, SLIDING: full}
    if SLIDING not in layer_types or seq_len - 1 <= window:
        return masks
    positions = torch.arange(seq_len, device=device)

    def band(queries: slice, keys: slice) -> Tensor:
        far = (positions[queries, None] - positions[None, keys]).abs() > window  # (queries, keys)
        mask = torch.zeros(far.shape, dtype=dtype, device=device).masked_fill_(far, float("-inf"))[None, None]
        return mask if full is None else mask + full[..., keys]  # (B or 1, 1, queries, keys)

    block = max(64, 2 * window)
    if not chunked or seq_len <= block + 2 * window:
        masks[SLIDING] = band(slice(None), slice(None))
        return masks
    chunks = []
    for start in range(0, seq_len, block):
        queries = slice(start, min(start + block, seq_len))
        keys = slice(max(0, start - window), min(seq_len, start + block + window))
        chunks.append(LocalChunk(queries, keys, band(queries, keys)))
    masks[SLIDING] = chunks
    return masks


class ModernBertEmbeddings(nn.Module):
    """Token embeddings, LayerNorm and dropout; positions come from rotary attention."""

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.tok_embeddings = Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.drop = Dropout(config.embedding_dropout)

    def forward(self, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None) -> Tensor:
        if inputs_embeds is None:
            check_token_ids(input_ids, self.tok_embeddings.num_embeddings)
            inputs_embeds = self.tok_embeddings(input_ids)
        return self.drop(self.norm(inputs_embeds))


class ModernBertMLP(nn.Module):
    """Gated GELU feed-forward: ``Wo(act(a) * b)`` with ``a, b`` the two halves of ``Wi(x)``."""

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.Wi = Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.mlp_bias)
        self.act = get_activation(config.hidden_activation)
        self.drop = Dropout(config.mlp_dropout)
        self.Wo = Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)
        self.Wo.init_role = "out"

    def forward(self, hidden_states: Tensor) -> Tensor:
        value, gate = self.Wi(hidden_states).chunk(2, dim=-1)  # (B, T, intermediate) each
        return self.Wo(self.drop(self.act(value) * gate))


class ModernBertAttention(nn.Module):
    """Self-attention with rotary positions; query, key and value come from one packed ``Wqkv``."""

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.Wqkv = Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.Wo.init_role = "out"
        self.dropout_p = config.attention_dropout
        self.out_drop = Dropout(config.attention_dropout)

    def forward(self, hidden_states: Tensor, mask: Mask, rotation: tuple[Tensor, Tensor],
                output_attentions: bool = False) -> tuple[Tensor, Tensor | None]:
        B, T, _ = hidden_states.shape
        qkv = self.Wqkv(hidden_states).view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, heads, head_dim)
        qk = apply_rotary(qkv[:, :, :2], rotation)  # (B, T, 2, heads, head_dim): query and key rotated
        # (B, T, heads, head_dim) -> (B, heads, T, head_dim)
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        dropout_p = self.dropout_p if self.training else 0.0
        if isinstance(mask, list):  # a long input in a sliding-window layer: block by block
            out = torch.cat([attention(q[:, :, c.queries], k[:, :, c.keys], v[:, :, c.keys], c.mask,
                                       dropout_p=dropout_p)[0].transpose(1, 2) for c in mask], dim=1)
            weights = None  # (B, T, heads, head_dim)
        else:
            out, weights = attention(q, k, v, mask, dropout_p=dropout_p, output_attentions=output_attentions)
            out = out.transpose(1, 2)  # (B, heads, T, head_dim) -> (B, T, heads, head_dim)
        return self.out_drop(self.Wo(out.reshape(B, T, -1))), weights  # (B, T, hidden)


class ModernBertEncoderLayer(nn.Module):
    """Pre-norm layer: ``x + attn(attn_norm(x))``, then ``x + mlp(mlp_norm(x))``.

    The first layer has no ``attn_norm``: the embeddings were just normalised.
    """

    def __init__(self, config: ModernBertConfig, layer_idx: int) -> None:
        super().__init__()
        self.attention_type = config.layer_types[layer_idx]
        if layer_idx == 0:
            self.attn_norm = nn.Identity()
        else:
            self.attn_norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.attn = ModernBertAttention(config)
        self.mlp_norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = ModernBertMLP(config)

    def forward(self, hidden_states: Tensor, masks: Mapping[str, Mask], output_attentions: bool = False,
                *, rotary: Mapping[str, tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor | None]:
        attended, weights = self.attn(self.attn_norm(hidden_states), masks[self.attention_type],
                                      rotary[self.attention_type], output_attentions)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.mlp_norm(hidden_states)), weights


class ModernBertPredictionHead(nn.Module):
    """dense -> activation -> LayerNorm, before the decoder or a task classifier."""

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size, bias=config.classifier_bias)
        self.dense.init_role = "out"
        self.act = get_activation(config.classifier_activation)
        self.norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.norm(self.act(self.dense(hidden_states)))


class ModernBertPreTrainedModel(PreTrainedModel):
    config_class = ModernBertConfig
    base_model_prefix = "model"

    def _init_std(self, role: str) -> float:
        config = self.config
        return {
            "in": config.initializer_range,
            "out": config.initializer_range / math.sqrt(2.0 * config.num_hidden_layers),
            "final_out": config.hidden_size**-0.5,
        }[role]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's scheme: truncated normals (cut at ``initializer_cutoff_factor`` stds), with the
        std chosen by the layer's role: ``in`` (embeddings, Wqkv, Wi), ``out`` (the projections back to the
        residual stream, the head's dense, the decoder, scaled by depth), ``final_out`` (classifiers)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = self._init_std(getattr(module, "init_role", "in"))
            cutoff = self.config.initializer_cutoff_factor or 3.0
            nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff * std, b=cutoff * std)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            if module.bias is not None:
                module.bias.zero_()


class ModernBertModel(ModernBertPreTrainedModel):
    """The bare encoder: ``last_hidden_state`` (B, T, hidden) after the final LayerNorm.

    Inputs may be up to ``max_position_embeddings`` tokens long (8192 for the released checkpoints).
    """

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__(config)
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.ModuleList(ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.rotary_emb = ModernBertRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.tok_embeddings

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.embeddings.tok_embeddings = embeddings

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
    ) -> BaseModelOutput:
        """``token_type_ids`` is accepted and ignored, as the reference does: ModernBERT has no segments."""
        shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.hidden_size)
        check_companions(shape, attention_mask=attention_mask, position_ids=position_ids, rotary=True)
        output_attentions, output_hidden_states = output_flags(self.config, output_attentions, output_hidden_states)
        seq_len = shape[1]
        check_length(seq_len, self.config.max_position_embeddings)
        hidden = self.embeddings(input_ids, inputs_embeds)
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=hidden.device)[None]  # (1, T)
        masks = attention_masks(attention_mask, self.config.layer_types, seq_len, self.config.sliding_window,
                                dtype=hidden.dtype, device=hidden.device, chunked=not output_attentions)
        hidden, all_hidden, all_attentions = run_layers(
            self.layers, hidden, masks, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions, checkpointing=self.gradient_checkpointing and self.training,
            rotary=self.rotary_emb(position_ids, hidden.dtype),
        )
        hidden = self.final_norm(hidden)
        if all_hidden is not None:  # the last hidden state is given after the final norm, as in the reference
            all_hidden = (*all_hidden[:-1], hidden)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)


class ModernBertForMaskedLM(ModernBertPreTrainedModel):
    """Masked-LM head: ``decoder(head(h))``, the decoder tied to the token embeddings, with a bias.

    With ``config.sparse_prediction`` and labels given, only the labelled positions are decoded: the
    logits are then (number of labelled tokens, vocab), as in the reference.
    """

    _tied_weights_keys = {"decoder.weight": "model.embeddings.tok_embeddings.weight"}

    def __init__(self, config: ModernBertConfig) -> None:
        super().__init__(config)
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.decoder = Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.decoder.init_role = "out"
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.decoder

    def set_output_embeddings(self, embeddings: nn.Linear) -> None:
        self.decoder = embeddings

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                position_ids: Tensor | None = None, inputs_embeds: Tensor | None = None,
                labels: Tensor | None = None, **kwargs: Any) -> MaskedLMOutput:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         inputs_embeds=inputs_embeds, **kwargs)
        hidden = out.last_hidden_state
        if self.config.sparse_prediction and labels is not None:
            labels = labels.reshape(-1)
            kept = labels != self.config.sparse_pred_ignore_index
            hidden, labels = hidden.reshape(labels.shape[0], -1)[kept], labels[kept]  # (kept tokens, hidden)
        logits = self.decoder(self.head(hidden))  # (B, T, vocab), or (kept tokens, vocab)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class ModernBertTaskHead(ModernBertPreTrainedModel):
    """What the task heads share: ``head`` (dense, activation, LayerNorm), ``drop`` and ``classifier``."""

    def init_head(self, config: ModernBertConfig) -> None:
        self.head = ModernBertPredictionHead(config)
        self.drop = Dropout(config.classifier_dropout)
        self.classifier = Linear(config.hidden_size, self.num_outputs(config))
        self.classifier.init_role = "final_out"

    def score(self, features: Tensor) -> Tensor:
        return self.classifier(self.drop(self.head(features)))

    @property
    def pooling(self) -> str:
        """The sentence vector: the first ([CLS]) token, or the mean over the text (``classifier_pooling``)."""
        return "first" if self.config.classifier_pooling == "cls" else "mean"


class ModernBertForSequenceClassification(ModernBertTaskHead, SequenceClassification):
    base_model_class = ModernBertModel


class ModernBertForTokenClassification(ModernBertTaskHead, TokenClassification):
    base_model_class = ModernBertModel


class ModernBertForQuestionAnswering(ModernBertTaskHead, QuestionAnswering):
    """Start and end scores from ``head``, ``drop`` and ``classifier`` (not BERT's ``qa_outputs``)."""

    base_model_class = ModernBertModel
    input_order = ("input_ids", "attention_mask", "position_ids", "start_positions", "end_positions")


class ModernBertForMultipleChoice(ModernBertTaskHead, MultipleChoice):
    base_model_class = ModernBertModel

    def pool(self, out: ModelOutput, attention_mask: Tensor | None, input_ids: Tensor | None) -> Tensor:
        """With "cls" pooling, the first token that is not padding (left padding allowed), as the reference."""
        if self.pooling == "first" and attention_mask is not None:
            hidden = out.last_hidden_state  # (B * choices, T, hidden)
            first_text = attention_mask.argmax(dim=-1).to(hidden.device)  # (B * choices,)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), first_text]
        return super().pool(out, attention_mask, input_ids)


__all__ = [
    "ModernBertConfig",
    "ModernBertForMaskedLM",
    "ModernBertForMultipleChoice",
    "ModernBertForQuestionAnswering",
    "ModernBertForSequenceClassification",
    "ModernBertForTokenClassification",
    "ModernBertModel",
]
