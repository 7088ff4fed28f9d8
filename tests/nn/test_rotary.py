"""Rotary inverse frequencies and attention factors equal the reference's, for every scaling type."""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from headway.nn.rotary import (
    RotaryEmbedding,
    apply_rotary_pos_emb,
    rope_inv_freq,
    rotate,
    rotate_half,
    rotation_tables,
    standardize_rope_parameters,
)

HEAD_DIM, MAX_POS = 64, 256
SCALINGS = {
    "default": {"rope_type": "default", "rope_theta": 10000.0},
    "linear": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
    "llama3": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    },
    "yarn": {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 4.0,
        "original_max_position_embeddings": 64,
    },
    "yarn_mscale": {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 4.0,
        "original_max_position_embeddings": 64,
        "mscale": 0.707,
        "mscale_all_dim": 1.0,
        "beta_fast": 16,
        "beta_slow": 2,
        "truncate": False,
    },
    "yarn_attention_factor": {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 2.0,
        "attention_factor": 1.5,
        "original_max_position_embeddings": 128,
    },
}


def _reference_config(params: dict) -> transformers.LlamaConfig:
    return transformers.LlamaConfig(
        hidden_size=HEAD_DIM * 4,
        num_attention_heads=4,
        max_position_embeddings=MAX_POS,
        rope_parameters=dict(params),
    )


def _reference(params: dict, seq_len=None) -> tuple[torch.Tensor, float]:
    config = _reference_config(params)
    rope_type = params["rope_type"]
    if rope_type == "default":
        return transformers.models.llama.modeling_llama.LlamaRotaryEmbedding.compute_default_rope_parameters(
            config
        )
    return ROPE_INIT_FUNCTIONS[rope_type](config, None, seq_len=seq_len)


@pytest.mark.parametrize("name", sorted(SCALINGS))
def test_inverse_frequencies_and_attention_factor_equal_the_reference(name):
    params = standardize_rope_parameters(SCALINGS[name], max_position_embeddings=MAX_POS)
    ours, our_factor = rope_inv_freq(params, HEAD_DIM, MAX_POS)
    ref, ref_factor = _reference(SCALINGS[name])
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    assert our_factor == pytest.approx(ref_factor, abs=0)
    if name.startswith("yarn"):
        assert our_factor != 1.0


@pytest.mark.parametrize("seq_len", [MAX_POS // 2, MAX_POS, MAX_POS + 1, 3 * MAX_POS])
def test_dynamic_frequencies_beyond_the_trained_length(seq_len):
    params = SCALINGS["dynamic"]
    ours, _ = rope_inv_freq(params, HEAD_DIM, MAX_POS, seq_len=torch.tensor(seq_len))
    ref, _ = _reference(params, seq_len=torch.tensor(seq_len))
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    default, _ = rope_inv_freq(SCALINGS["default"], HEAD_DIM, MAX_POS)
    assert torch.equal(ours, default) == (seq_len <= MAX_POS)  # stretched only past the trained length


def test_dynamic_module_follows_the_reference_state():
    """Growing past the trained length recomputes; a short sequence afterwards returns to the trained table."""
    config = _reference_config(SCALINGS["dynamic"])
    ref = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(config)
    ours = RotaryEmbedding(
        standardize_rope_parameters(SCALINGS["dynamic"], max_position_embeddings=MAX_POS), HEAD_DIM, MAX_POS
    )
    x = torch.zeros(1)
    for length in (10, MAX_POS + 40, MAX_POS + 20, MAX_POS + 90, 30):
        positions = torch.arange(length)[None]
        ref_cos, ref_sin = ref(x, positions)
        cos, sin = ours(positions, torch.float32)
        torch.testing.assert_close(cos, ref_cos, atol=0, rtol=0)
        torch.testing.assert_close(sin, ref_sin, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["default", "linear", "llama3", "yarn"])
def test_cos_sin_and_rotation_equal_the_reference(name):
    config = _reference_config(SCALINGS[name])
    ref = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(config)
    ours = RotaryEmbedding(
        standardize_rope_parameters(SCALINGS[name], max_position_embeddings=MAX_POS), HEAD_DIM, MAX_POS
    )
    positions = torch.tensor([[0, 1, 2, 3, 7, 100], [5, 6, 7, 8, 9, 255]])
    ref_cos, ref_sin = ref(torch.zeros(1), positions)
    cos, sin = ours(positions, torch.float32)
    torch.testing.assert_close(cos, ref_cos, atol=0, rtol=0)
    torch.testing.assert_close(sin, ref_sin, atol=0, rtol=0)
    q, k = torch.randn(2, 3, 6, HEAD_DIM), torch.randn(2, 1, 6, HEAD_DIM)
    llama = transformers.models.llama.modeling_llama
    for a, b in zip(apply_rotary_pos_emb(q, k, cos, sin), llama.apply_rotary_pos_emb(q, k, ref_cos, ref_sin)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    torch.testing.assert_close(rotate_half(q), llama.rotate_half(q), atol=0, rtol=0)


def test_older_spellings_are_read_like_the_reference():
    params = standardize_rope_parameters(
        None, rope_scaling={"type": "linear", "factor": 2.0}, rope_theta=5e5, max_position_embeddings=MAX_POS
    )
    assert params["rope_type"] == "linear" and params["rope_theta"] == 5e5 and params["factor"] == 2.0
    # rope_scaling wins over rope_parameters, as in the reference
    params = standardize_rope_parameters(
        {"rope_type": "default"},
        rope_scaling={"rope_type": "dynamic", "factor": 2},
        max_position_embeddings=MAX_POS,
    )
    assert params["rope_type"] == "dynamic" and params["rope_theta"] == 10000.0
    llama3 = standardize_rope_parameters(
        {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0},
        max_position_embeddings=MAX_POS,
    )
    assert llama3["original_max_position_embeddings"] == MAX_POS


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="rope_type 'longrope'.*supported"):
        standardize_rope_parameters({"rope_type": "longrope"}, max_position_embeddings=MAX_POS)
    with pytest.raises(ValueError, match=r"must set \['factor'\]"):
        standardize_rope_parameters({"rope_type": "linear"}, max_position_embeddings=MAX_POS)


def test_rotate_with_tables_is_apply_rotary_pos_emb_bit_for_bit() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 6, 5, 16), torch.randn(2, 2, 5, 16)  # (B, heads or kv_heads, T, head_dim)
    cos, sin = RotaryEmbedding({"rope_type": "default", "rope_theta": 10000.0}, 16, 64)(
        torch.arange(3, 8)[None], torch.float32
    )
    tables = rotation_tables(cos, sin)
    for ours, expected in zip((rotate(q, *tables), rotate(k, *tables)), apply_rotary_pos_emb(q, k, cos, sin)):
        assert torch.equal(ours, expected)
