"""generate() on an encoder-decoder, against the reference: a tiny random BART built by transformers, saved,
loaded by headway, and generated from with the same settings (and seed): greedy on a padded batch, beam
search (length penalty, n-gram blocking, early stopping True / False / "never", several returned sequences),
sampling and beam sampling, forced bos / eos, min_length, a given decoder prompt or encoder output, the
checkpoint's generation config, and the errors of bad input."""

from __future__ import annotations

import logging

import pytest
import torch
import transformers

from headway.generation.cache import EncoderDecoderCache
from headway.models.bart import BartForConditionalGeneration
from headway.outputs import GenerateBeamEncoderDecoderOutput, GenerateEncoderDecoderOutput

VOCAB, PAD, BOS, EOS, START = 99, 1, 0, 2, 2
TINY = {
    "vocab_size": VOCAB, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
    "decoder_attention_heads": 4, "encoder_ffn_dim": 48, "decoder_ffn_dim": 48, "max_position_embeddings": 64,
    "pad_token_id": PAD, "bos_token_id": BOS, "eos_token_id": EOS, "decoder_start_token_id": START,
    "forced_eos_token_id": None, "init_std": 0.3, "tie_word_embeddings": False,
}  # fmt: skip


def build(folder, **overrides):
    """A reference BART saved to ``folder``; returns (reference, headway) models with the same weights.

    Large random weights give peaked distributions (beams and eos behave as in a trained model); the
    residual branches scaled down and an untied head keep a random post-norm BART from repeating one token.
    """
    torch.manual_seed(0)
    reference = transformers.BartForConditionalGeneration(transformers.BartConfig(**{**TINY, **overrides}))
    with torch.no_grad():
        for name, p in reference.named_parameters():
            if "layer_norm" in name or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
            if "out_proj" in name or "fc2" in name:
                p.mul_(0.1)
    reference.eval().save_pretrained(folder)
    return reference, BartForConditionalGeneration.from_pretrained(folder)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return build(tmp_path_factory.mktemp("bart-generate"))


def padded_batch() -> dict[str, torch.Tensor]:
    """Three inputs of 10, 7 and 4 tokens ending in eos, right-padded (the encoder's usual padding)."""
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(3, VOCAB, (3, 10), generator=g)
    mask = torch.ones_like(ids)
    for row, length in enumerate((10, 7, 4)):
        ids[row, length - 1] = EOS
        mask[row, length:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, PAD), "attention_mask": mask}


def both(pair, seed: int | None = None, **kwargs):
    reference, ours = pair
    if seed is not None:
        torch.manual_seed(seed)
    expected = reference.generate(**kwargs)
    if seed is not None:
        torch.manual_seed(seed)
    return expected, ours.generate(**kwargs)


def assert_same_tokens(expected, got) -> None:
    expected = expected if isinstance(expected, torch.Tensor) else expected.sequences
    got = got if isinstance(got, torch.Tensor) else got.sequences
    assert expected.shape == got.shape, (expected.shape, got.shape)
    assert torch.equal(expected, got), (expected, got)


def free_token(pair, row: int, step: int, **kwargs) -> int:
    """The token the reference emits at ``step`` of ``row`` when nothing ends generation: used as an eos
    that finishes beams and rows at several lengths."""
    reference, _ = pair
    free = reference.generate(**padded_batch(), max_new_tokens=step + 1, eos_token_id=None, **kwargs)
    return int(free[row, 1 + step])


# -- greedy -----------------------------------------------------------------------------------------------
def test_greedy_default_length_counts_the_start_token(pair):
    expected, got = both(pair, **padded_batch())
    assert_same_tokens(expected, got)
    assert got.shape[1] == 21 and (got[:, 0] == START).all()  # as the reference: 20 new after the start
    assert len(set(got[0].tolist())) > 3  # the random model is not degenerate


def test_greedy_eos_stops_rows_and_pads_finished_ones(pair):
    eos = free_token(pair, row=0, step=3)
    expected, got = both(pair, **padded_batch(), max_new_tokens=30, eos_token_id=eos)
    assert_same_tokens(expected, got)
    end = (got[0] == eos).nonzero()[0, 0].item()
    assert end < got.shape[1] - 1 and (got[0, end + 1 :] == PAD).all()


@pytest.mark.parametrize(
    "settings",
    [{"max_new_tokens": 12, "min_new_tokens": 12}, {"max_length": 9, "min_length": 9}, {"use_cache": False},
     {"forced_bos_token_id": BOS, "forced_eos_token_id": EOS, "max_new_tokens": 8}],
    ids=["min_new_tokens", "min_length", "no_cache", "forced_bos_eos"],
)  # fmt: skip
def test_greedy_settings(pair, settings):
    expected, got = both(pair, **padded_batch(), **settings)
    assert_same_tokens(expected, got)
    if "forced_bos_token_id" in settings:
        assert (got[:, 1] == BOS).all() and (got[:, -1] == EOS).all()


def test_min_length_holds_the_eos_back(pair):
    eos = free_token(pair, row=0, step=1)
    expected, got = both(pair, **padded_batch(), eos_token_id=eos, min_length=8, max_new_tokens=12)
    assert_same_tokens(expected, got)
    assert not (got[:, 1:8] == eos).any()


def test_given_decoder_prompt_and_encoder_outputs(pair):
    _, ours = pair
    batch = padded_batch()
    prompt = torch.tensor([[7, 8], [9, 10], [11, 12]])
    assert_same_tokens(*both(pair, **batch, decoder_input_ids=prompt, max_new_tokens=6))  # start put first
    started = torch.cat([torch.full((3, 1), START), prompt], dim=1)
    expected, got = both(pair, **batch, decoder_input_ids=started, max_new_tokens=6)  # already first
    assert_same_tokens(expected, got)
    assert got.shape[1] == 3 + 6
    encoded = ours.get_encoder()(**batch)
    again = ours.generate(encoder_outputs=encoded, attention_mask=batch["attention_mask"], max_new_tokens=6,
                          decoder_input_ids=started)  # fmt: skip
    assert torch.equal(again, got)


def test_return_dict_greedy(pair):
    expected, got = both(pair, **padded_batch(), max_new_tokens=6, return_dict_in_generate=True,
                         output_scores=True, output_logits=True)  # fmt: skip
    assert isinstance(got, GenerateEncoderDecoderOutput)
    assert_same_tokens(expected, got)
    assert len(got.scores) == len(expected.scores) == 6
    for ours, theirs in zip(got.logits, expected.logits, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    assert isinstance(got.past_key_values, EncoderDecoderCache)


# -- beam search ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("length_penalty", [0.6, 2.0])
def test_beam_search_sequences_and_scores(pair, early_stopping, length_penalty):
    eos = free_token(pair, row=0, step=2, num_beams=4)
    expected, got = both(
        pair, **padded_batch(), max_new_tokens=16, num_beams=4, num_return_sequences=2,
        no_repeat_ngram_size=2, length_penalty=length_penalty, early_stopping=early_stopping, eos_token_id=eos,
        output_scores=True, return_dict_in_generate=True,
    )  # fmt: skip
    assert isinstance(got, GenerateBeamEncoderDecoderOutput)
    assert_same_tokens(expected, got)
    torch.testing.assert_close(got.sequences_scores, expected.sequences_scores, atol=1e-5, rtol=0)
    assert torch.equal(got.beam_indices, expected.beam_indices)


def test_beam_search_without_eos_and_without_cache(pair):
    for use_cache in (True, False):
        assert_same_tokens(*both(pair, **padded_batch(), max_new_tokens=10, num_beams=3, use_cache=use_cache))


def test_checkpoint_generation_config_is_used(tmp_path):
    """A summarization-style generation_config.json (beams, n-gram blocking, lengths, forced tokens)."""
    reference, _ = build(tmp_path)
    settings = {"num_beams": 4, "no_repeat_ngram_size": 3, "length_penalty": 2.0, "early_stopping": True,
                "min_length": 6, "max_length": 14, "forced_bos_token_id": BOS, "forced_eos_token_id": EOS}  # fmt: skip
    reference.generation_config.update(**settings)
    reference.save_pretrained(tmp_path)
    pair = (reference, BartForConditionalGeneration.from_pretrained(tmp_path))
    assert pair[1].generation_config.num_beams == 4
    expected, got = both(pair, **padded_batch())
    assert_same_tokens(expected, got)
    assert got.shape[1] <= 14 and (got[:, 1] == BOS).all()
    # max_new_tokens below the checkpoint's min_length: generated anyway, as the reference does
    assert_same_tokens(*both(pair, **padded_batch(), max_new_tokens=3))


# -- sampling ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [{"do_sample": True, "temperature": 0.7, "top_k": 20},
     {"do_sample": True, "num_beams": 3, "top_p": 0.9, "num_return_sequences": 2}],
    ids=["sampling", "beam_sampling"],
)  # fmt: skip
def test_sampling_under_a_seed(pair, settings):
    assert_same_tokens(*both(pair, seed=11, **padded_batch(), max_new_tokens=12, **settings))


# -- bad input --------------------------------------------------------------------------------------------
def test_bad_input_is_named(pair, tmp_path, caplog):
    _, ours = pair
    batch = padded_batch()
    with pytest.raises(ValueError, match=r"input_ids is empty \(shape \(1, 0\)\)"):
        ours.generate(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="generates from the encoder's input"):
        ours.generate(max_new_tokens=3)
    with pytest.raises(ValueError, match="more than the 64 this model's encoder can read"):
        ours.generate(torch.full((1, 65), 5))
    with pytest.raises(
        ValueError, match="Input length of decoder_input_ids is 4, but `max_length` is set to 4"
    ):
        ours.generate(**batch, decoder_input_ids=torch.full((3, 4), START), max_length=4)
    with pytest.raises(ValueError, match="decoder_input_ids has 2 rows, but the encoder's input has 3"):
        ours.generate(**batch, decoder_input_ids=torch.full((2, 1), START))
    with pytest.raises(ValueError, match=r"attention_mask must be a tensor of shape \(3, 10\)"):
        ours.generate(batch["input_ids"], attention_mask=batch["attention_mask"][:, :5])
    with pytest.raises(ValueError, match="not used by the model.*decoder_input_idz"):
        ours.generate(**batch, decoder_input_idz=batch["input_ids"])
    with caplog.at_level(logging.WARNING, logger="headway.generation.generate"):
        out = ours.generate(**batch, min_length=12, max_length=6)
    assert out.shape[1] == 6 and "min_length (12) is larger than max_length (6)" in caplog.text

    _, startless = build(tmp_path, decoder_start_token_id=None, bos_token_id=None)
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        startless.generate(**batch, max_new_tokens=3)
