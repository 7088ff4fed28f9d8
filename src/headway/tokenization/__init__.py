"""Tokenizers with the ``transformers`` API, over the Rust ``tokenizers`` library.

``Tokenizer.from_pretrained`` loads a checkpoint's tokenizer (``tokenizer.json`` or vocabulary files
alone) and reproduces the reference library's ids, offsets and word alignment. Calling the tokenizer
returns a ``BatchEncoding``: a dict of lists or tensors that also answers character/word/token
alignment questions.

One concern per module:

- ``batch_encoding``: ``BatchEncoding``, ``CharSpan``, ``TokenSpan``
- ``loading``: ``from_pretrained`` and the checkpoint files it reads
- ``family_specs``: the tokenizer families and which one a checkpoint gets
- ``converters`` / ``sentencepiece_model``: backends built from ``tokenizer.json`` or vocabulary files
- ``special_tokens``, ``vocabulary``, ``call``, ``padding``, ``decoding``, ``saving``: the mixins the
  ``Tokenizer`` class (``tokenizer``) is assembled from
- ``families``: the reference class names (``BertTokenizerFast``, ``DebertaV2Tokenizer``, ...)
- ``spm_seq2seq`` / ``seq2seq_families``: T5, mBART, mBART-50 and Pegasus; ``marian``: Marian (OPUS-MT)

``torch`` and ``numpy`` are imported only when tensors are asked for.
"""

from __future__ import annotations

# Besides ``__all__``, the names this module had before it became a package stay importable from it:
# the backend classes and the constants (file names, strategies, limits).
from tokenizers import AddedToken, Encoding  # noqa: F401
from tokenizers import Tokenizer as BackendTokenizer  # noqa: F401

from .batch_encoding import BatchEncoding, CharSpan, TokenSpan
from .call import TokenizerInputError
from .constants import (  # noqa: F401
    ADDED_TOKENS_FILE,
    CHAT_TEMPLATE_FILE,
    LARGE_INTEGER,
    PADDING_STRATEGIES,
    SPECIAL_TOKENS_ATTRIBUTES,
    SPECIAL_TOKENS_MAP_FILE,
    TENSOR_TYPES,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    TRUNCATION_STRATEGIES,
    VERY_LARGE_INTEGER,
)
from .families import (
    BartTokenizer,
    BartTokenizerFast,
    BertTokenizer,
    BertTokenizerFast,
    DebertaV2Tokenizer,
    DebertaV2TokenizerFast,
    DistilBertTokenizer,
    DistilBertTokenizerFast,
    GPT2Tokenizer,
    GPT2TokenizerFast,
    LlamaTokenizer,
    LlamaTokenizerFast,
    MPNetTokenizer,
    MPNetTokenizerFast,
    PreTrainedTokenizer,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    RobertaTokenizer,
    RobertaTokenizerFast,
    TokenizersBackend,
    XLMRobertaTokenizer,
    XLMRobertaTokenizerFast,
)
from .marian import MarianTokenizer, MarianTokenizerFast
from .seq2seq_families import (
    MBart50Tokenizer,
    MBart50TokenizerFast,
    MBartTokenizer,
    MBartTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
    T5Tokenizer,
    T5TokenizerFast,
)
from .tokenizer import Tokenizer

__all__ = [
    "AddedToken",
    "BartTokenizer",
    "BartTokenizerFast",
    "BatchEncoding",
    "BertTokenizer",
    "BertTokenizerFast",
    "CharSpan",
    "DebertaV2Tokenizer",
    "DebertaV2TokenizerFast",
    "DistilBertTokenizer",
    "DistilBertTokenizerFast",
    "GPT2Tokenizer",
    "GPT2TokenizerFast",
    "LlamaTokenizer",
    "LlamaTokenizerFast",
    "MBart50Tokenizer",
    "MBart50TokenizerFast",
    "MBartTokenizer",
    "MBartTokenizerFast",
    "MPNetTokenizer",
    "MPNetTokenizerFast",
    "MarianTokenizer",
    "MarianTokenizerFast",
    "PegasusTokenizer",
    "PegasusTokenizerFast",
    "PreTrainedTokenizer",
    "PreTrainedTokenizerBase",
    "PreTrainedTokenizerFast",
    "RobertaTokenizer",
    "RobertaTokenizerFast",
    "T5Tokenizer",
    "T5TokenizerFast",
    "TokenSpan",
    "Tokenizer",
    "TokenizerInputError",
    "TokenizersBackend",
    "XLMRobertaTokenizer",
    "XLMRobertaTokenizerFast",
]
