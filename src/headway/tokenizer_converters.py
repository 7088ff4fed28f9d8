"""Former home of the tokenizer converters, kept so ``headway.tokenizer_converters`` imports keep working.

The code lives in ``headway.tokenization``: ``family_specs`` (families and their resolution),
``sentencepiece_model`` (the ``.model`` reader) and ``converters`` (backends from checkpoint files).
"""

from __future__ import annotations

from headway.tokenization.converters import (
    TokenizerJson,
    backend_from_tokenizer_json,
    backend_from_vocab_files,
    family_post_processor,
    family_special_token_objects,
    generate_merges,
    set_family_pipeline,
)
from headway.tokenization.family_specs import CLASS_TO_FAMILY, FAMILIES, Family, resolve_family, strip_fast
from headway.tokenization.sentencepiece_model import (
    SPM_BYTE,
    SPM_CONTROL,
    SPM_NORMAL,
    SPM_UNKNOWN,
    SPM_UNUSED,
    SPM_USER_DEFINED,
    SentencePieceModel,
    load_sentencepiece_model,
)

__all__ = [
    "CLASS_TO_FAMILY",
    "FAMILIES",
    "SPM_BYTE",
    "SPM_CONTROL",
    "SPM_NORMAL",
    "SPM_UNKNOWN",
    "SPM_UNUSED",
    "SPM_USER_DEFINED",
    "Family",
    "SentencePieceModel",
    "TokenizerJson",
    "backend_from_tokenizer_json",
    "backend_from_vocab_files",
    "family_post_processor",
    "family_special_token_objects",
    "generate_merges",
    "load_sentencepiece_model",
    "resolve_family",
    "set_family_pipeline",
    "strip_fast",
]
