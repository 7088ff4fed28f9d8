"""Tiny models and data for the training tests: a 2-layer, 32-wide BERT over a 150-token WordPiece
vocabulary built from the data below, saved as a sentence-transformers folder (Transformer + mean
pooling) and as a one-label cross-encoder, plus small pair / triplet / score / NLI data sets."""

from __future__ import annotations

from pathlib import Path

import torch

ANCHORS = [
    "a man eats food in the kitchen",
    "a woman plays music on a guitar",
    "the dog runs in the park",
    "a child reads a book",
    "the cat sleeps on the table",
    "a bird sings a song in the tree",
    "the man walks slowly on the road",
    "a woman drives a red car",
    "two children play with a ball",
    "the old man sits near the river",
    "a girl writes a letter",
    "the boy climbs a big tree",
]
POSITIVES = [
    "the man eats",
    "the woman plays the guitar",
    "a dog runs fast",
    "the child reads",
    "a cat sleeps",
    "the bird sings",
    "a man walks",
    "the woman drives a car",
    "children play ball",
    "an old man sits by the river",
    "the girl writes",
    "a boy climbs",
]
NEGATIVES = [
    "the car is red",
    "a dog sleeps",
    "the park is green",
    "a phone on the table",
    "the river is cold",
    "a man drives",
    "the kitchen is small",
    "a child sings",
    "the tree is old",
    "a girl reads a book",
    "the ball is blue",
    "a woman eats food",
]
SCORES = [0.9, 0.8, 0.1, 0.7, 0.3, 0.95, 0.2, 0.6, 0.5, 0.4, 0.85, 0.05]
NLI_LABELS = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary() -> list[str]:
    words = sorted({w for text in ANCHORS + POSITIVES + NEGATIVES for w in text.split()})
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?")
    return list(dict.fromkeys(SPECIALS + words + chars + ["##" + c for c in chars[:26]]))


def build_bert(folder: Path, *, seed: int = 0, head: str | None = None) -> Path:
    """A tiny random BERT (and its tokenizer) saved by transformers; ``head="cross-encoder"`` gives it a
    one-label classification head."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    transformers.BertTokenizer(
        vocab={t: i for i, t in enumerate(vocab)}, model_max_length=64
    ).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout=0.0,
        num_labels=1,
    )
    torch.manual_seed(seed)
    cls = transformers.BertForSequenceClassification if head == "cross-encoder" else transformers.BertModel
    cls(config).save_pretrained(folder)
    return folder


def build_sentence_transformer(folder: Path, seed: int = 0) -> Path:
    """A sentence-transformers folder (Transformer + mean pooling) around a tiny BERT."""
    from headway import SentenceTransformer

    bert = build_bert(folder.parent / f"{folder.name}_bert", seed=seed)
    SentenceTransformer(bert, device="cpu").save(folder)
    return folder


def datasets() -> dict:
    """The data sets the tests train on, by kind."""
    from datasets import Dataset

    n = len(ANCHORS)
    return {
        "pairs": Dataset.from_dict({"anchor": ANCHORS, "positive": POSITIVES}),
        "triplets": Dataset.from_dict({"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES}),
        "scored": Dataset.from_dict({"sentence1": ANCHORS, "sentence2": NEGATIVES[::-1], "score": SCORES}),
        "nli": Dataset.from_dict({"premise": ANCHORS, "hypothesis": POSITIVES, "label": NLI_LABELS}),
        "ce_pairs": Dataset.from_dict(
            {"query": ANCHORS + ANCHORS, "document": POSITIVES + NEGATIVES, "label": [1.0] * n + [0.0] * n}
        ),
        "ce_lists": Dataset.from_dict(
            {
                "query": ANCHORS[:8],
                "docs": [[POSITIVES[i], NEGATIVES[i], POSITIVES[(i + 1) % n]][: 2 + i % 2] for i in range(8)],
                "labels": [[1.0, 0.0, 0.5][: 2 + i % 2] for i in range(8)],
            }
        ),
    }


def as_reference_keys(state: dict) -> dict:
    """headway's SentenceTransformer weight names -> sentence-transformers 6's (``0.auto_model.`` -> ``0.model.``)."""
    return {k.replace(".auto_model.", ".model."): v for k, v in state.items()}


def max_weight_difference(ours: torch.nn.Module, ref: torch.nn.Module) -> float:
    a, b = as_reference_keys(ours.state_dict()), ref.state_dict()
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    return max((a[k].float() - b[k].float()).abs().max().item() for k in b)
