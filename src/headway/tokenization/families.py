"""The reference library's tokenizer class names, one subclass per family.

``BertTokenizerFast.from_pretrained(folder)`` loads a folder as a BERT tokenizer whatever its
``tokenizer_config.json`` says. As in transformers v5, the names without ``Fast`` are the same classes,
and a family class can also be built from its vocabulary: ``BertTokenizer("vocab.txt")``,
``GPT2Tokenizer("vocab.json", "merges.txt")``, ``DebertaV2Tokenizer(vocab_file="spm.model")``.
"""

from __future__ import annotations

import os
from typing import Any

from tokenizers import Tokenizer as BackendTokenizer

from .converters import backend_from_vocab, family_special_token_objects
from .family_specs import FAMILIES
from .tokenizer import Tokenizer


class FamilyTokenizer(Tokenizer):
    """Base of the family classes: a ``Tokenizer`` whose family is fixed by the class.

    Args:
        vocab: The family's vocabulary: a file path (``vocab.txt``, ``vocab.json``, a SentencePiece
            ``.model``) or the vocabulary itself (a token -> id dict for WordPiece and BPE, a list of
            ``(piece, score)`` for Unigram). A ``tokenizers.Tokenizer`` here is taken as
            ``tokenizer_object``.
        merges: BPE merges (a ``merges.txt`` path or a list of pairs), for the byte-level BPE families.
        tokenizer_object: A ``tokenizers.Tokenizer`` used as it is (copied), instead of a vocabulary.
        tokenizer_file: Path of a ``tokenizer.json`` used as it is, instead of a vocabulary.
        vocab_file: Same as a ``vocab`` path (the transformers v4 spelling).
        merges_file: Same as a ``merges`` path (the transformers v4 spelling).
        **kwargs: Tokenizer options, as for ``Tokenizer``.

    Raises:
        ValueError: Neither a vocabulary nor a backend was given, or both.
    """

    def __init__(
        self,
        vocab: str | os.PathLike | dict[str, int] | list[tuple[str, float]] | BackendTokenizer | None = None,
        merges: str | os.PathLike | list[Any] | None = None,
        *,
        tokenizer_object: BackendTokenizer | None = None,
        tokenizer_file: str | os.PathLike | None = None,
        vocab_file: str | os.PathLike | None = None,
        merges_file: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(vocab, BackendTokenizer) and tokenizer_object is None:
            vocab, tokenizer_object = None, vocab  # positional backend, as Tokenizer(...) takes it
        if vocab is not None and vocab_file is not None:
            raise ValueError("pass the vocabulary once: vocab=... or vocab_file=..., not both")
        if merges is not None and merges_file is not None:
            raise ValueError("pass the merges once: merges=... or merges_file=..., not both")
        vocab = vocab if vocab is not None else vocab_file
        merges = merges if merges is not None else merges_file
        has_backend = tokenizer_object is not None or tokenizer_file is not None
        name = type(self).__name__
        if vocab is not None and has_backend:
            raise ValueError(
                f"{name} takes a vocabulary or a backend (tokenizer_object/tokenizer_file), not both"
            )
        if vocab is None and merges is not None:
            raise ValueError(f"{name} got merges without a vocabulary; pass vocab=... too")
        if vocab is None and not has_backend:
            raise ValueError(
                f"{name} needs a vocabulary: pass vocab=<file path or vocabulary> (vocab_file=<path> also "
                f"works), tokenizer_object=<tokenizers.Tokenizer> or tokenizer_file=<tokenizer.json>, or load a "
                f"checkpoint with {name}.from_pretrained()"
            )
        if vocab is not None:
            family = self._family
            if family is None:
                raise TypeError(f"{name} is a base class; build a family class such as BertTokenizer")
            for key, value in FAMILIES[family].defaults.items():
                kwargs.setdefault(key, value)
            family_special_token_objects(family, kwargs)
            tokenizer_object = backend_from_vocab(family, vocab, merges, kwargs)
            kwargs.update(_family_post=True, _copy=False)
        super().__init__(tokenizer_object, tokenizer_file=tokenizer_file, **kwargs)


class BertTokenizer(FamilyTokenizer):
    """BERT WordPiece tokenizer (``vocab.txt`` or ``tokenizer.json``)."""

    _family = "bert"


class DistilBertTokenizer(FamilyTokenizer):
    """DistilBERT tokenizer: BERT WordPiece without token type ids."""

    _family = "distilbert"


class MPNetTokenizer(FamilyTokenizer):
    """MPNet tokenizer: BERT WordPiece with RoBERTa-style special tokens."""

    _family = "mpnet"


class GPT2Tokenizer(FamilyTokenizer):
    """GPT-2 byte-level BPE tokenizer (``vocab.json`` + ``merges.txt`` or ``tokenizer.json``)."""

    _family = "gpt2"


class RobertaTokenizer(FamilyTokenizer):
    """RoBERTa byte-level BPE tokenizer with ``<s> A </s></s> B </s>`` templates."""

    _family = "roberta"


class LlamaTokenizer(FamilyTokenizer):
    """Llama/Mistral SentencePiece BPE tokenizer (``tokenizer.model`` or ``tokenizer.json``)."""

    _family = "llama"


class XLMRobertaTokenizer(FamilyTokenizer):
    """XLM-RoBERTa Unigram tokenizer (from ``tokenizer.json``)."""

    _family = "xlm_roberta"


class DebertaV2Tokenizer(FamilyTokenizer):
    """DeBERTa-v2/v3 SentencePiece Unigram tokenizer (``spm.model`` or ``tokenizer.json``)."""

    _family = "deberta_v2"


FAMILY_CLASSES: dict[str, type[Tokenizer]] = {
    "bert": BertTokenizer,
    "distilbert": DistilBertTokenizer,
    "mpnet": MPNetTokenizer,
    "gpt2": GPT2Tokenizer,
    "roberta": RobertaTokenizer,
    "llama": LlamaTokenizer,
    "xlm_roberta": XLMRobertaTokenizer,
    "deberta_v2": DebertaV2Tokenizer,
}


def family_class(family: str) -> type[Tokenizer]:
    """The class of a tokenizer family (the generic ``Tokenizer`` for the generic family)."""
    # The encoder-decoder families subclass FamilyTokenizer, so their modules import this one.
    from .marian import MarianTokenizer
    from .seq2seq_families import SEQ2SEQ_FAMILY_CLASSES

    classes = {**FAMILY_CLASSES, **SEQ2SEQ_FAMILY_CLASSES, "marian": MarianTokenizer}
    return classes.get(family, Tokenizer)


# As in transformers v5, the ``Fast`` names are the same classes, and the generic names the generic class.
# BART's tokenizer is RoBERTa's (transformers v5 has the same aliases).
BartTokenizer = RobertaTokenizer
BartTokenizerFast = RobertaTokenizer
BertTokenizerFast = BertTokenizer
DistilBertTokenizerFast = DistilBertTokenizer
MPNetTokenizerFast = MPNetTokenizer
GPT2TokenizerFast = GPT2Tokenizer
RobertaTokenizerFast = RobertaTokenizer
LlamaTokenizerFast = LlamaTokenizer
XLMRobertaTokenizerFast = XLMRobertaTokenizer
DebertaV2TokenizerFast = DebertaV2Tokenizer
PreTrainedTokenizerFast = Tokenizer
PreTrainedTokenizer = Tokenizer
PreTrainedTokenizerBase = Tokenizer
TokenizersBackend = Tokenizer
