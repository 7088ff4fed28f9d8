"""The tiny model of the multi-process and ``headway encode`` tests, built once per test session.

The 2-layer, 32-wide BERT and WordPiece vocabulary of tiny_training.py, but built and saved by headway
itself (random weights): these tests compare headway with headway, and skipping the import of transformers
saves seconds in each fresh process.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from .tiny_training import ANCHORS, NEGATIVES, POSITIVES, vocabulary

# 20 texts of mixed lengths, an empty one among them.
TEXTS = [*ANCHORS, *POSITIVES[:5], "", "a", " ".join(NEGATIVES)]


@functools.cache
def _build(root: Path) -> Path:
    from headway import SentenceTransformer
    from headway.models.bert import BertConfig, BertModel

    bert = root / "tiny-bert"
    bert.mkdir(parents=True)
    vocab = vocabulary()
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}
    (bert / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel.from_config(config).save_pretrained(bert)
    folder = root / "tiny-sentence-model"
    SentenceTransformer(str(bert), device="cpu").save(folder)
    return folder


def tiny_model_path(tmp_path_factory) -> Path:
    """The folder of a tiny SentenceTransformer (BERT + mean pooling), shared by every test of the session."""
    return _build(tmp_path_factory.getbasetemp() / "tiny-corpus-model")
