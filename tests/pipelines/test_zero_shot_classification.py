"""zero-shot-classification: single and multi-label scores equal the reference's; entailment lookup."""

from __future__ import annotations

import logging

import pytest
import transformers

import headway
from tests.pipelines.common import assert_same

TEXT = "The home team scored twice in the last ten minutes and won the cup."
LABELS = ["sport", "politics", "cooking", "science"]
CALLS = [
    ((TEXT,), {"candidate_labels": LABELS}),
    ((TEXT, LABELS), {}),  # labels as the second positional argument
    ((TEXT,), {"candidate_labels": "sport, politics,cooking"}),  # a comma-separated string
    ((TEXT,), {"candidate_labels": LABELS, "multi_label": True}),
    ((TEXT,), {"candidate_labels": ["sport"]}),  # one label: entailment against contradiction
    (([TEXT, "Parliament voted on the budget."],), {"candidate_labels": LABELS, "multi_label": False}),
    (([TEXT, "Parliament voted on the budget."],), {"candidate_labels": LABELS, "multi_label": True}),
    ((TEXT,), {"candidate_labels": LABELS, "hypothesis_template": "This text is about {}."}),
]


@pytest.fixture(scope="module")
def pipes(tiny, minilm_heads):
    out = {}
    for name, folder in (("tiny", tiny["nli"]), ("minilm", minilm_heads["nli"])):
        out[name] = (
            headway.pipeline("zero-shot-classification", model=str(folder), device="cpu"),
            transformers.pipeline("zero-shot-classification", model=str(folder), device=-1),
        )
    return out


@pytest.mark.parametrize("checkpoint", ["tiny", "minilm"])
@pytest.mark.parametrize(("args", "kwargs"), CALLS, ids=[f"call{i}" for i in range(len(CALLS))])
def test_matches_reference(pipes, checkpoint, args, kwargs):
    ours, ref = pipes[checkpoint]
    assert_same(ours(*args, **kwargs), ref(*args, **kwargs))


def test_long_text_is_truncated_with_a_warning(pipes, caplog):
    ours, ref = pipes["tiny"]
    with caplog.at_level(logging.WARNING):
        result = ours(["short", "word " * 100], candidate_labels=LABELS)
    assert caplog.text.count("truncated") == 1 and "input [1] is longer than 64 tokens" in caplog.text
    assert_same(result, ref(["short", "word " * 100], candidate_labels=LABELS))


def test_scores(pipes):
    ours, _ = pipes["minilm"]
    single = ours(TEXT, candidate_labels=LABELS)
    assert sorted(single["labels"]) == sorted(LABELS) and abs(sum(single["scores"]) - 1) < 1e-5
    assert single["scores"] == sorted(single["scores"], reverse=True)
    multi = ours(TEXT, candidate_labels=LABELS, multi_label=True)
    assert all(0 < s < 1 for s in multi["scores"]) and abs(sum(multi["scores"]) - 1) > 1e-3


def test_batched_equals_reference(pipes):
    ours, ref = pipes["minilm"]
    texts = [TEXT, "Parliament voted on the budget.", "Add salt."]
    assert_same(ours(texts, candidate_labels=LABELS, batch_size=5), ref(texts, candidate_labels=LABELS))


def test_entailment_label_found_case_insensitively(tiny, caplog):
    model = headway.AutoModelForSequenceClassification.from_pretrained(str(tiny["nli"]))
    assert headway.pipeline("zero-shot-classification", model=model).entailment_id == 2
    model.config.label2id = {"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILS": 2}
    assert headway.pipeline("zero-shot-classification", model=model).entailment_id == 2
    model.config.label2id = {"no": 0, "maybe": 1, "yes": 2}
    with caplog.at_level(logging.WARNING):
        pipe = headway.pipeline("zero-shot-classification", model=model)
    assert pipe.entailment_id == -1 and "Failed to determine 'entailment' label id" in caplog.text


def test_bad_parameters(pipes):
    ours, _ = pipes["tiny"]
    with pytest.raises(ValueError, match="needs candidate_labels"):
        ours(TEXT)
    with pytest.raises(ValueError, match="at least one non-empty label"):
        ours(TEXT, candidate_labels=[])
    with pytest.raises(ValueError, match="at least one non-empty label"):
        ours(TEXT, candidate_labels=" , ")
    with pytest.raises(TypeError, match="candidate_labels must be a list of str"):
        ours(TEXT, candidate_labels=[1, 2])
    with pytest.raises(ValueError, match="leaves no room for the text in the 64 tokens"):
        ours(TEXT, candidate_labels=["word " * 70])
    with pytest.raises(ValueError, match="was not able to be formatted"):
        ours(TEXT, candidate_labels=LABELS, hypothesis_template="No placeholder.")
