"""Model forwards check their inputs (issue #11, item 3): each bad input is a ValueError or TypeError naming
the argument and what was expected, in every family; good inputs in every accepted form still run."""

from __future__ import annotations

import pytest
import torch

from headway import AutoConfig, AutoModel

B, T = 2, 5
TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "vocab_size": 100,
    "max_position_embeddings": 32,
}
CONFIGS = {
    "bert": TINY,
    "roberta": TINY,
    "distilbert": {
        "dim": 16,
        "n_layers": 1,
        "n_heads": 2,
        "hidden_dim": 32,
        "vocab_size": 100,
        "max_position_embeddings": 32,
    },
    "deberta-v2": {
        **TINY,
        "type_vocab_size": 2,
        "position_biased_input": True,
        "relative_attention": True,
        "pos_att_type": ["c2p", "p2c"],
        "max_relative_positions": 16,
    },
    "mpnet": TINY,
    "modernbert": {**TINY, "global_attn_every_n_layers": 1, "local_attention": 8},
    "gpt2": {"n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 100, "n_positions": 32},
    "llama": {**TINY, "num_key_value_heads": 1},
    "mistral": {**TINY, "num_key_value_heads": 1},
    "qwen2": {**TINY, "num_key_value_heads": 1},
    "qwen3": {**TINY, "num_key_value_heads": 1, "head_dim": 8},
}
TOKEN_TYPES = {"bert", "roberta", "deberta-v2"}  # families with a token-type table
POSITION_TABLES = {"bert", "roberta", "distilbert", "deberta-v2", "mpnet", "gpt2"}
ROTARY = {"modernbert", "llama", "mistral", "qwen2", "qwen3"}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def model(request):
    torch.manual_seed(0)
    config = AutoConfig.for_model(request.param, pad_token_id=0, **CONFIGS[request.param])
    return AutoModel.from_config(config).eval()


def family(model) -> str:
    return model.config.model_type


def ids(batch: int = B, seq_len: int = T) -> torch.Tensor:
    return torch.randint(3, 100, (batch, seq_len), generator=torch.Generator().manual_seed(0))


def run(model, **inputs):
    with torch.no_grad():
        return model(**inputs).last_hidden_state


def test_good_inputs_in_every_accepted_form(model):
    x = ids()
    expected = run(model, input_ids=x)
    assert expected.shape == (B, T, model.config.hidden_size) and not expected.isnan().any()
    torch.testing.assert_close(run(model, input_ids=x.int()), expected)
    for mask in (torch.ones(B, T, dtype=torch.long), torch.ones(B, T, dtype=torch.bool), torch.ones(B, T)):
        torch.testing.assert_close(run(model, input_ids=x, attention_mask=mask), expected)
    if family(model) in TOKEN_TYPES:
        for types in (
            torch.zeros(B, T, dtype=torch.long),
            torch.zeros(1, T, dtype=torch.long),
            torch.zeros(T, dtype=torch.long),
        ):
            torch.testing.assert_close(run(model, input_ids=x, token_type_ids=types), expected)


@pytest.mark.parametrize(
    ("inputs", "error", "message"),
    [
        (
            {"input_ids": torch.tensor(7)},
            ValueError,
            r"input_ids must have shape \(.*batch, seq_len\), got \(\)",
        ),
        (
            {"input_ids": torch.zeros(B, 0, dtype=torch.long)},
            ValueError,
            r"input_ids is empty \(shape \(2, 0\)\)",
        ),
        (
            {"input_ids": torch.zeros(0, T, dtype=torch.long)},
            ValueError,
            r"input_ids is empty \(shape \(0, 5\)\)",
        ),
        (
            {"input_ids": ids().float()},
            TypeError,
            r"input_ids must hold integer token ids .* got torch.float32",
        ),
        ({"input_ids": ids() > 50}, TypeError, r"input_ids must hold integer token ids .* got torch.bool"),
        ({"input_ids": ids().tolist()}, TypeError, r"input_ids must be a torch.Tensor, got list"),
        (
            {"input_ids": ids() + 100},
            ValueError,
            r"input_ids contain token ids \[.*\] outside the vocabulary \[0, 100\)",
        ),
        (
            {"input_ids": ids(), "attention_mask": torch.ones(B, T - 1)},
            ValueError,
            r"attention_mask must have shape .*\(2, 5\).* got \(2, 4\)",
        ),
        (
            {"input_ids": ids(), "attention_mask": torch.tensor([[1, 1, 1, 0, 0]])},
            ValueError,
            r"attention_mask must have shape .*\(2, 5\).* got \(1, 5\)",
        ),
        (
            {"input_ids": ids(), "attention_mask": [[1] * T] * B},
            TypeError,
            r"attention_mask must be a torch.Tensor",
        ),
        (
            {"inputs_embeds": torch.randn(B, T, 8)},
            ValueError,
            r"inputs_embeds must end with the model's hidden size",
        ),
        ({}, ValueError, "exactly one of input_ids or inputs_embeds"),
    ],
)
def test_bad_inputs_name_the_argument(model, inputs, error, message):
    if "inputs_embeds" in inputs and family(model) == "deberta-v2":
        inputs = {"inputs_embeds": torch.randn(B, T, model.config.embedding_size + 1)}
    with pytest.raises(error, match=message):
        run(model, **inputs)


def test_one_dimensional_ids(model):
    """A 1-D sequence: a clear error naming the fix, except GPT-2, which (as the reference) reads it as one row."""
    if family(model) == "gpt2":
        assert run(model, input_ids=ids()[0]).shape == (T, 16)
        return
    with pytest.raises(
        ValueError, match=r"input_ids must have shape \(batch, seq_len\), got \(5,\); .*input_ids\[None\]"
    ):
        run(model, input_ids=ids()[0])


def test_token_type_ids_out_of_range_and_misshapen(model):
    if family(model) not in TOKEN_TYPES:
        pytest.skip("no token-type table")
    with pytest.raises(ValueError, match=r"token_type_ids contain values \[5\] outside \[0, 2\)"):
        run(model, input_ids=ids(), token_type_ids=torch.full((B, T), 5))
    with pytest.raises(ValueError, match=r"token_type_ids contain values \[-1\] outside \[0, 2\)"):
        run(model, input_ids=ids(), token_type_ids=torch.full((B, T), -1))
    with pytest.raises(
        ValueError, match=r"token_type_ids must have the inputs' shape \(2, 5\).*got \(2, 4\)"
    ):
        run(model, input_ids=ids(), token_type_ids=torch.zeros(B, T - 1, dtype=torch.long))
    with pytest.raises(TypeError, match=r"token_type_ids must hold integer segment ids"):
        run(model, input_ids=ids(), token_type_ids=torch.zeros(B, T))


def test_position_ids(model):
    name = family(model)
    with pytest.raises(ValueError, match=r"position_ids must have the inputs' shape \(2, 5\).*got \(1, 4\)"):
        run(model, input_ids=ids(), position_ids=torch.arange(T - 1)[None])
    if name in POSITION_TABLES:
        with pytest.raises(ValueError, match=r"position_ids contain values \[40\] outside \[0, 32\)"):
            run(model, input_ids=ids(), position_ids=torch.full((B, T), 40))
        with pytest.raises(TypeError, match="position_ids must hold integer positions"):
            run(model, input_ids=ids(), position_ids=torch.arange(T)[None].float())
    if name in ROTARY:  # rotation has no table: any position, float ones too, as the reference takes them
        far = run(model, input_ids=ids(), position_ids=torch.arange(40, 40 + T)[None])
        assert not far.isnan().any()
        run(model, input_ids=ids(), position_ids=torch.arange(T)[None].float())


def test_gpt2_token_types_are_token_ids():
    config = AutoConfig.for_model("gpt2", **CONFIGS["gpt2"])
    model = AutoModel.from_config(config).eval()
    run(model, input_ids=ids(), token_type_ids=torch.full((B, T), 99))  # embedded by wte, as the reference
    with pytest.raises(ValueError, match=r"token_type_ids contain values \[100\] outside \[0, 100\).*wte"):
        run(model, input_ids=ids(), token_type_ids=torch.full((B, T), 100))


def test_decoder_mask_covers_cached_and_new_positions():
    config = AutoConfig.for_model("llama", **CONFIGS["llama"])
    model = AutoModel.from_config(config).eval()
    with torch.no_grad():
        past = model(input_ids=ids(), use_cache=True).past_key_values
        step = model(input_ids=ids(B, 1), attention_mask=torch.ones(B, T + 1), past_key_values=past)
        assert step.last_hidden_state.shape == (B, 1, 16)
        with pytest.raises(
            ValueError, match=r"attention_mask must have shape \(batch, cached \+ new positions = 7\)"
        ):
            model(input_ids=ids(B, 1), attention_mask=torch.ones(B, 1), past_key_values=past)
