"""Rotary position embeddings (Su et al., 2021, https://arxiv.org/abs/2104.09864) and their scalings.

A query or key vector is rotated by an angle ``position * inv_freq[i]`` in each pair of dimensions
``(i, i + head_dim / 2)``. The scalings that stretch a trained context only change ``inv_freq`` (and, for
YaRN, scale cos and sin by an "attention factor"):

- ``default``: ``inv_freq[i] = theta ** (-2i / dim)``;
- ``linear``: position interpolation, every frequency divided by ``factor``;
- ``dynamic``: NTK-aware scaling whose base grows with the sequence once it outgrows
  ``max_position_embeddings``; recomputed in the forward, as the reference does;
- ``llama3``: Llama 3.1's band-wise scaling (low frequencies divided by ``factor``, high ones kept,
  a smooth ramp between);
- ``yarn``: YaRN (Peng et al., 2023, https://arxiv.org/abs/2309.00071), a ramp between interpolated
  and extrapolated frequencies plus an attention factor.

The parameters live in a config's ``rope_parameters`` dict (``rope_type``, ``rope_theta``, ``factor``...),
the transformers 5 spelling; older configs spell them ``rope_theta`` and ``rope_scaling``, which
:func:`standardize_rope_parameters` reads the way the reference reads them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

Tensor = torch.Tensor

DEFAULT_THETA = 10_000.0
# rope_type -> the keys its parameters must hold (besides rope_type and rope_theta)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "default": (),
    "linear": ("factor",),
    "dynamic": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "yarn": ("factor", "original_max_position_embeddings"),
}
ROPE_TYPES = tuple(_REQUIRED)


def standardize_rope_parameters(
    rope_parameters: dict[str, Any] | None,
    *,
    rope_scaling: dict[str, Any] | None = None,
    rope_theta: float | None = None,
    max_position_embeddings: int,
) -> dict[str, Any]:
    """One complete ``rope_parameters`` dict from either spelling, checked.

    As in the reference, a ``rope_scaling`` dict (the older name) is preferred to ``rope_parameters``,
    ``rope_theta`` fills a missing theta (else 10000), the older key ``type`` names the rope type when
    ``rope_type`` is missing, and types that scale a trained context (``llama3``, ``yarn``) take
    ``original_max_position_embeddings`` from ``max_position_embeddings`` when they lack it.

    Raises:
        ValueError: an unknown ``rope_type``, or a required parameter missing.
    """
    params = dict(rope_scaling or rope_parameters or {})
    params.setdefault("rope_theta", DEFAULT_THETA if rope_theta is None else rope_theta)
    params.setdefault("rope_type", params.get("type", "default"))
    rope_type = params["rope_type"]
    if rope_type not in _REQUIRED:
        raise ValueError(
            f"rope_parameters asks for rope_type {rope_type!r}, which headway does not implement; "
            f"supported: {list(ROPE_TYPES)}"
        )
    if rope_type in ("llama3", "yarn"):
        params.setdefault("original_max_position_embeddings", max_position_embeddings)
    missing = [key for key in _REQUIRED[rope_type] if key not in params]
    if missing:
        raise ValueError(f"rope_parameters of rope_type {rope_type!r} must set {missing}; got {params}")
    return params


def rope_inv_freq(
    params: dict[str, Any],
    head_dim: int,
    max_position_embeddings: int,
    seq_len: int | Tensor | None = None,
) -> tuple[Tensor, float]:
    """The inverse frequencies (dim / 2,) float32 and the attention factor of ``params``.

    ``dim`` is ``head_dim * partial_rotary_factor`` (all of it by default). ``seq_len`` matters to
    ``dynamic`` only: the length the frequencies are stretched to (at least ``max_position_embeddings``).
    """
    rope_type = params.get("rope_type", "default")
    if rope_type not in _REQUIRED:
        raise ValueError(f"Unknown rope_type {rope_type!r}; supported: {list(ROPE_TYPES)}")
    base = params["rope_theta"]
    dim = int(head_dim * params.get("partial_rotary_factor", 1.0))
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim  # (dim / 2,)

    if rope_type == "dynamic":
        # NTK: a larger base for a longer sequence; the trained length gives the default base back
        factor = params["factor"]
        if seq_len is None:
            seq_len = max_position_embeddings
        elif isinstance(seq_len, Tensor):
            seq_len = torch.clamp(seq_len, min=max_position_embeddings)
        else:
            seq_len = max(seq_len, max_position_embeddings)
        base = base * ((factor * seq_len / max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))
    if rope_type == "yarn":
        return _yarn(params, base, dim, exponents, max_position_embeddings)
    inv_freq = 1.0 / (base**exponents)
    if rope_type == "linear":
        inv_freq = inv_freq / params["factor"]  # positions divided by factor, folded into the frequencies
    elif rope_type == "llama3":
        inv_freq = _llama3(params, inv_freq)
    return inv_freq, 1.0


def _llama3(params: dict[str, Any], inv_freq: Tensor) -> Tensor:
    """Llama 3.1: wavelengths longer than ``old_len / low_freq_factor`` are stretched by ``factor``, those
    shorter than ``old_len / high_freq_factor`` kept, and the band between interpolated smoothly."""
    factor, low, high = params["factor"], params["low_freq_factor"], params["high_freq_factor"]
    old_len = params["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)  # 0 at the long end of the band, 1 at the short end
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    in_band = ~(wavelen < old_len / high) * ~(wavelen > old_len / low)
    return torch.where(in_band, smoothed, scaled)


def _yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn(
    params: dict[str, Any], base: float, dim: int, exponents: Tensor, max_position_embeddings: int
) -> tuple[Tensor, float]:
    """YaRN: dimensions that turn many times over the trained length keep their frequency
    (extrapolation), those that turn less than once are interpolated, with a linear ramp between; cos and
    sin are scaled by the attention factor (``0.1 ln(factor) + 1`` unless given)."""
    old_len = params["original_max_position_embeddings"]
    factor = params["factor"]
    if factor is None:
        factor = max_position_embeddings / old_len
    attention_factor = params.get("attention_factor")
    if attention_factor is None:
        mscale, mscale_all_dim = params.get("mscale"), params.get("mscale_all_dim")
        if mscale and mscale_all_dim:
            attention_factor = float(_yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all_dim))
        else:
            attention_factor = _yarn_mscale(factor)
    beta_fast = params.get("beta_fast") or 32
    beta_slow = params.get("beta_slow") or 1

    def dim_of(rotations: float) -> float:  # the dimension that turns ``rotations`` times over old_len
        return (dim * math.log(old_len / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = dim_of(beta_fast), dim_of(beta_slow)
    if params.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # a ramp of width zero would divide by zero
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = base**exponents
    extrapolation = 1 - ramp  # weight of the unscaled frequency, (dim / 2,)
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv_freq, attention_factor


def rotate_half(x: Tensor) -> Tensor:
    """``(x1, x2) -> (-x2, x1)`` over the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(
    q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, unsqueeze_dim: int = 1
) -> tuple[Tensor, Tensor]:
    """Rotate queries and keys (B, heads, T, head_dim) by the (B or 1, T, head_dim) ``cos`` / ``sin``
    (``unsqueeze_dim`` is where the heads axis goes: 2 for (B, T, heads, head_dim) inputs)."""
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def rotation_tables(cos: Tensor, sin: Tensor, unsqueeze_dim: int = 1) -> tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` (B or 1, T, head_dim) made ready, once per forward, for :func:`rotate`: a heads
    axis inserted at ``unsqueeze_dim``, and the first half of ``sin`` negated."""
    half = sin.shape[-1] // 2
    signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
    return cos.unsqueeze(unsqueeze_dim), signed_sin.unsqueeze(unsqueeze_dim)


def rotate(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
    """``x * cos + rotate_half(x) * sin`` with the tables of :func:`rotation_tables`, bit for bit:
    ``rotate_half(x) * sin`` is ``roll(x) * signed_sin`` (only signs move), and this takes four operations
    instead of six, in every layer of every forward."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * signed_sin


class RotaryEmbedding(nn.Module):
    """cos and sin (B or 1, T, head_dim) of given positions, computed once per forward for every layer.

    ``inv_freq`` is a buffer rebuilt from the parameters (never in a checkpoint). With ``dynamic``
    scaling it is recomputed when positions reach past the longest length seen so far, and put back to
    the trained frequencies when a sequence fits the trained length again: the reference's rule,
    stateful as there.
    """

    def __init__(self, params: dict[str, Any], head_dim: int, max_position_embeddings: int) -> None:
        super().__init__()
        self.params, self.head_dim = params, head_dim
        self.rope_type = params.get("rope_type", "default")
        self.original_max_seq_len = max_position_embeddings
        inv_freq, self.attention_scaling = rope_inv_freq(params, head_dim, max_position_embeddings)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.max_seq_len_cached = max_position_embeddings

    def reset_buffers(self) -> None:
        """Recompute ``inv_freq`` (after loading on the meta device)."""
        device = self.inv_freq.device
        inv_freq, self.attention_scaling = rope_inv_freq(
            self.params, self.head_dim, self.original_max_seq_len
        )
        self.inv_freq = inv_freq.to(device)
        self.max_seq_len_cached = self.original_max_seq_len

    def _dynamic_update(self, position_ids: Tensor) -> None:
        seq_len = int(position_ids.max()) + 1
        if seq_len > self.max_seq_len_cached:  # longer than any seen: stretch further
            inv_freq, self.attention_scaling = rope_inv_freq(
                self.params, self.head_dim, self.original_max_seq_len, seq_len=torch.tensor(seq_len)
            )
            self.inv_freq = inv_freq.to(self.inv_freq.device)
            self.max_seq_len_cached = seq_len
        elif seq_len < self.original_max_seq_len < self.max_seq_len_cached:  # back within the trained length
            self.reset_buffers()

    @torch.no_grad()
    def forward(self, position_ids: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """cos and sin of ``position_ids`` (B or 1, T), each (B or 1, T, head_dim) in ``dtype``."""
        if self.rope_type == "dynamic":
            self._dynamic_update(position_ids)
        angles = position_ids[..., None].float() * self.inv_freq.float()  # (B or 1, T, dim / 2)
        cos, sin = angles.cos(), angles.sin()
        if self.attention_scaling != 1.0:
            cos, sin = cos * self.attention_scaling, sin * self.attention_scaling
        cos, sin = cos.to(dtype), sin.to(dtype)
        return torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)  # (B or 1, T, head_dim) each

    def extra_repr(self) -> str:
        return f"rope_type={self.rope_type!r}, head_dim={self.head_dim}"


__all__ = [
    "ROPE_TYPES",
    "RotaryEmbedding",
    "apply_rotary_pos_emb",
    "rope_inv_freq",
    "rotate",
    "rotate_half",
    "rotation_tables",
    "standardize_rope_parameters",
]
