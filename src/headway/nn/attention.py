"""Attention through ``torch.nn.functional.scaled_dot_product_attention``, and the masks it takes."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """An additive mask (B, 1, 1, T) from a 0/1 padding mask (B, T); None when nothing is masked.

    Returning None when every position is kept lets SDPA take its fastest kernel.
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (batch, seq_len), got {tuple(attention_mask.shape)}")
    if bool(attention_mask.all()):
        return None
    keep = attention_mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, T)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(~keep, torch.finfo(dtype).min)


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
    """Attention over (B, heads, T, head_dim) tensors; returns the output and, if asked, the weights.

    SDPA never materialises the weights, so ``output_attentions=True`` takes the explicit path.
    """
    if not output_attentions:
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=dropout_p, scale=scale, is_causal=is_causal and mask is None
        )
        return out, None
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale  # (B, heads, T, S)
    if is_causal:
        t, s = scores.shape[-2:]
        causal = torch.ones(t, s, dtype=torch.bool, device=scores.device).tril(s - t)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, value), weights
