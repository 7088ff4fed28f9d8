"""feature-extraction: hidden states equal the reference's; return_tensors, truncation, batch sizes."""

from __future__ import annotations

import logging

import pytest
import torch
import transformers

import headway
from tests.pipelines.common import assert_same

TEXTS = ["A man is eating food.", "The girl is carrying a baby on her back through the crowded market.", "Hi"]


@pytest.fixture(scope="module")
def pipes(tiny, minilm_path):
    out = {}
    for name, folder in (("tiny", tiny["bare"]), ("minilm", minilm_path)):
        out[name] = (
            headway.pipeline("feature-extraction", model=str(folder), device="cpu"),
            transformers.pipeline("feature-extraction", model=str(folder), device=-1),
        )
    return out


@pytest.mark.parametrize("checkpoint", ["tiny", "minilm"])
def test_matches_reference(pipes, checkpoint):
    ours, ref = pipes[checkpoint]
    assert_same(ours(TEXTS[0]), ref(TEXTS[0]))
    assert_same(ours(TEXTS), ref(TEXTS))


def test_return_tensors_and_tokenize_kwargs(pipes):
    ours, ref = pipes["minilm"]
    tensor = ours(TEXTS[1], return_tensors=True)
    expected = ref(TEXTS[1], return_tensors=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == expected.shape  # (1, tokens, 384)
    torch.testing.assert_close(tensor, expected, atol=1e-4, rtol=0)
    kwargs = {"tokenize_kwargs": {"max_length": 6, "truncation": True}}
    assert_same(ours(TEXTS[1], **kwargs), ref(TEXTS[1], **kwargs))
    assert_same(ours(TEXTS[1], truncation=True), ref(TEXTS[1], truncation=True))


def test_results_do_not_depend_on_batch_size(pipes):
    """Unlike the reference with batch_size > 1, padding positions are never returned."""
    ours, _ = pipes["minilm"]
    one = ours(TEXTS, batch_size=1)
    assert_same(ours(TEXTS, batch_size=3), one, atol=1e-5)
    assert [len(r[0]) for r in one] == [len(ours.tokenizer(t)["input_ids"]) for t in TEXTS]


def test_long_text(pipes, caplog):
    ours, _ = pipes["tiny"]  # 64 positions
    with caplog.at_level(logging.WARNING):
        result = ours("word " * 100)
    assert "truncated" in caplog.text and len(result[0]) == 64
    with pytest.raises(ValueError, match="102 tokens long, more than the 64 this model takes"):
        ours("word " * 100, truncation=False)
    with pytest.raises(ValueError, match="truncation parameter defined twice"):
        ours("x", truncation=True, tokenize_kwargs={"truncation": True})
