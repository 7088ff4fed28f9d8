"""Attention masks of headway.nn.attention: causal with padding, T < S, sliding windows, masked rows."""

from __future__ import annotations

import types

import pytest
import torch

from headway.nn.attention import attention, causal_mask, padding_mask

B, HEADS, S, D = 3, 2, 9, 8


def padding(kind: str) -> torch.Tensor | None:
    """A 0/1 padding mask (B, S): none, left (a decoder batch) or right padding; row 0 is never padded."""
    if kind == "none":
        return None
    mask = torch.ones(B, S, dtype=torch.long)
    for row, pad in ((1, 3), (2, 5)):
        if kind == "left":
            mask[row, :pad] = 0
        else:
            mask[row, S - pad:] = 0
    return mask


def allowed_by_hand(pad: torch.Tensor | None, query_len: int, window: int | None = None) -> torch.Tensor:
    """Boolean (B, 1, T, S) from torch.tril and the padding: queries are the last T of the S positions."""
    ones = torch.ones(query_len, S, dtype=torch.bool)
    allowed = ones.tril(S - query_len)
    if window is not None:
        allowed &= ~ones.tril(S - query_len - window)  # keys `window` or more positions back
    keep = torch.ones(B, S, dtype=torch.bool) if pad is None else pad.bool()
    return allowed[None, None] & keep[:, None, None, :]


def naive(q, k, v, allowed):
    """float64 softmax attention over the allowed keys (rows with at least one allowed key)."""
    q, k, v = q.double(), k.double(), v.double()
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v


def qkv(query_len: int):
    torch.manual_seed(0)
    return torch.randn(B, HEADS, query_len, D), torch.randn(B, HEADS, S, D), torch.randn(B, HEADS, S, D)


@pytest.mark.parametrize("kind", ["none", "left", "right"])
@pytest.mark.parametrize("query_len", [S, 4, 1])
@pytest.mark.parametrize("window", [None, 3, 5])
def test_causal_mask_equals_tril_and_padding(kind, query_len, window):
    pad = padding(kind)
    expected = allowed_by_hand(pad, query_len, window)
    mask = causal_mask(pad, query_len, torch.float32, key_len=S, window=window)
    if mask is None:  # causality alone: SDPA's is_causal (T == S) or nothing (T == 1)
        assert kind == "none" and window is None and query_len in (1, S)
        mask = attention_mask_of_is_causal(query_len)
    assert mask.dtype == torch.float32 and mask.shape[-2:] == (query_len, S)
    assert torch.equal(mask.expand(B, 1, query_len, S) == 0, expected)
    assert torch.isneginf(mask[~(mask == 0)]).all()


def attention_mask_of_is_causal(query_len: int) -> torch.Tensor:
    return torch.zeros(query_len, S).masked_fill(~torch.ones(query_len, S, dtype=torch.bool).tril(S - query_len),
                                                 float("-inf"))


@pytest.mark.parametrize("kind", ["none", "left", "right"])
@pytest.mark.parametrize("query_len", [S, 4, 1])
@pytest.mark.parametrize("explicit", [False, True], ids=["sdpa", "explicit"])
@pytest.mark.parametrize(("built", "window"), [("causal_mask", None), ("causal_mask", 3), ("is_causal", None)])
def test_outputs_match_float64_softmax(kind, query_len, explicit, built, window):
    """``causal_mask`` once per forward, or a padding mask with ``is_causal=True`` (combined per call)."""
    pad = padding(kind)
    q, k, v = qkv(query_len)
    if built == "causal_mask":
        mask = causal_mask(pad, query_len, q.dtype, key_len=S, window=window)
        out, weights = attention(q, k, v, mask, is_causal=mask is None, output_attentions=explicit)
    else:  # the padding mask (B, 1, 1, S) combined with causality inside attention()
        out, weights = attention(q, k, v, padding_mask(pad, q.dtype), is_causal=True, output_attentions=explicit)
    allowed = allowed_by_hand(pad, query_len, window)
    seen = allowed.any(-1, keepdim=True).expand(B, HEADS, query_len, 1)  # queries that see some key
    torch.testing.assert_close(out.double()[seen.expand_as(out)], naive(q, k, v, allowed)[seen.expand_as(out)],
                               atol=1e-6, rtol=1e-6)
    assert not out.isnan().any()
    if explicit:
        assert weights.shape == (B, HEADS, query_len, S)
        assert (weights[(seen & ~allowed).expand_as(weights)] == 0).all()  # masked keys get no weight


def test_rows_that_see_no_key_follow_the_reference():
    """Left padding: a padding query sees no key. The reference's SDPA path gives it zeros, its eager path
    (attention weights returned) spreads it evenly over every key; headway's two paths do the same."""
    from transformers import masking_utils
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.models.llama.modeling_llama import eager_attention_forward

    pad = padding("left")
    q, k, v = qkv(S)
    module = types.SimpleNamespace(is_causal=True, training=False, num_key_value_groups=1)
    common = {"batch_size": B, "q_length": S, "kv_length": S, "attention_mask": pad.bool()}
    ref_sdpa, _ = sdpa_attention_forward(module, q, k, v, masking_utils.sdpa_mask(**common, allow_is_causal_skip=False),
                                         scaling=D ** -0.5)
    ref_eager, ref_weights = eager_attention_forward(module, q, k, v, masking_utils.eager_mask(**common),
                                                     scaling=D ** -0.5)
    mask = causal_mask(pad, S, q.dtype)
    out, _ = attention(q, k, v, mask)
    out_explicit, weights = attention(q, k, v, mask, output_attentions=True)
    torch.testing.assert_close(out.transpose(1, 2), ref_sdpa, atol=1e-6, rtol=1e-6)  # (B, T, heads, D)
    torch.testing.assert_close(out_explicit.transpose(1, 2), ref_eager, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-6)
    assert out[2, :, :5].abs().max() == 0  # the five padding queries of row 2
    torch.testing.assert_close(weights[2, :, :5], torch.full((HEADS, 5, S), 1 / S))


@pytest.mark.parametrize("window", [None, 4])
@pytest.mark.parametrize("query_len", [S, 1])
def test_causal_mask_equals_the_reference_builder(window, query_len):
    from transformers import masking_utils
    pad = padding("left")
    function = (masking_utils.causal_mask_function if window is None
                else masking_utils.sliding_window_causal_mask_function(window))
    expected = masking_utils.sdpa_mask(batch_size=B, q_length=query_len, kv_length=S, q_offset=S - query_len,
                                       mask_function=function, attention_mask=pad.bool(), allow_is_causal_skip=False)
    mask = causal_mask(pad, query_len, torch.float32, window=window)
    assert torch.equal(mask == 0, expected)


def test_fully_padded_encoder_row_gets_zeros_through_sdpa():
    """A sequence that is all padding: zeros, as the reference's SDPA path gives, not NaN."""
    pad = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0]])
    torch.manual_seed(0)
    q = k = v = torch.randn(2, 1, 4, 8)
    out, _ = attention(q, k, v, padding_mask(pad, torch.float32))
    assert out[1].abs().max() == 0 and not out.isnan().any()
    out, weights = attention(q, k, v, padding_mask(pad, torch.float32), output_attentions=True)
    torch.testing.assert_close(weights[1], torch.full((1, 4, 4), 0.25))


def test_boolean_masks_are_accepted():
    pad = padding("right")
    q, k, v = qkv(S)
    allowed = allowed_by_hand(pad, S)
    for explicit in (False, True):
        out, _ = attention(q, k, v, pad.bool()[:, None, None, :], is_causal=True, output_attentions=explicit)
        torch.testing.assert_close(out.double(), naive(q, k, v, allowed), atol=1e-6, rtol=1e-6)


def test_gradients_through_masked_rows_are_finite():
    pad = padding("left")
    q, k, v = (t.requires_grad_() for t in qkv(S))
    out, _ = attention(q, k, v, causal_mask(pad, S, torch.float32))
    out.sum().backward()
    assert all(t.grad.isfinite().all() for t in (q, k, v))


def test_causal_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="attention_mask"):
        causal_mask(torch.ones(2, 3, 4), 3, torch.float32)
    with pytest.raises(ValueError, match="key_len"):
        causal_mask(torch.ones(2, 5), 3, torch.float32, key_len=4)
    with pytest.raises(ValueError, match="query_len"):
        causal_mask(None, 6, torch.float32, key_len=4)
    with pytest.raises(ValueError, match="window"):
        causal_mask(None, 4, torch.float32, window=0)
