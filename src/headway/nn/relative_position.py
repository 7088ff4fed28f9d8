"""Relative position buckets (T5, Raffel et al., 2019, https://arxiv.org/abs/1910.10683; MPNet reuses them).

Attention adds a learned bias per head for the offset between a key and a query. Offsets are grouped
into buckets: small offsets each get their own bucket, larger ones share log-spaced buckets, and every
offset beyond ``max_distance`` falls into the last one.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def relative_position_bucket(
    relative_position: Tensor, num_buckets: int = 32, max_distance: int = 128
) -> Tensor:
    """Bucket of each key-minus-query offset: half the buckets per direction, exact for small offsets,
    log-spaced up to ``max_distance``, and everything further in the last bucket.

    For one direction only (a causal decoder), pass the offsets clamped to ``<= 0`` and twice the buckets:
    the half used for keys after the query then stays empty.
    """
    n = -relative_position
    num_buckets //= 2
    ret = (n < 0).long() * num_buckets  # keys after the query use the upper half
    n = n.abs()
    max_exact = num_buckets // 2
    # Same float expression as the reference, so every bucket boundary falls on the same offset.
    val_if_large = (
        max_exact
        + (
            torch.log(n.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
        ).long()
    )
    val_if_large = val_if_large.clamp(max=num_buckets - 1)
    return ret + torch.where(n < max_exact, n, val_if_large)
