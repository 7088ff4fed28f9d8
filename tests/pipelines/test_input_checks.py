"""Pipeline parameters are checked (issue #11, item 3): a bad hypothesis_template is a ValueError naming it,
never an internal IndexError / KeyError or a format width that fills the memory."""

from __future__ import annotations

import pytest

import headway
from headway.pipelines.zero_shot_classification import _check_template

LABELS = {
    "id2label": {0: "contradiction", 1: "neutral", 2: "entailment"},
    "label2id": {"contradiction": 0, "neutral": 1, "entailment": 2},
}


@pytest.fixture(scope="module")
def zero_shot(minilm_path):
    config = headway.AutoConfig.for_model(
        "bert",
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        **LABELS,
    )
    model = headway.AutoModelForSequenceClassification.from_config(config)
    return headway.pipeline(
        "zero-shot-classification",
        model=model,
        tokenizer=headway.AutoTokenizer.from_pretrained(minilm_path),
        device="cpu",
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{0} {1}", r"'\{0\} \{1\}' cannot be formatted with one label \(IndexError"),  # IndexError before
        ("{}{}", r"cannot be formatted with one label \(IndexError"),
        ("{label}", r"cannot be formatted with one label \(KeyError"),  # KeyError before
        ("{", r"cannot be formatted with one label \(ValueError: Single '\{'"),
        ("{:d}", r"cannot be formatted with one label \(ValueError: Unknown format code"),
        ("{0.real}", r"cannot be formatted with one label \(AttributeError"),
        (
            "{:>100000000000}",
            r"format spec '>100000000000' is wider than 10000 characters",
        ),  # MemoryError before
        ("No placeholder.", "was not able to be formatted with the target labels"),
    ],
)
def test_bad_hypothesis_template(zero_shot, template, message):
    with pytest.raises(ValueError, match=f"hypothesis_template|{message}") as error:
        zero_shot("The cat sat.", candidate_labels=["animals"], hypothesis_template=template)
    assert error.match(message)


def test_hypothesis_template_of_the_wrong_type(zero_shot):
    with pytest.raises(
        TypeError, match="hypothesis_template must be a str with {} where the label goes, got 5"
    ):
        zero_shot("The cat sat.", candidate_labels=["animals"], hypothesis_template=5)


@pytest.mark.parametrize("template", ["This is {}.", "{0}!", "{!r} it is", "{:>20}", "{{literal}} {}"])
def test_good_templates_still_accepted(template):
    assert _check_template(template) == template
