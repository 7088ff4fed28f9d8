"""Sentence embeddings and cross-encoders with the sentence-transformers API.

``SentenceTransformer`` (texts -> embeddings), ``CrossEncoder`` (text pairs -> scores) and ``util``
(similarities, semantic search, paraphrase mining, quantization), over headway's models and tokenizers,
or a ``StaticEmbedding`` (averaged token vectors); fine-tuning with
``SentenceTransformerTrainer`` / ``CrossEncoderTrainer``, the ``losses``, ``evaluation`` and ``samplers``
modules. The classes are resolved lazily, so ``from headway.sentence import util`` does not load the
model code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "SentenceTransformer": "headway.sentence.encoder",
    "CrossEncoder": "headway.sentence.cross_encoder",
    "Transformer": "headway.sentence.modules",
    "Pooling": "headway.sentence.modules",
    "Dense": "headway.sentence.modules",
    "Normalize": "headway.sentence.modules",
    "StaticEmbedding": "headway.sentence.static_embedding",
    "SimilarityFunction": "headway.sentence.similarity",
    "ModelCardData": "headway.sentence.model_card",
    "SentenceTransformerTrainer": "headway.sentence.trainer",
    "SentenceTransformerTrainingArguments": "headway.sentence.training_args",
    "CrossEncoderTrainer": "headway.sentence.cross_encoder_training",
    "CrossEncoderTrainingArguments": "headway.sentence.training_args",
    "BatchSamplers": "headway.sentence.samplers",
    "MultiDatasetBatchSamplers": "headway.sentence.samplers",
    "InputExample": "headway.sentence.fit",
}
# sub-modules reachable as attributes, as in sentence-transformers (``from headway.sentence import losses``)
_MODULES = ("util", "losses", "evaluation", "samplers")

__all__ = sorted([*_LAZY, *_MODULES])  # noqa: PLE0605


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"headway.sentence.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headway.sentence' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_MODULES])


if TYPE_CHECKING:
    from headway.sentence.cross_encoder import CrossEncoder  # noqa: F401
    from headway.sentence.cross_encoder_training import CrossEncoderTrainer  # noqa: F401
    from headway.sentence.encoder import SentenceTransformer  # noqa: F401
    from headway.sentence.fit import InputExample  # noqa: F401
    from headway.sentence.model_card import ModelCardData  # noqa: F401
    from headway.sentence.modules import Dense, Normalize, Pooling, Transformer  # noqa: F401
    from headway.sentence.samplers import BatchSamplers, MultiDatasetBatchSamplers  # noqa: F401
    from headway.sentence.similarity import SimilarityFunction  # noqa: F401
    from headway.sentence.static_embedding import StaticEmbedding  # noqa: F401
    from headway.sentence.trainer import SentenceTransformerTrainer  # noqa: F401
    from headway.sentence.training_args import (  # noqa: F401
        CrossEncoderTrainingArguments,
        SentenceTransformerTrainingArguments,
    )
