"""DeBERTa-v2 and DeBERTa-v3 (He et al., 2020, https://arxiv.org/abs/2006.03654; v3: 2111.09543).

Reads checkpoints of ``model_type: "deberta-v2"``: microsoft/deberta-v3-{xsmall,small,base,large},
mdeberta-v3-base, deberta-v2-{xlarge,xxlarge} and their fine-tunes. Attribute paths are the Hub
weight names.

What sets DeBERTa apart is disentangled attention: besides the content-to-content score ``q . k``, a
query attends to the *relative position* of each key (c2p: ``q_i . P_k[rel(i, j)]``) and a key to the
relative position of each query (p2c: ``k_j . P_q[rel(j, i)]``), where ``P`` projects a table of
relative-position embeddings and ``rel`` buckets distances logarithmically past ``position_buckets / 2``.

How this file computes it (same numbers as the reference, less work):

- the bucket table is built once per forward, for the ``2T - 1`` distances a length ``T`` can have,
  and only the embedding rows those distances reach are normalised and projected;
- each term is one matrix product against the ``2T - 1`` distances, turned into the (T, T) score by a
  strided view (the "skew" of Transformer-XL), not by a gather from all ``2 * position_buckets`` rows;
- both terms and the padding mask become one additive (B, heads, T, T) bias that goes to
  ``F.scaled_dot_product_attention`` as its float mask.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from headway.configuration import PretrainedConfig, config_class
from headway.losses import sequence_classification_loss, token_classification_loss
from headway.modeling import PreTrainedModel
from headway.models.bert import BertIntermediate, BertOutput, BertSelfOutput
from headway.models.encoder import (
    Encoder,
    check_companions,
    check_index_ranges,
    check_length,
    check_one_input,
    output_flags,
    run_layers,
)
from headway.models.heads import (
    MultipleChoice,
    QuestionAnswering,
    SequenceClassification,
    TaskHead,
    TokenClassification,
)
from headway.nn.activations import get_activation
from headway.nn.attention import attention
from headway.nn.layers import Dropout, Embedding, LayerNorm
from headway.nn.linear import Linear, fused_linear
from headway.outputs import BaseModelOutput, MaskedLMOutput

Tensor = torch.Tensor
POSITION_ATTENTION_TYPES = ("c2p", "p2c")  # content->position, position->content


@config_class
class DebertaV2Config(PretrainedConfig):
    """The reference's fields and defaults (those of deberta-v2-xlarge), plus the keys its model reads
    from config.json with ``getattr`` (``position_buckets``, ``share_att_key``, ``norm_rel_ebd``,
    ``embedding_size``, ``conv_*``, ``attention_head_size``, ``pooler_hidden_size``, ``cls_dropout``),
    with the defaults it falls back to."""

    model_type: ClassVar[str] = "deberta-v2"

    vocab_size: int = 128100
    hidden_size: int = 1536
    num_hidden_layers: int = 24
    num_attention_heads: int = 24
    intermediate_size: int = 6144
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-7
    relative_attention: bool = False
    max_relative_positions: int = -1  # < 1: max_position_embeddings
    position_buckets: int = -1  # > 0: distances past position_buckets / 2 share log-spaced buckets
    pos_att_type: list[str] | str | None = None  # "p2c|c2p" or ["p2c", "c2p"]; stored as a list
    share_att_key: bool = False  # project positions with query_proj / key_proj instead of pos_*_proj
    norm_rel_ebd: str = "none"  # "layer_norm": LayerNorm the relative embeddings (encoder.LayerNorm)
    position_biased_input: bool = True  # add absolute position embeddings to the input
    pad_token_id: int | None = 0
    embedding_size: int | None = None  # None: hidden_size (else embeddings.embed_proj maps it up)
    attention_head_size: int | None = None  # None: hidden_size // num_attention_heads
    conv_kernel_size: int = 0  # > 0: the ConvLayer of deberta-v2-xlarge after the first layer
    conv_groups: int = 1
    conv_act: str = "tanh"
    pooler_hidden_size: int | None = None  # None: hidden_size
    pooler_dropout: float = 0.0
    pooler_hidden_act: str = "gelu"
    cls_dropout: float | None = None  # None: hidden_dropout_prob
    legacy: bool = True  # masked-LM head: cls.predictions (True) or lm_predictions.lm_head (False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.pos_att_type, str):
            self.pos_att_type = [part.strip() for part in self.pos_att_type.lower().split("|") if part.strip()]
        unknown = [t for t in self.pos_att_type or [] if t not in POSITION_ATTENTION_TYPES]
        if unknown:
            raise ValueError(
                f"pos_att_type entries {unknown} are not supported; expected a combination of "
                f"{list(POSITION_ATTENTION_TYPES)} such as 'p2c|c2p'"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        self.embedding_size = self.embedding_size or self.hidden_size
        self.attention_head_size = self.attention_head_size or self.hidden_size // self.num_attention_heads
        self.pooler_hidden_size = self.pooler_hidden_size or self.hidden_size
        if self.conv_kernel_size > 0 and self.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be odd (the output keeps the length), got {self.conv_kernel_size}")

    @property
    def max_input_length(self) -> int | None:
        """Absolute positions limit the length; relative positions alone do not (v3)."""
        return self.max_position_embeddings if self.position_biased_input else None

    @property
    def max_relative_distance(self) -> int:
        """The distance the last log bucket reaches."""
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    @property
    def relative_span(self) -> int:
        """Half the rows of ``encoder.rel_embeddings``: the buckets on each side of distance 0."""
        if self.position_buckets > 0:
            return self.position_buckets
        return self.max_relative_distance


# -- relative positions ---------------------------------------------------------------------------------

def log_bucket(distance: Tensor, buckets: int, max_distance: int) -> Tensor:
    """Distances within ``buckets // 2`` of zero kept; farther ones on a log scale reaching ``max_distance``.

    The float32 arithmetic follows the reference's step by step: a bucket is the ceiling of a logarithm,
    and rounding must not move it.
    """
    half = buckets // 2
    far = distance.abs().clamp(min=half) / half  # float32; >= 1
    log_range = torch.log(torch.tensor((max_distance - 1) / half))
    bucket = torch.ceil(torch.log(far) / log_range * (half - 1)) + half
    return torch.where(distance.abs() <= half, distance.to(bucket.dtype), bucket * torch.sign(distance))


@functools.lru_cache(maxsize=64)
def _relative_rows(length: int, buckets: int, max_distance: int, span: int
                   ) -> tuple[slice, list[int], list[int]]:
    """The rows of the relative-embedding table a length reaches, and for each skew column m (distance
    ``length - 1 - m`` between a row and a column token) the one of those rows that the c2p and the p2c
    term read. Plain ints, so the cache holds no tensor (one made under inference_mode could not be
    saved for a backward later)."""
    distance = torch.arange(length - 1, -length, -1)  # (2T - 1,)
    bucket = log_bucket(distance, buckets, max_distance).long() if buckets > 0 else distance
    c2p = (bucket + span).clamp(0, 2 * span - 1)  # query i reads the key at distance i - j
    p2c = (span - bucket).clamp(0, 2 * span - 1)  # key j reads the query at distance j - i
    first, last = int(torch.minimum(c2p, p2c).min()), int(torch.maximum(c2p, p2c).max())
    return slice(first, last + 1), (c2p - first).tolist(), (p2c - first).tolist()


class RelativeTables(NamedTuple):
    """What every layer's position terms read, built once per forward."""

    embeddings: Tensor  # (R, hidden): the (normalised) rows of rel_embeddings this length reaches
    c2p: Tensor  # (2T - 1,) row of ``embeddings`` per skew column, for content -> position
    p2c: Tensor  # (2T - 1,) the same for position -> content


class PairMask(NamedTuple):
    """Padding as the reference applies it: a score is dropped when its query *or* its key is padding,
    so a padding query attends uniformly to every position (its output is the mean of the values)."""

    dropped: Tensor  # (B, 1, T, T) bool
    additive: Tensor  # (B, 1, T, T) float: finfo.min where dropped, else 0
    query_keep: Tensor  # (B, 1, T, 1) float: 0 on padding queries


def pair_mask(attention_mask: Tensor | None, dtype: torch.dtype) -> PairMask | None:
    """The ``PairMask`` of a 0/1 padding mask (B, T); None when nothing is padding."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    keep = attention_mask.to(torch.bool)
    dropped = ~(keep[:, None, :, None] & keep[:, None, None, :])  # (B, 1, T, T)
    additive = torch.zeros(dropped.shape, dtype=dtype, device=keep.device).masked_fill_(dropped, torch.finfo(dtype).min)
    return PairMask(dropped, additive, keep[:, None, :, None].to(dtype))


def skew(scores: Tensor) -> Tensor:
    """(..., T, 2T - 1) scores against every distance -> (..., T, T) with ``out[i, j] = scores[i, T - 1 + j - i]``.

    A view (no copy): read row by row, the wanted entries are evenly spaced in memory.
    """
    T = scores.shape[-2]
    if T == 1:
        return scores
    flat = scores.flatten(-2)[..., T - 1: T - 1 + T * (2 * T - 2)]  # (..., T * (2T - 2))
    return flat.unflatten(-1, (T, 2 * T - 2))[..., :T]  # (..., T, T)


# -- layers ---------------------------------------------------------------------------------------------

class DebertaV2Embeddings(nn.Module):
    """Word (+ absolute position) (+ token type) embeddings, ``embed_proj``, LayerNorm, padding zeroed."""

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        size = config.embedding_size
        self.word_embeddings = Embedding(config.vocab_size, size, padding_idx=config.pad_token_id)
        self.position_embeddings = (
            Embedding(config.max_position_embeddings, size) if config.position_biased_input else None
        )
        self.token_type_embeddings = Embedding(config.type_vocab_size, size) if config.type_vocab_size > 0 else None
        self.embed_proj = Linear(size, config.hidden_size, bias=False) if size != config.hidden_size else None
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor | None, token_type_ids: Tensor | None, position_ids: Tensor | None,
                inputs_embeds: Tensor | None, attention_mask: Tensor | None) -> Tensor:
        checks = [("input_ids", input_ids if inputs_embeds is None else None, self.word_embeddings.num_embeddings)]
        if self.token_type_embeddings is not None:  # ids a model has no table for are ignored, as in the reference
            checks.append(("token_type_ids", token_type_ids, self.token_type_embeddings.num_embeddings))
        if self.position_embeddings is not None:
            checks.append(("position_ids", position_ids, self.position_embeddings.num_embeddings))
        check_index_ranges(*checks)  # one device->host sync for all
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        embeddings = inputs_embeds  # (B, T, embedding_size)
        if self.position_embeddings is not None:
            if position_ids is None:
                check_length(embeddings.shape[1], self.position_embeddings.num_embeddings)
                embeddings = embeddings + self.position_embeddings.weight[: embeddings.shape[1]]
            else:
                embeddings = embeddings + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:  # all segment 0: one row, broadcast
                embeddings = embeddings + self.token_type_embeddings.weight[0]
            else:
                embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            embeddings = self.embed_proj(embeddings)  # (B, T, hidden)
        embeddings = self.LayerNorm(embeddings)
        if attention_mask is not None:
            embeddings = embeddings * attention_mask[..., None].to(embeddings.dtype)  # (B, T, 1)
        return self.dropout(embeddings)


class DisentangledSelfAttention(nn.Module):
    """Content attention plus the c2p / p2c relative-position terms, through one SDPA call."""

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.attention_head_size
        inner = self.num_heads * self.head_dim
        self.query_proj = Linear(config.hidden_size, inner)
        self.key_proj = Linear(config.hidden_size, inner)
        self.value_proj = Linear(config.hidden_size, inner)
        self.share_att_key = config.share_att_key
        self.relative_attention = config.relative_attention
        types = (config.pos_att_type or []) if config.relative_attention else []
        self.c2p, self.p2c = "c2p" in types, "p2c" in types
        if self.relative_attention:
            self.pos_dropout = Dropout(config.hidden_dropout_prob, shared=True)  # one table every example uses
            if not self.share_att_key and self.c2p:
                self.pos_key_proj = Linear(config.hidden_size, inner)
            if not self.share_att_key and self.p2c:
                self.pos_query_proj = Linear(config.hidden_size, inner)
        # Every score is divided by sqrt(head_dim * number of terms named), as in the reference even
        # when relative_attention is off.
        self.scale = (self.head_dim * (1 + sum(t in (config.pos_att_type or []) for t in POSITION_ATTENTION_TYPES))) ** -0.5
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, hidden_states: Tensor, mask: PairMask | None, output_attentions: bool = False, *,
                rel: RelativeTables | None = None) -> tuple[Tensor, Tensor | None]:
        B, T, _ = hidden_states.shape
        projections = (self.query_proj, self.key_proj, self.value_proj)
        qkv = fused_linear(hidden_states, projections)  # one product on the CPU inference path
        if qkv is not None:
            q, k, v = qkv.view(B, T, 3, self.num_heads, self.head_dim).unbind(2)  # (B, T, heads, head_dim) each
        else:
            # (B, T, heads * head_dim) -> (B, T, heads, head_dim)
            q, k, v = (proj(hidden_states).view(B, T, self.num_heads, self.head_dim) for proj in projections)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, head_dim)
        bias = self.relative_bias(q, k, rel) if rel is not None and (self.c2p or self.p2c) else None
        if mask is not None:
            if torch.is_grad_enabled():
                # A padding query's scores are all finfo.min whatever q and k are; zeroing its q keeps
                # autograd from sending it the gradient of scores that the reference masks out.
                q = q * mask.query_keep
            bias = mask.additive if bias is None else bias.masked_fill_(mask.dropped, torch.finfo(bias.dtype).min)
        out, weights = attention(q, k, v, bias, dropout_p=self.dropout_p if self.training else 0.0,
                                 scale=self.scale, output_attentions=output_attentions)
        return out.transpose(1, 2).reshape(B, T, -1), weights  # (B, T, heads * head_dim)

    def relative_bias(self, q: Tensor, k: Tensor, rel: RelativeTables) -> Tensor:
        """The c2p and p2c scores (B, heads, T, T), already scaled, in a new tensor."""
        table = self.pos_dropout(rel.embeddings)  # (R, hidden)
        terms = []
        if self.c2p:
            pos_key = self._positions(self.key_proj if self.share_att_key else self.pos_key_proj, table, rel.c2p)
            terms.append(skew(torch.matmul(q, pos_key.transpose(-1, -2))))  # (B, heads, T, T)
        if self.p2c:
            pos_query = self._positions(self.query_proj if self.share_att_key else self.pos_query_proj, table, rel.p2c)
            # (B, heads, T_key, T_query) -> (B, heads, T_query, T_key)
            terms.append(skew(torch.matmul(k, pos_query.transpose(-1, -2))).transpose(-1, -2))
        return terms[0] + terms[1] if len(terms) == 2 else terms[0].contiguous()

    def _positions(self, proj: Linear, table: Tensor, rows: Tensor) -> Tensor:
        """``proj`` of the relative embeddings, scaled, one row per skew column: (heads, 2T - 1, head_dim)."""
        projected = (proj(table) * self.scale).view(table.shape[0], self.num_heads, self.head_dim)  # (R, heads, d)
        return projected.index_select(0, rows).transpose(0, 1)  # (2T - 1, heads, d) -> (heads, 2T - 1, d)


class DebertaV2Attention(nn.Module):
    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        self.self = DisentangledSelfAttention(config)  # attention.self.{query,key,value}_proj
        self.output = BertSelfOutput(config)  # attention.output.{dense,LayerNorm}

    def forward(self, hidden_states: Tensor, mask: PairMask | None, output_attentions: bool = False, *,
                rel: RelativeTables | None = None) -> tuple[Tensor, Tensor | None]:
        out, weights = self.self(hidden_states, mask, output_attentions, rel=rel)
        return self.output(out, hidden_states), weights


class DebertaV2Layer(nn.Module):
    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        self.attention = DebertaV2Attention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states: Tensor, mask: PairMask | None, output_attentions: bool = False, *,
                rel: RelativeTables | None = None) -> tuple[Tensor, Tensor | None]:
        attended, weights = self.attention(hidden_states, mask, output_attentions, rel=rel)
        return self.output(self.intermediate(attended), attended), weights


class ConvLayer(nn.Module):
    """deberta-v2-xlarge's convolution over the embeddings, added to the first layer's output."""

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        size = config.conv_kernel_size
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, size, padding=(size - 1) // 2,
                              groups=config.conv_groups)
        self.conv_act = get_activation(config.conv_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, embedded: Tensor, residual: Tensor, attention_mask: Tensor | None) -> Tensor:
        out = self.conv(embedded.transpose(1, 2)).transpose(1, 2)  # (B, hidden, T) -> (B, T, hidden)
        keep = attention_mask[..., None].to(out.dtype) if attention_mask is not None else None  # (B, T, 1)
        if keep is not None:
            out = out.masked_fill(keep == 0, 0.0)
        out = self.LayerNorm(residual + self.conv_act(self.dropout(out)))
        return out * keep if keep is not None else out


class DebertaV2Encoder(Encoder):
    """The layers, the relative-position embeddings (``rel_embeddings``, ``LayerNorm``) and the
    optional ``conv``."""

    layer_class = DebertaV2Layer

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__(config)
        # The relative embeddings are read only when some position term is on.
        self.relative_attention = config.relative_attention and bool(config.pos_att_type)
        self.span = config.relative_span
        self.position_buckets = config.position_buckets
        self.max_distance = config.max_relative_distance
        if config.relative_attention:
            self.rel_embeddings = Embedding(2 * self.span, config.hidden_size)
        norm_rel_ebd = [part.strip() for part in config.norm_rel_ebd.lower().split("|")]
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if "layer_norm" in norm_rel_ebd else None
        self.conv = ConvLayer(config) if config.conv_kernel_size > 0 else None

    def relative_tables(self, length: int, device: torch.device) -> RelativeTables | None:
        if not self.relative_attention:
            return None
        reached, c2p, p2c = _relative_rows(length, self.position_buckets, self.max_distance, self.span)
        rows = self.rel_embeddings.weight[reached]  # (R, hidden)
        if self.LayerNorm is not None:
            rows = self.LayerNorm(rows)
        return RelativeTables(rows, torch.tensor(c2p, device=device), torch.tensor(p2c, device=device))

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None, *, output_hidden_states: bool,
                output_attentions: bool) -> tuple[Tensor, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]:
        options: dict[str, Any] = {
            "output_hidden_states": output_hidden_states, "output_attentions": output_attentions,
            "checkpointing": self.gradient_checkpointing and self.training,
            "rel": self.relative_tables(hidden_states.shape[1], hidden_states.device),
        }
        mask = pair_mask(attention_mask, hidden_states.dtype)
        if self.conv is None:
            return run_layers(self.layer, hidden_states, mask, **options)
        # The convolution reads the embeddings and joins the first layer's output.
        first, _, weights = run_layers(self.layer[:1], hidden_states, mask, **options)
        first = self.conv(hidden_states, first, attention_mask)
        last, more_states, more_weights = run_layers(self.layer[1:], first, mask, **options)
        return (
            last,
            (hidden_states, *more_states) if more_states is not None else None,
            (*weights, *more_weights) if weights is not None else None,
        )


# -- models ---------------------------------------------------------------------------------------------

class DebertaV2PreTrainedModel(PreTrainedModel):
    config_class = DebertaV2Config
    base_model_prefix = "deberta"
    # v3 checkpoints keep an unused position table; older ones store the position_ids buffer.
    _keys_to_ignore_on_load_unexpected = [r"position_embeddings", r"position_ids$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, (DebertaV2LegacyLMPredictionHead, DebertaV2LMPredictionHead)):
            module.bias.zero_()


class DebertaV2Model(DebertaV2PreTrainedModel):
    """The bare encoder: ``last_hidden_state`` (B, T, hidden); DeBERTa has no pooler in the base model."""

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__(config)
        self.embeddings = DebertaV2Embeddings(config)
        self.encoder = DebertaV2Encoder(config)
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
    ) -> BaseModelOutput:
        """Encode ``input_ids`` (B, T) or ``inputs_embeds`` (B, T, embedding_size); ``attention_mask``
        (B, T) marks real tokens with 1 and padding with 0."""
        shape = check_one_input(input_ids, inputs_embeds, hidden_size=self.config.embedding_size)
        check_companions(shape, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids)
        output_attentions, output_hidden_states = output_flags(self.config, output_attentions, output_hidden_states)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds, attention_mask)
        hidden, all_hidden, all_attentions = self.encoder(
            hidden, attention_mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)


class ContextPooler(nn.Module):
    """The sentence vector of the classification heads: dropout, dense and activation on the first token."""

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        self.dense = Linear(config.pooler_hidden_size, config.pooler_hidden_size)
        self.dropout = Dropout(config.pooler_dropout)
        self.activation = get_activation(config.pooler_hidden_act)

    def forward(self, first_token: Tensor) -> Tensor:
        return self.activation(self.dense(self.dropout(first_token)))  # (B, pooler_hidden_size)


class _ContextPooled(TaskHead):
    """Sentence heads on the first token through the head-level ``pooler``, then ``cls_dropout``."""

    pooling = "first"

    def init_head(self, config: DebertaV2Config) -> None:
        self.pooler = ContextPooler(config)
        self.classifier = Linear(config.hidden_size, self.num_outputs(config))
        self.dropout = Dropout(config.cls_dropout if config.cls_dropout is not None else config.hidden_dropout_prob)

    def score(self, first_token: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.pooler(first_token)))


def sequence_loss(logits: Tensor, labels: Tensor, config: DebertaV2Config) -> Tensor:
    """The reference's DeBERTa loss: with ``problem_type`` unset it differs from the shared one (rows
    labelled < 0 are skipped; (B, num_labels) labels are soft targets for a cross-entropy, not BCE
    targets), and it leaves ``problem_type`` unset."""
    if config.problem_type is not None:
        return sequence_classification_loss(logits, labels, config)
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.view(-1).to(labels.dtype), labels.view(-1))
    if labels.dim() == 1 or labels.shape[-1] == 1:
        labels = labels.view(-1)
        labelled = labels >= 0
        if not bool(labelled.any()):
            return logits.new_zeros(())
        return F.cross_entropy(logits[labelled].float(), labels[labelled].long())
    return -(F.log_softmax(logits, dim=-1) * labels).sum(-1).mean()


class DebertaV2ForSequenceClassification(DebertaV2PreTrainedModel, _ContextPooled, SequenceClassification):
    base_model_class = DebertaV2Model

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The reference's DeBERTa loss (``sequence_loss``) instead of the shared one."""
        return sequence_loss(logits, labels, self.config)


class DebertaV2ForTokenClassification(DebertaV2PreTrainedModel, TokenClassification):
    base_model_class = DebertaV2Model


class DebertaV2ForQuestionAnswering(DebertaV2PreTrainedModel, QuestionAnswering):
    base_model_class = DebertaV2Model


class DebertaV2ForMultipleChoice(DebertaV2PreTrainedModel, _ContextPooled, MultipleChoice):
    base_model_class = DebertaV2Model


# -- masked language modelling --------------------------------------------------------------------------

class DebertaV2PredictionTransform(nn.Module):
    """dense -> hidden_act -> LayerNorm, to ``size`` features."""

    def __init__(self, config: DebertaV2Config, size: int) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class DebertaV2LegacyLMPredictionHead(nn.Module):
    """``legacy=True`` (``cls.predictions``): transform to embedding_size, then a decoder tied to the word
    embeddings; with ``tie_word_embeddings`` its bias is ``predictions.bias``."""

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__()
        self.transform = DebertaV2PredictionTransform(config, config.embedding_size)
        self.decoder = Linear(config.embedding_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.decoder(self.transform(hidden_states))


class DebertaV2LMPredictionHead(DebertaV2PredictionTransform):
    """``legacy=False`` (``lm_predictions.lm_head``): the transform, then a product with the word
    embeddings themselves plus ``bias``: the layout of the DeBERTa authors' checkpoints."""

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__(config, config.hidden_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: Tensor, word_embeddings: Tensor) -> Tensor:
        return F.linear(super().forward(hidden_states), word_embeddings, self.bias)


class _Holder(nn.Module):
    """A module holding one child under a Hub name (``cls.predictions``, ``lm_predictions.lm_head``)."""

    def __init__(self, **child: nn.Module) -> None:
        super().__init__()
        for name, module in child.items():
            self.add_module(name, module)


class DebertaV2ForMaskedLM(DebertaV2PreTrainedModel):
    """Masked-LM with the head ``config.legacy`` names, as the reference picks it.

    The reference's default is ``legacy=True``, and the DeBERTa-v3 checkpoints' config.json do not set
    it: their ``lm_predictions.*`` weights then go unused and the ``cls.predictions`` head is newly
    initialised, in the reference and here alike. Pass ``legacy=False`` to use the authors' head.
    """

    _tied_weights_keys: ClassVar[dict[str, str]] = {
        "cls.predictions.decoder.weight": "deberta.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }
    # mask_predictions: the replaced-token-detection head of the v3 pre-training checkpoints.
    _keys_to_ignore_on_load_unexpected = [*DebertaV2PreTrainedModel._keys_to_ignore_on_load_unexpected,
                                          r"mask_predictions"]

    def __init__(self, config: DebertaV2Config) -> None:
        super().__init__(config)
        self.legacy = config.legacy
        self.deberta = DebertaV2Model(config)
        if self.legacy:
            self.cls = _Holder(predictions=DebertaV2LegacyLMPredictionHead(config))
        else:
            self._tied_weights_keys = {}  # the head reads the word embeddings directly
            self.lm_predictions = _Holder(lm_head=DebertaV2LMPredictionHead(config))
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear | None:
        return self.cls.predictions.decoder if self.legacy else None

    def resize_token_embeddings(self, new_num_tokens: int, pad_to_multiple_of: int | None = None) -> nn.Embedding:
        new = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of)
        if not self.legacy:  # the output bias grows with the vocabulary; new entries are 0
            head = self.lm_predictions.lm_head
            grown = head.bias.new_zeros(new.num_embeddings)
            n = min(grown.shape[0], head.bias.shape[0])
            grown[:n] = head.bias.detach()[:n]
            head.bias = nn.Parameter(grown)
        return new

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, labels: Tensor | None = None, **kwargs: Any) -> MaskedLMOutput:
        """Logits (B, T, vocab) and, with ``labels`` (-100: ignored), the masked-LM cross-entropy."""
        out = self.deberta(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        if self.legacy:
            logits = self.cls.predictions(out.last_hidden_state)
        else:
            logits = self.lm_predictions.lm_head(out.last_hidden_state, self.deberta.embeddings.word_embeddings.weight)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


__all__ = [
    "DebertaV2Config",
    "DebertaV2ForMaskedLM",
    "DebertaV2ForMultipleChoice",
    "DebertaV2ForQuestionAnswering",
    "DebertaV2ForSequenceClassification",
    "DebertaV2ForTokenClassification",
    "DebertaV2Model",
    "DebertaV2PreTrainedModel",
]
