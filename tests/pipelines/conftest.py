"""Checkpoints for the pipeline tests, built once per session with the reference library.

Tiny random BERTs (2 layers, 32 hidden) use the real MiniLM WordPiece vocabulary (its tokenizer files are
copied beside the weights, ``model_max_length`` lowered to the model's 64 positions); the ``minilm_*``
checkpoints put seeded random heads on the real all-MiniLM-L6-v2 encoder. Heads are drawn with a large
standard deviation so that labels and spans are decided by clear margins, not near-ties.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC"]
NLI_LABELS = ["contradiction", "neutral", "entailment"]


def _copy_tokenizer(source: Path, folder: Path, model_max_length: int | None = None) -> None:
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, folder / name)
    if model_max_length is not None:
        path = folder / "tokenizer_config.json"
        config = json.loads(path.read_text())
        config["model_max_length"] = model_max_length
        path.write_text(json.dumps(config))


def _labels(names: list[str]) -> dict:
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, minilm_path) -> dict[str, Path]:
    """Tiny random BERT checkpoints saved by transformers: seqcls, tokcls, mlm, nli, bare."""
    import torch
    import transformers
    root = tmp_path_factory.mktemp("tiny")
    base = {
        "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 64, "max_position_embeddings": 64,
    }
    specs = {
        "seqcls": (transformers.BertForSequenceClassification, _labels(["NEG", "POS", "NEU"]), "classifier"),
        "tokcls": (transformers.BertForTokenClassification, _labels(NER_LABELS), "classifier"),
        "mlm": (transformers.BertForMaskedLM, {"initializer_range": 0.3}, None),
        "nli": (transformers.BertForSequenceClassification, _labels(NLI_LABELS), "classifier"),
        "bare": (transformers.BertModel, {}, None),
    }
    folders = {}
    for seed, (name, (cls, extra, head)) in enumerate(specs.items()):
        torch.manual_seed(seed)
        model = cls(transformers.BertConfig(**base, **extra)).eval()
        if head is not None:
            with torch.no_grad():
                getattr(model, head).weight.normal_(0.0, 1.0)
        folder = root / name
        model.save_pretrained(folder)
        _copy_tokenizer(Path(minilm_path), folder, model_max_length=64)
        folders[name] = folder
    return folders


@pytest.fixture(scope="session")
def minilm_heads(tmp_path_factory, minilm_path) -> dict[str, Path]:
    """all-MiniLM-L6-v2 with seeded random heads, saved by transformers: seqcls, tokcls, mlm, nli."""
    import torch
    import transformers
    root = tmp_path_factory.mktemp("minilm_heads")
    specs = {
        "seqcls": (transformers.AutoModelForSequenceClassification, _labels(["negative", "positive"]), "classifier"),
        "tokcls": (transformers.AutoModelForTokenClassification, _labels(NER_LABELS), "classifier"),
        "mlm": (transformers.AutoModelForMaskedLM, {}, None),
        "nli": (transformers.AutoModelForSequenceClassification, _labels(NLI_LABELS), "classifier"),
    }
    folders = {}
    for seed, (name, (cls, extra, head)) in enumerate(specs.items()):
        torch.manual_seed(100 + seed)
        model = cls.from_pretrained(minilm_path, **extra).eval()
        if head is not None:
            with torch.no_grad():
                getattr(model, head).weight.normal_(0.0, 0.5)
        folder = root / name
        model.save_pretrained(folder)
        _copy_tokenizer(Path(minilm_path), folder)
        folders[name] = folder
    return folders
