"""Sentence embeddings and cross-encoders with the sentence-transformers API.

``SentenceTransformer`` (texts -> embeddings), ``CrossEncoder`` (text pairs -> scores) and ``util``
(similarities, semantic search, quantization), over headway's models and tokenizers. The classes are
resolved lazily, so ``from headway.sentence import util`` does not load the model code.
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
}

__all__ = sorted([*_LAZY, "util"])  # noqa: PLE0605


def __getattr__(name: str) -> Any:
    if name == "util":
        return importlib.import_module("headway.sentence.util")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headway.sentence' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "util"])


if TYPE_CHECKING:
    from headway.sentence.cross_encoder import CrossEncoder  # noqa: F401
    from headway.sentence.encoder import SentenceTransformer  # noqa: F401
    from headway.sentence.modules import Dense, Normalize, Pooling, Transformer  # noqa: F401
