"""token-classification: every aggregation strategy, ignore_labels and stride equal the reference's."""

from __future__ import annotations

import logging

import pytest
import transformers

import headway
from tests.pipelines.common import assert_same

TEXTS = [
    "My name is Wolfgang Amadeus Schwarzenegger and I live in Berlin, near the Brandenburger Tor.",
    "Unbelievably, the café at 221B Baker Street serves antidisestablishmentarianism pancakes!",
    "Ada Lovelace worked with Charles Babbage in London.",
]
STRATEGIES = ["none", "simple", "first", "average", "max"]
LONG = " ".join(["Wolfgang Schwarzenegger lives in Berlin and works at Siemens in Munich."] * 8)


@pytest.fixture(scope="module")
def pipes(tiny, minilm_heads):
    out = {}
    for name, folder in (("tiny", tiny["tokcls"]), ("minilm", minilm_heads["tokcls"])):
        out[name] = (
            headway.pipeline("ner", model=str(folder), device="cpu"),
            transformers.pipeline("ner", model=str(folder), device=-1),
        )
    return out


@pytest.mark.parametrize("checkpoint", ["tiny", "minilm"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_aggregation_matches_reference(pipes, checkpoint, strategy):
    ours, ref = pipes[checkpoint]
    result = ours(TEXTS, aggregation_strategy=strategy)
    assert_same(result, ref(TEXTS, aggregation_strategy=strategy))
    key = "entity" if strategy == "none" else "entity_group"
    assert any(result), "the random head should tag something"
    for text, entities in zip(TEXTS, result):
        for entity in entities:
            assert set(entity) >= {key, "score", "word", "start", "end"}
            assert ("index" in entity) == (strategy == "none")
            assert text[entity["start"] : entity["end"]]


@pytest.mark.parametrize("checkpoint", ["tiny", "minilm"])
def test_ignore_labels_matches_reference(pipes, checkpoint):
    ours, ref = pipes[checkpoint]
    for ignore in ([], ["O", "MISC", "PER"]):
        assert_same(ours(TEXTS[0], ignore_labels=ignore), ref(TEXTS[0], ignore_labels=ignore))
        assert_same(
            ours(TEXTS[2], aggregation_strategy="simple", ignore_labels=ignore),
            ref(TEXTS[2], aggregation_strategy="simple", ignore_labels=ignore),
        )


@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
def test_stride_matches_reference(pipes, strategy):
    ours, ref = pipes["tiny"]  # 64 positions: LONG (about 130 tokens) needs several windows
    assert len(ours.tokenizer(LONG)["input_ids"]) > 64
    for stride in (8, 24):
        result = ours(LONG, aggregation_strategy=strategy, stride=stride)
        assert_same(result, ref(LONG, aggregation_strategy=strategy, stride=stride))
        assert max(entity["end"] for entity in result) > len(LONG) // 2, "entities from the later windows"


def test_batched_equals_reference(pipes):
    ours, ref = pipes["minilm"]
    texts = TEXTS * 2
    assert_same(ours(texts, batch_size=4, aggregation_strategy="average"), ref(texts, aggregation_strategy="average"))


def test_pipeline_level_defaults(tiny):
    folder = str(tiny["tokcls"])
    ours = headway.pipeline("token-classification", model=folder, aggregation_strategy="first", device="cpu")
    ref = transformers.pipeline("token-classification", model=folder, aggregation_strategy="first", device=-1)
    assert_same(ours(TEXTS[1]), ref(TEXTS[1]))


def test_long_text_without_stride_is_truncated_with_a_warning(pipes, caplog):
    ours, _ = pipes["tiny"]
    with caplog.at_level(logging.WARNING):
        entities = ours(LONG, aggregation_strategy="simple")
    assert "truncated" in caplog.text and "stride" in caplog.text
    whole = ours(LONG, aggregation_strategy="simple", stride=8)
    assert max(entity["end"] for entity in entities) < max(entity["end"] for entity in whole)


def test_bad_parameters(pipes):
    ours, _ = pipes["tiny"]
    with pytest.raises(ValueError, match="aggregation_strategy must be one of"):
        ours(TEXTS[0], aggregation_strategy="mean")
    with pytest.raises(ValueError, match="aggregation_strategy=\"none\""):
        ours(TEXTS[0], aggregation_strategy="none", stride=8)
    with pytest.raises(ValueError, match="aggregation_strategy=\"none\""):
        ours(TEXTS[0], stride=8)
    with pytest.raises(ValueError, match="stride must be an int from 0 to 61"):
        ours(TEXTS[0], aggregation_strategy="simple", stride=64)
    with pytest.raises(TypeError, match="ignore_labels must be a list"):
        ours(TEXTS[0], ignore_labels="O")
