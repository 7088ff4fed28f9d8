"""The reference library's tokenizer class names, one subclass per family.

``BertTokenizerFast.from_pretrained(folder)`` loads a folder as a BERT tokenizer whatever its
``tokenizer_config.json`` says. As in transformers v5, the names without ``Fast`` are the same classes.
"""

from __future__ import annotations

from .tokenizer import Tokenizer


class BertTokenizerFast(Tokenizer):
    """BERT WordPiece tokenizer (``vocab.txt`` or ``tokenizer.json``)."""

    _family = "bert"


class DistilBertTokenizerFast(Tokenizer):
    """DistilBERT tokenizer: BERT WordPiece without token type ids."""

    _family = "distilbert"


class MPNetTokenizerFast(Tokenizer):
    """MPNet tokenizer: BERT WordPiece with RoBERTa-style special tokens."""

    _family = "mpnet"


class GPT2TokenizerFast(Tokenizer):
    """GPT-2 byte-level BPE tokenizer (``vocab.json`` + ``merges.txt`` or ``tokenizer.json``)."""

    _family = "gpt2"


class RobertaTokenizerFast(Tokenizer):
    """RoBERTa byte-level BPE tokenizer with ``<s> A </s></s> B </s>`` templates."""

    _family = "roberta"


class LlamaTokenizerFast(Tokenizer):
    """Llama/Mistral SentencePiece BPE tokenizer (``tokenizer.model`` or ``tokenizer.json``)."""

    _family = "llama"


class XLMRobertaTokenizerFast(Tokenizer):
    """XLM-RoBERTa Unigram tokenizer (from ``tokenizer.json``)."""

    _family = "xlm_roberta"


FAMILY_CLASSES: dict[str, type[Tokenizer]] = {
    "bert": BertTokenizerFast,
    "distilbert": DistilBertTokenizerFast,
    "mpnet": MPNetTokenizerFast,
    "gpt2": GPT2TokenizerFast,
    "roberta": RobertaTokenizerFast,
    "llama": LlamaTokenizerFast,
    "xlm_roberta": XLMRobertaTokenizerFast,
}

BertTokenizer = BertTokenizerFast
DistilBertTokenizer = DistilBertTokenizerFast
MPNetTokenizer = MPNetTokenizerFast
GPT2Tokenizer = GPT2TokenizerFast
RobertaTokenizer = RobertaTokenizerFast
LlamaTokenizer = LlamaTokenizerFast
XLMRobertaTokenizer = XLMRobertaTokenizerFast
PreTrainedTokenizerFast = Tokenizer
PreTrainedTokenizer = Tokenizer
PreTrainedTokenizerBase = Tokenizer
