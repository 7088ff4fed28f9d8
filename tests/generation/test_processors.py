"""Logits processors against the reference's on random scores (batch > 1, -inf entries), and the builder's
processors against the reference's ``_get_logits_processor``: same classes, same order, same effect."""

from __future__ import annotations

import pytest
import torch
import transformers.generation.logits_process as ref

from headway.generation import processors as hw
from headway.generation.config import GenerationConfig

B, T, V = 4, 12, 40


def _inputs(seed: int = 0, repetitive: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    high = 5 if repetitive else V  # few distinct ids: n-grams repeat
    input_ids = torch.randint(0, high, (B, T), generator=gen)
    scores = torch.randn(B, V, generator=gen) * 3
    scores[0, :5] = -float("inf")  # already-filtered entries
    scores[1, 7] = -float("inf")
    return input_ids, scores


def _same(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    finite = torch.isfinite(theirs)
    assert torch.equal(finite, torch.isfinite(ours))
    assert torch.equal(ours[~finite], theirs[~finite])  # same infinities (and signs)
    torch.testing.assert_close(ours[finite], theirs[finite], atol=1e-6, rtol=0)


CASES = [
    ("TemperatureLogitsWarper", (0.7,), {}),
    ("TemperatureLogitsWarper", (1.9,), {}),
    ("TopKLogitsWarper", (5,), {}),
    ("TopKLogitsWarper", (3,), {"min_tokens_to_keep": 6}),
    ("TopKLogitsWarper", (100,), {}),
    ("TopPLogitsWarper", (0.9,), {}),
    ("TopPLogitsWarper", (0.3,), {"min_tokens_to_keep": 3}),
    ("TopPLogitsWarper", (0.5,), {"filter_value": -1000.0}),
    ("MinPLogitsWarper", (0.1,), {}),
    ("MinPLogitsWarper", (0.5,), {"min_tokens_to_keep": 4}),
    ("TypicalLogitsWarper", (0.9,), {}),
    ("TypicalLogitsWarper", (0.2,), {"min_tokens_to_keep": 2}),
    ("RepetitionPenaltyLogitsProcessor", (1.3,), {}),
    ("RepetitionPenaltyLogitsProcessor", (0.7,), {}),
    ("RepetitionPenaltyLogitsProcessor", (1.5,), {"prompt_ignore_length": 4}),
    ("RepetitionPenaltyLogitsProcessor", (1.5,), {"prompt_ignore_length": torch.tensor([0, 3, 5, 11])}),
    ("NoRepeatNGramLogitsProcessor", (1,), {}),
    ("NoRepeatNGramLogitsProcessor", (2,), {}),
    ("NoRepeatNGramLogitsProcessor", (3,), {}),
    ("NoRepeatNGramLogitsProcessor", (T,), {}),
    ("NoRepeatNGramLogitsProcessor", (T + 1,), {}),
    ("NoBadWordsLogitsProcessor", ([[3], [1, 2], [4, 4, 2], [9], [0, 1, 3]],), {"eos_token_id": 9}),
    ("NoBadWordsLogitsProcessor", ([[2, 3], [1, 2, 3], [4, 1]],), {"eos_token_id": [0, 9]}),
    ("SuppressTokensLogitsProcessor", ([1, 5, 39],), {}),
    ("SuppressTokensAtBeginLogitsProcessor", ([2, 6],), {"begin_index": T}),
    ("SuppressTokensAtBeginLogitsProcessor", ([2, 6],), {"begin_index": T - 1}),
    ("MinLengthLogitsProcessor", (T + 1, 3), {}),
    ("MinLengthLogitsProcessor", (T, [3, 8]), {}),
    ("MinNewTokensLengthLogitsProcessor", (T - 2, 3, [3, 8]), {}),
    ("MinNewTokensLengthLogitsProcessor", (T - 2, 2, 3), {}),
    ("ForcedEOSTokenLogitsProcessor", (T + 1, [3, 8]), {}),
    ("ForcedEOSTokenLogitsProcessor", (T + 2, 3), {}),
    ("EpsilonLogitsWarper", (0.02,), {}),
    ("EpsilonLogitsWarper", (0.3,), {"min_tokens_to_keep": 3}),
    ("EtaLogitsWarper", (0.02,), {}),
    ("EtaLogitsWarper", (0.5,), {"min_tokens_to_keep": 2}),
    ("ExponentialDecayLengthPenalty", ((2, 1.5), [3, 8], T - 6), {}),
    ("ExponentialDecayLengthPenalty", ((2, 1.5), 0, T - 2), {}),
    ("InfNanRemoveLogitsProcessor", (), {}),
    ("LogitNormalization", (), {}),
]


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("repetitive", [False, True])
def test_processor_matches_reference(name, args, kwargs, repetitive):
    input_ids, scores = _inputs(seed=len(args) + 3, repetitive=repetitive)
    if name == "InfNanRemoveLogitsProcessor":
        scores[2, 3] = float("nan")
        scores[3, 0] = float("inf")
    theirs = getattr(ref, name)(*args, **kwargs)(input_ids, scores.clone())
    ours = getattr(hw, name)(*args, **kwargs)(input_ids, scores.clone())
    _same(ours, theirs)


def test_forced_bos_at_the_first_step():
    input_ids, scores = _inputs()
    first = input_ids[:, :1]
    _same(
        hw.ForcedBOSTokenLogitsProcessor(4)(first, scores),
        ref.ForcedBOSTokenLogitsProcessor(4)(first, scores),
    )
    _same(
        hw.ForcedBOSTokenLogitsProcessor(4)(input_ids, scores),
        ref.ForcedBOSTokenLogitsProcessor(4)(input_ids, scores),
    )


def test_warpers_agree_on_many_random_rows():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(64, 200, generator=gen) * torch.rand(64, 1, generator=gen) * 6
    ids = torch.randint(0, 200, (64, 30), generator=gen)
    for name, args in [
        ("TopPLogitsWarper", (0.8,)),
        ("TypicalLogitsWarper", (0.6,)),
        ("MinPLogitsWarper", (0.05,)),
        ("TopKLogitsWarper", (17,)),
    ]:
        _same(getattr(hw, name)(*args)(ids, scores), getattr(ref, name)(*args)(ids, scores))


@pytest.mark.parametrize(
    "name,args,message",
    [
        ("TemperatureLogitsWarper", (0.0,), "do_sample=False"),
        ("TemperatureLogitsWarper", (-1.0,), "positive"),
        ("TopKLogitsWarper", (0,), "top_k"),
        ("TopPLogitsWarper", (1.5,), "top_p"),
        ("MinPLogitsWarper", (-0.1,), "min_p"),
        ("TypicalLogitsWarper", (1.0,), "typical_p"),
        ("RepetitionPenaltyLogitsProcessor", (0.0,), "penalty"),
        ("NoRepeatNGramLogitsProcessor", (0,), "ngram_size"),
        ("NoBadWordsLogitsProcessor", ([],), "bad_words_ids"),
        ("NoBadWordsLogitsProcessor", ([[1, -2]],), "bad_words_ids"),
        ("MinLengthLogitsProcessor", (-1, 2), "min_length"),
    ],
)
def test_bad_arguments_raise(name, args, message):
    with pytest.raises(ValueError, match=message):
        getattr(hw, name)(*args)


def test_list_passes_keywords_only_to_processors_that_take_them():
    class Shift(hw.LogitsProcessor):
        def __call__(self, input_ids, scores, shift=0.0):
            return scores + shift

    input_ids, scores = _inputs()
    out = hw.LogitsProcessorList([hw.TemperatureLogitsWarper(2.0), Shift()])(input_ids, scores, shift=1.0)
    _same(out, scores / 2 + 1)


# -- the builder -----------------------------------------------------------------------------------------
class _Model:
    """Just what the reference's ``_get_logits_processor`` reads from ``self``."""

    class config:
        is_encoder_decoder = False

    def _merge_criteria_processor_list(self, default, custom):
        from transformers.generation.utils import GenerationMixin

        return GenerationMixin._merge_criteria_processor_list(self, default, custom)


def _reference_processors(settings: dict, prompt_len: int, custom=None, attention_mask=None):
    import transformers
    from transformers.generation.utils import GenerationMixin

    config = transformers.GenerationConfig(**settings)
    config.update(**config._get_default_generation_params(), defaults_only=True)
    eos = settings.get("eos_token_id")
    config._eos_token_tensor = None if eos is None else torch.tensor(eos).reshape(-1)
    model_kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
    return GenerationMixin._get_logits_processor(
        _Model(), config, prompt_len, logits_processor=custom, device="cpu", model_kwargs=model_kwargs
    )


BUILDER_CASES = {
    "greedy": {"eos_token_id": 3},
    "greedy-penalties": {
        "eos_token_id": [3, 8],
        "repetition_penalty": 1.2,
        "no_repeat_ngram_size": 2,
        "bad_words_ids": [[5], [1, 2], [3]],
        "min_length": 15,
        "min_new_tokens": 2,
        "suppress_tokens": [7],
        "begin_suppress_tokens": [9],
        "remove_invalid_values": True,
        "forced_eos_token_id": 3,
    },
    "sampling-all-warpers": {
        "do_sample": True,
        "eos_token_id": 3,
        "temperature": 0.7,
        "top_k": 10,
        "top_p": 0.9,
        "min_p": 0.05,
        "typical_p": 0.95,
        "repetition_penalty": 1.1,
        "renormalize_logits": True,
    },
    "sampling-epsilon-eta-decay": {
        "do_sample": True,
        "eos_token_id": [0, 3],
        "epsilon_cutoff": 0.01,
        "eta_cutoff": 0.05,
        "exponential_decay_length_penalty": (1, 1.2),
    },
    "sampling-defaults": {"do_sample": True, "eos_token_id": 3},
    "sampling-top-k-off": {"do_sample": True, "top_k": 0, "top_p": 0.8},
    "beam-sampling": {"do_sample": True, "num_beams": 3, "eos_token_id": [3, 8], "top_k": 2, "top_p": 0.5},
    "beams": {
        "num_beams": 4,
        "length_penalty": 0.5,
        "no_repeat_ngram_size": 3,
        "early_stopping": True,
        "eos_token_id": 3,
        "num_return_sequences": 2,
        "renormalize_logits": True,
    },
    "forced-bos-one-token-prompt": {
        "forced_bos_token_id": 4,
        "begin_suppress_tokens": [2],
        "eos_token_id": 3,
    },
}


@pytest.mark.parametrize("name", list(BUILDER_CASES))
def test_builder_matches_reference_order_and_effect(name):
    settings = BUILDER_CASES[name]
    prompt_len = 1 if name == "forced-bos-one-token-prompt" else T - 2
    mask = torch.ones(B, T - 2, dtype=torch.long)
    mask[1, :2] = 0  # left padding in one row
    theirs = _reference_processors(settings, prompt_len, attention_mask=mask)
    ours = hw.build_logits_processors(GenerationConfig(**settings), prompt_len, attention_mask=mask)
    assert [type(p).__name__ for p in ours] == [type(p).__name__ for p in theirs]
    for seed in range(3):
        input_ids, scores = _inputs(seed, repetitive=True)
        for length in (1, prompt_len, T):
            ids = input_ids[:, :length]
            _same(ours(ids, scores.clone()), theirs(ids, scores.clone()))


def test_builder_merges_the_callers_list_as_the_reference():
    settings = {"do_sample": True, "temperature": 0.5, "repetition_penalty": 1.3, "eos_token_id": 3}

    class Double(hw.LogitsProcessor):
        def __call__(self, input_ids, scores):
            return scores * 2

    class RefDouble(ref.LogitsProcessor):
        def __call__(self, input_ids, scores):
            return scores * 2

    ours = hw.build_logits_processors(
        GenerationConfig(**settings), 5, logits_processor=[hw.RepetitionPenaltyLogitsProcessor(2.0), Double()]
    )
    theirs = _reference_processors(
        settings, 5, custom=[ref.RepetitionPenaltyLogitsProcessor(2.0), RefDouble()]
    )
    names = [type(p).__name__ for p in ours]
    assert names == [
        "RepetitionPenaltyLogitsProcessor",
        "Double",
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
    ]
    assert names == [type(p).__name__.removeprefix("Ref") for p in theirs]
    assert ours[0].penalty == 2.0  # the caller's replaces the built one
    input_ids, scores = _inputs(repetitive=True)
    _same(ours(input_ids, scores.clone()), theirs(input_ids, scores.clone()))


def test_builder_reads_the_prepared_eos_tensor():
    config = GenerationConfig(min_length=30, eos_token_id=1)
    config._eos_token_tensor = torch.tensor([6, 7])
    (processor,) = hw.build_logits_processors(config, 4)
    assert processor.eos_token_id.tolist() == [6, 7]


def test_processors_write_in_place_only_when_generate_owns_the_scores():
    """Called directly, the built-in processors leave ``scores`` untouched; inside a list called with
    ``in_place=True`` they write -inf into it, unless a processor of the user's is in the list."""
    from headway.generation.processors import (
        LogitsProcessorList,
        MinLengthLogitsProcessor,
        NoRepeatNGramLogitsProcessor,
    )

    ids = torch.tensor([[5, 6, 5]])
    scores = torch.zeros(1, 10)
    processors = LogitsProcessorList(
        [MinLengthLogitsProcessor(8, eos_token_id=2), NoRepeatNGramLogitsProcessor(2)]
    )
    out = processors(ids, scores)
    assert out is not scores and not torch.isinf(scores).any()
    assert torch.isinf(out[0, 2]) and torch.isinf(out[0, 6])
    owned = torch.zeros(1, 10)
    out = processors(ids, owned, in_place=True)
    assert out is owned and torch.isinf(owned[0, 2]) and torch.isinf(owned[0, 6])

    class Keep:  # a user's processor that keeps what it is given
        def __call__(self, input_ids, scores):
            self.seen = scores
            return scores

    keep = Keep()
    mixed = LogitsProcessorList([keep, MinLengthLogitsProcessor(8, eos_token_id=2)])
    given = torch.zeros(1, 10)
    mixed(ids, given, in_place=True)
    assert not torch.isinf(keep.seen).any()
