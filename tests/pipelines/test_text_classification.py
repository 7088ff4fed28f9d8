"""text-classification: outputs equal the reference's (transformers 5.23), nesting quirks included."""

from __future__ import annotations

import logging

import pytest
import transformers

import headway
from tests.pipelines.common import assert_same

TEXTS = ["I loved this film, truly wonderful.", "Terrible.", "An average day at the office, nothing more to say."]
PAIR = {"text": "A man is eating food.", "text_pair": "Someone eats a meal."}

# (call args, call kwargs): every nesting the reference has for str / list / pair inputs and top_k.
CALLS = [
    ((TEXTS[0],), {}),
    ((TEXTS,), {}),
    ((TEXTS[0],), {"top_k": 1}),
    ((TEXTS[0],), {"top_k": None}),
    ((TEXTS,), {"top_k": 2}),
    ((TEXTS,), {"top_k": None}),
    ((PAIR,), {}),
    (([PAIR, PAIR],), {}),
    ((PAIR,), {"top_k": None}),
    ((TEXTS[1],), {"function_to_apply": "sigmoid"}),
    ((TEXTS,), {"function_to_apply": "none", "top_k": None}),
    ((TEXTS[2],), {"function_to_apply": "softmax", "top_k": 2}),
]


@pytest.fixture(scope="module")
def pipes(tiny, minilm_heads):
    out = {}
    for name, folder in (("tiny", tiny["seqcls"]), ("minilm", minilm_heads["seqcls"])):
        out[name] = (
            headway.pipeline("text-classification", model=str(folder), device="cpu"),
            transformers.pipeline("text-classification", model=str(folder), device=-1),
        )
    return out


@pytest.mark.parametrize("checkpoint", ["tiny", "minilm"])
@pytest.mark.parametrize(("args", "kwargs"), CALLS, ids=[f"call{i}" for i in range(len(CALLS))])
def test_matches_reference(pipes, checkpoint, args, kwargs):
    ours, ref = pipes[checkpoint]
    assert_same(ours(*args, **kwargs), ref(*args, **kwargs))


def test_batched_equals_reference(pipes):
    ours, ref = pipes["minilm"]
    texts = TEXTS * 3 + [PAIR["text"]]
    assert_same(ours(texts, batch_size=4, top_k=None), ref(texts, batch_size=4, top_k=None))


def test_pipeline_level_top_k_keeps_reference_nesting(tiny):
    """top_k given to pipeline() (not to the call) nests a single text's result once more, as the reference."""
    folder = str(tiny["seqcls"])
    ours = headway.pipeline("sentiment-analysis", model=folder, top_k=None, device="cpu")
    ref = transformers.pipeline("sentiment-analysis", model=folder, top_k=None, device=-1)
    assert_same(ours(TEXTS[0]), ref(TEXTS[0]))
    assert_same(ours(TEXTS), ref(TEXTS))


def test_return_all_scores_is_the_v4_spelling(pipes, caplog):
    """transformers 4.57: every label in label order (str input wrapped once more); False is the best label."""
    ours, _ = pipes["tiny"]
    with caplog.at_level(logging.WARNING):
        every = ours(TEXTS[0], return_all_scores=True)
    assert "return_all_scores is deprecated" in caplog.text
    assert [r["label"] for r in every[0]] == ["NEG", "POS", "NEU"]
    assert_same(every[0], sorted(ours(TEXTS[0], top_k=None), key=lambda r: ["NEG", "POS", "NEU"].index(r["label"])))
    assert ours(TEXTS[0], return_all_scores=False) == ours(TEXTS[0])


def test_function_to_apply_defaults_follow_problem_type(tiny):
    pipe = headway.pipeline("text-classification", model=str(tiny["seqcls"]), device="cpu")
    config = pipe.model.config
    assert pipe._default_function() == "softmax"
    config.problem_type = "multi_label_classification"
    assert pipe._default_function() == "sigmoid"
    config.problem_type = "regression"
    assert pipe._default_function() == "none"
    config.problem_type = None


def test_long_text_is_truncated_with_a_warning(pipes, caplog):
    ours, _ = pipes["tiny"]
    with caplog.at_level(logging.WARNING):
        result = ours("word " * 200)
    assert "truncated" in caplog.text
    assert result[0]["label"] in {"NEG", "POS", "NEU"}


def test_bad_parameters(pipes):
    ours, _ = pipes["tiny"]
    with pytest.raises(ValueError, match="function_to_apply must be one of"):
        ours(TEXTS[0], function_to_apply="tanh")
    with pytest.raises(ValueError, match="top_k must be a positive int or None"):
        ours(TEXTS[0], top_k=0)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['colour'\\]"):
        ours(TEXTS[0], colour="red")
    with pytest.raises(ValueError, match="a text pair is \\{'text'"):
        ours({"sentence": "x"})
    with pytest.raises(ValueError, match="to classify a text pair pass"):
        ours([["a", "b", "c"]])
