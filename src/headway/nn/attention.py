"""Attention through ``torch.nn.functional.scaled_dot_product_attention``, and the masks it takes.

Masks are additive, broadcastable to the scores (B, heads, T, S): 0 where a query may see a key, -inf
where it may not (boolean masks, True where a query may see a key, are accepted too). A query that may
see no key at all (a left-padding position of a decoder, or a sequence that is all padding) then gets
zeros through SDPA, as the reference's SDPA path gives; on the explicit path (``output_attentions=True``)
its masked scores are the dtype's minimum instead, which spreads its weights evenly over every key, as the
reference's eager path does. Either way no NaN comes out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from headway.nn.dropout import active_keys, attention_dropout


def padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """An additive mask (B, 1, 1, T) from a 0/1 padding mask (B, T); None when nothing is masked.

    Returning None when every position is kept lets SDPA take its fastest kernel.
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must have shape (batch, seq_len), got {tuple(attention_mask.shape)}"
        )
    if bool(attention_mask.all()):
        return None
    return _additive(attention_mask[:, None, None, :].to(torch.bool), dtype)  # (B, 1, 1, T)


def causal_mask(
    attention_mask: torch.Tensor | None,
    query_len: int,
    dtype: torch.dtype,
    *,
    key_len: int | None = None,
    window: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """The additive mask (B or 1, 1, T, S) of decoder self-attention, built once per forward.

    The T queries are the last T of the S key positions (T < S: a step over cached keys), so query ``i``
    sees the keys at positions up to ``S - T + i``. Keys that are padding in ``attention_mask`` (B, S) are
    dropped, and with ``window`` a query sees only the ``window`` most recent keys, itself included
    (Mistral-style local attention: key ``j`` of query position ``p`` is kept when ``p - window < j <= p``).

    Returns None when causality is the only constraint and SDPA's own ``is_causal`` applies (T == S, or
    T == 1 where a single last query sees every key): call
    ``attention(q, k, v, mask, is_causal=mask is None)``.

    Args:
        attention_mask: 0/1 (or bool) padding mask over the keys, (B, S); None when nothing is padded.
        query_len: T, the number of queries.
        dtype: dtype of the scores the mask is added to.
        key_len: S; defaults to ``attention_mask``'s length, else ``query_len``.
        window: how many most recent keys a query sees (itself included); None for no limit.
        device: where to build the mask when ``attention_mask`` is None.
    """
    if attention_mask is not None:
        if attention_mask.dim() != 2:
            raise ValueError(
                f"attention_mask must have shape (batch, key_len), got {tuple(attention_mask.shape)}"
            )
        if key_len is None:
            key_len = attention_mask.shape[1]
        elif attention_mask.shape[1] != key_len:
            raise ValueError(
                f"attention_mask covers {attention_mask.shape[1]} keys, expected key_len={key_len}"
            )
        device = attention_mask.device
    key_len = query_len if key_len is None else key_len
    if not 0 < query_len <= key_len:
        raise ValueError(f"query_len must be in 1..key_len ({key_len}), got {query_len}")
    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be a positive int or None, got {window!r}")
    keep = None
    if attention_mask is not None and not bool(attention_mask.all()):
        keep = attention_mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, S)
    windowed = window is not None and key_len > window  # the last query is `key_len - 1`: beyond the window
    if keep is None and not windowed and query_len in (1, key_len):
        return None
    allowed = _causal(query_len, key_len, device, window)[None, None]  # (1, 1, T, S)
    if keep is not None:
        allowed = allowed & keep  # (B, 1, T, S)
    return _additive(allowed, dtype)


def _causal(query_len: int, key_len: int, device, window: int | None = None) -> torch.Tensor:
    """Boolean (T, S): the T queries are the last T key positions; True where a query sees a key."""
    keys = torch.arange(key_len, device=device)
    queries = keys[key_len - query_len :, None]  # (T, 1) positions of the queries
    allowed = keys <= queries  # (T, S)
    if window is not None:
        allowed &= keys > queries - window
    return allowed


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
        ~allowed, float("-inf")
    )


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    *,
    dropout_p: float = 0.0,
    scale: float | None = None,
    is_causal: bool = False,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention over (B, heads, T, head_dim) queries and (B, heads, S, head_dim) keys and values; returns
    the output and, if asked, the weights (B, heads, T, S). Keys and values may have fewer heads than the
    queries (grouped-query attention: each key/value head serves ``heads / kv_heads`` consecutive query
    heads); SDPA reads them in place (``enable_gqa``), the explicit path repeats them.

    ``mask`` is additive (or boolean, True to attend) and broadcastable to (B, heads, T, S). With
    ``is_causal`` each query sees only keys up to its own position, the T queries being the last T of the S
    keys, on top of ``mask``: combining them costs a (B, 1, T, S) mask per call, so decoders build theirs
    once per forward with ``causal_mask`` and pass ``is_causal=mask is None``. SDPA never materialises the
    weights, so ``output_attentions=True`` takes the explicit path; so does dropout under
    :func:`headway.nn.dropout.keyed_dropout` (SDPA draws its dropout mask from torch's RNG, which cannot
    be keyed). Inference, and training outside that context, take the same path as before.
    """
    keys = active_keys() if dropout_p > 0.0 else None
    explicit = output_attentions or keys is not None
    query_len, key_len = query.shape[-2], key.shape[-2]
    groups = query.shape[-3] // key.shape[-3]
    if groups * key.shape[-3] != query.shape[-3]:
        raise ValueError(f"{query.shape[-3]} query heads cannot share {key.shape[-3]} key/value heads evenly")
    sdpa_causal = False
    if is_causal and mask is None and query_len == key_len and not explicit:
        sdpa_causal = True  # SDPA's own causal kernel (top-left aligned: the same when T == S)
    elif is_causal and query_len > 1:  # (a single query is the last position: it sees every key)
        causal = _causal(query_len, key_len, query.device)  # (T, S)
        if mask is None:
            mask = _additive(causal, query.dtype)
        elif mask.dtype == torch.bool:
            mask = mask & causal
        else:
            mask = torch.where(
                causal, mask, float("-inf")
            )  # a (B, 1, 1, S) padding mask becomes (B, 1, T, S)
    if not explicit:
        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=mask,
            dropout_p=dropout_p,
            scale=scale,
            is_causal=sdpa_causal,
            enable_gqa=groups > 1,
        )
        return out, None
    if groups > 1:
        key = key.repeat_interleave(groups, dim=-3)  # (B, heads, S, head_dim)
        value = value.repeat_interleave(groups, dim=-3)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale  # (B, heads, T, S)
    lowest = torch.finfo(scores.dtype).min
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, lowest)
    elif mask is not None:
        # -inf to the dtype's minimum: a query that sees no key spreads evenly instead of giving NaN
        scores = (scores + mask).clamp_min_(lowest)
    # half precision scores are normalised in float32, as the reference does; float32/float64 as they are
    softmax_dtype = torch.float32 if scores.dtype in (torch.float16, torch.bfloat16) else scores.dtype
    weights = torch.softmax(scores, dim=-1, dtype=softmax_dtype).to(query.dtype)
    if keys is not None:
        weights = attention_dropout(weights, dropout_p, keys)
    elif dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, value), weights if output_attentions else None
