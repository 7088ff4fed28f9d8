"""question-answering: outputs equal transformers 4.57's, recorded in tests/fixtures/qa_golden.json.

The checkpoint (tests/fixtures/qa_tiny/) and the golden file come from tests/fixtures/record_qa_golden.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import headway
from tests.pipelines.common import assert_same

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = json.loads((FIXTURES / "qa_golden.json").read_text(encoding="utf-8"))
CONTEXT = "The river Ondra flows north from the Kesh mountains to the harbour town of Millport."


@pytest.fixture(scope="module")
def qa():
    return headway.pipeline("question-answering", model=str(FIXTURES / "qa_tiny"), device="cpu")


def test_fixture_is_small_and_complete():
    folder = FIXTURES / "qa_tiny"
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2_000_000
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        f.name for f in folder.iterdir()
    }
    assert GOLDEN["transformers"].startswith("4.57")


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=[case["name"] for case in GOLDEN["cases"]])
def test_matches_transformers_4_57(qa, case):
    result = qa(*case.get("args", []), **case.get("kwargs", {}))
    assert_same(result, case["output"])
    for answer in result if isinstance(result, list) else [result]:
        for a in answer if isinstance(answer, list) else [answer]:
            if a["answer"]:
                assert a["answer"] in json.dumps(case, ensure_ascii=False)


def test_long_context_is_split_into_windows(qa):
    case = next(c for c in GOLDEN["cases"] if c["name"] == "long_context_chunks")
    kwargs = case["kwargs"]
    features = qa.preprocess([{"question": kwargs["question"], "context": kwargs["context"]}],
                             max_seq_len=kwargs["max_seq_len"], doc_stride=kwargs["doc_stride"])
    assert len(features[0]) > 3
    assert all(len(f) <= kwargs["max_seq_len"] for f in features[0])


def test_same_answers_whatever_the_batch_size(qa):
    questions = ["Where does the river flow?", "What is the town?", "Which mountains?"]
    one = qa(question=questions, context=CONTEXT, max_seq_len=20, doc_stride=4, top_k=2)
    assert_same(qa(question=questions, context=CONTEXT, max_seq_len=20, doc_stride=4, top_k=2, batch_size=7), one,
                atol=1e-6)


def test_generator_input_is_lazy(qa):
    items = ({"question": q, "context": CONTEXT} for q in ["Where?", "What?"])
    results = qa(items)
    assert not isinstance(results, list)
    assert [r["answer"] for r in results] == [qa(question=q, context=CONTEXT)["answer"] for q in ["Where?", "What?"]]


def test_long_question_is_truncated_to_max_question_len(qa, caplog):
    question = "Where does the river that flows north from the mountains go to in the end?"
    with caplog.at_level(logging.WARNING):
        clipped = qa(question=question, context=CONTEXT, max_question_len=4)
    assert "max_question_len=4" in caplog.text
    prefix = qa.tokenizer.decode(qa.tokenizer(question, add_special_tokens=False)["input_ids"][:4])
    short = question[: len(prefix)]
    assert short.lower() == prefix and len(qa.tokenizer(short, add_special_tokens=False)["input_ids"]) == 4
    assert clipped == qa(question=short, context=CONTEXT)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"question": "Where?", "context": ""}, ValueError, "context is an empty string"),
        ({"question": "Where?", "context": "   "}, ValueError, "context is an empty string"),
        ({"question": "", "context": CONTEXT}, ValueError, "question is an empty string"),
        ({"question": None, "context": CONTEXT}, TypeError, "needs both question= and context="),
        ({"question": 3, "context": CONTEXT}, TypeError, "question and context must be str or lists of str"),
        ({"question": ["a", "b"], "context": ["c"]}, ValueError, "Got 2 questions but 1 contexts"),
        ({"question": "Where?", "context": CONTEXT, "top_k": 0}, ValueError, "top_k must be a positive int"),
        ({"question": "Where?", "context": CONTEXT, "max_answer_len": 0}, ValueError, "max_answer_len must be"),
        ({"question": "Where?", "context": CONTEXT, "max_seq_len": 32, "doc_stride": 40}, ValueError,
         "is larger than `max_seq_len`"),
        ({"question": "Where?", "context": CONTEXT, "max_seq_len": 500}, ValueError, "more than the 128 tokens"),
        ({"question": "Where does the river flow?", "context": CONTEXT, "max_seq_len": 16, "doc_stride": 4},
         ValueError, "^question-answering input: the question takes 9 tokens, which leaves 4 of max_seq_len=16 for the"),
    ],
)
def test_bad_inputs(qa, kwargs, error, message):
    with pytest.raises(error, match=message):
        qa(**kwargs)


def test_bad_positional_inputs(qa):
    with pytest.raises(ValueError, match="needs a question and a context"):
        qa()
    with pytest.raises(ValueError, match="dict without \\['context'\\]"):
        qa({"question": "Where?"})
    with pytest.raises(TypeError, match="must be a dict \\{'question'"):
        qa(["Where?", "What?", "Who?"])
    with pytest.raises(ValueError, match="input \\[1\\] context is an empty string"):
        qa([{"question": "a", "context": CONTEXT}, {"question": "b", "context": ""}])
