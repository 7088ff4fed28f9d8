"""fill-mask: top_k, targets and several masks per text equal the reference's."""

from __future__ import annotations

import logging

import pytest
import transformers

import headway
from tests.pipelines.common import assert_same

CALLS = [
    (("Paris is the [MASK] of France.",), {}),
    (("Paris is the [MASK] of France.",), {"top_k": 2}),
    ((["The [MASK] sat on the mat.", "I drank a cup of [MASK]."],), {"top_k": 3}),
    ((["Only one [MASK] here."],), {}),  # a list of one gives that text's result (reference quirk)
    (("The [MASK] of [MASK] is big.",), {"top_k": 3}),  # several masks: one list per mask
    (("Paris is the [MASK] of France.",), {"targets": ["capital", "city", "center"]}),
    (("Paris is the [MASK] of France.",), {"targets": "capital"}),
    ((["He plays the [MASK].", "She [MASK] home."],), {"targets": ["guitar", "piano", "went"], "top_k": 2}),
]


@pytest.fixture(scope="module")
def pipes(tiny, minilm_heads):
    out = {}
    for name, folder in (("tiny", tiny["mlm"]), ("minilm", minilm_heads["mlm"])):
        out[name] = (
            headway.pipeline("fill-mask", model=str(folder), device="cpu"),
            transformers.pipeline("fill-mask", model=str(folder), device=-1),
        )
    return out


@pytest.mark.parametrize("checkpoint", ["tiny", "minilm"])
@pytest.mark.parametrize(("args", "kwargs"), CALLS, ids=[f"call{i}" for i in range(len(CALLS))])
def test_matches_reference(pipes, checkpoint, args, kwargs):
    ours, ref = pipes[checkpoint]
    assert_same(ours(*args, **kwargs), ref(*args, **kwargs))


def test_target_outside_vocabulary_uses_its_first_token(pipes, caplog):
    ours, ref = pipes["tiny"]
    with caplog.at_level(logging.WARNING):
        result = ours("Paris is the [MASK] of France.", targets=["capital", "zzqxj"])
    assert "not one token of the vocabulary" in caplog.text
    assert_same(result, ref("Paris is the [MASK] of France.", targets=["capital", "zzqxj"]))


def test_batched_equals_reference(pipes):
    ours, ref = pipes["minilm"]
    texts = ["The [MASK] sat on the mat.", "A [MASK] day.", "We [MASK] to the sea every summer with friends."] * 2
    assert_same(ours(texts, batch_size=4, top_k=2), ref(texts, batch_size=4, top_k=2))


def test_pipeline_level_defaults(tiny):
    folder = str(tiny["mlm"])
    ours = headway.pipeline("fill-mask", model=folder, top_k=2, device="cpu")
    ref = transformers.pipeline("fill-mask", model=folder, top_k=2, device=-1)
    assert_same(ours("A [MASK] day."), ref("A [MASK] day."))


def test_mask_cut_off_by_truncation(pipes):
    ours, _ = pipes["tiny"]
    with pytest.raises(ValueError, match="mask token '\\[MASK\\]' was cut off by truncation"):
        ours("word " * 100 + "[MASK].")


def test_bad_parameters(pipes):
    ours, _ = pipes["tiny"]
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        ours("A [MASK] day.", top_k=0)
    with pytest.raises(TypeError, match="targets must be a str or a list of str"):
        ours("A [MASK] day.", targets=[3])
