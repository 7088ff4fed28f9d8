"""Tokenizers of the encoder-decoder families on SentencePiece: T5, mBART, mBART-50 and Pegasus.

Their backends are built by ``spm_seq2seq``; the classes here add what each reference class adds on top:
T5's ``<extra_id_N>`` sentinels, Pegasus's ``<unk_N>`` offset tokens, and mBART's language codes with
``src_lang`` / ``tgt_lang``. mBART appends ``</s> src_lang`` to the source (``</s> tgt_lang`` to targets);
mBART-50 puts the language code first (``src_lang ... </s>``). Targets (``tokenizer(text_target=...)`` or
``with tokenizer.as_target_tokenizer():``) switch to ``tgt_lang``.

BART's tokenizer is RoBERTa's byte-level BPE (``BartTokenizer`` is ``RobertaTokenizer``, as in
transformers v5); Marian lives in ``marian``.
"""

from __future__ import annotations

import os
from typing import Any

from tokenizers import AddedToken, processors

from .batch_encoding import BatchEncoding
from .families import FamilyTokenizer
from .family_specs import FAMILIES
from .spm_seq2seq import (
    MBART50_LANGUAGE_CODES,
    MBART_LANGUAGE_CODES,
    build_backend,
    vocabulary_from_argument,
)


class _SpmSeq2SeqTokenizer(FamilyTokenizer):
    """Shared construction: a backend from a vocabulary (or a checkpoint's), then the family's own steps.

    Args:
        vocab: A SentencePiece ``.model`` path or a list of ``(piece, score)`` pairs in the family's id
            order; or None with ``tokenizer_object`` / ``tokenizer_file`` (as ``from_pretrained`` builds it).
        vocab_file: Same as a ``vocab`` path (the transformers v4 spelling).
        **kwargs: Special tokens and family options, as for ``Tokenizer``.
    """

    def __init__(
        self,
        vocab: str | os.PathLike | list[tuple[str, float]] | None = None,
        *,
        vocab_file: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if vocab is not None and vocab_file is not None:
            raise ValueError("pass the vocabulary once: vocab=... or vocab_file=..., not both")
        vocab = vocab if vocab is not None else vocab_file
        if vocab is not None:
            if kwargs.get("tokenizer_object") is not None or kwargs.get("tokenizer_file") is not None:
                raise ValueError(
                    f"{name} takes a vocabulary or a backend (tokenizer_object/tokenizer_file), not both"
                )
            for key, value in FAMILIES[self._family].defaults.items():
                kwargs.setdefault(key, value)
            if isinstance(vocab, (str, os.PathLike)) and not kwargs.get("extra_special_tokens"):
                # As from_pretrained reads them: the SentencePiece model's own specials take this name.
                extras = kwargs.pop("additional_special_tokens", None)
                if extras is not None:
                    kwargs["extra_special_tokens"] = extras
            vocabulary = vocabulary_from_argument(vocab, self._family, kwargs, name)
            kwargs.update(tokenizer_object=build_backend(self._family, vocabulary, kwargs), _copy=False)
            kwargs.setdefault("_family_post", True)
        self._set_default_tokens(kwargs)
        self._prepare_special_tokens(kwargs)
        super().__init__(**kwargs)
        self._finish_init()

    def _set_default_tokens(self, kwargs: dict[str, Any]) -> None:
        """Defaults the family class sets itself rather than through its family's defaults."""

    def _prepare_special_tokens(self, kwargs: dict[str, Any]) -> None:
        """Adjust the special tokens before the base class registers them (``kwargs`` is modified)."""

    def _finish_init(self) -> None:
        """Steps after the base class: the post-processor, language codes."""


class T5Tokenizer(_SpmSeq2SeqTokenizer):
    """T5 SentencePiece Unigram tokenizer (``spiece.model`` or ``tokenizer.json``): ``A </s>`` and
    ``A </s> B </s>``, no BOS, ``extra_ids`` sentinels ``<extra_id_0>``..``<extra_id_{N-1}>`` at the end
    of the vocabulary (``<extra_id_0>`` last)."""

    _family = "t5"

    def _prepare_special_tokens(self, kwargs: dict[str, Any]) -> None:
        extra_ids = int(kwargs.get("extra_ids", 100))
        sentinels = [f"<extra_id_{index}>" for index in range(extra_ids)]
        extras = kwargs.get("additional_special_tokens")
        if extras is None:
            kwargs["additional_special_tokens"] = sentinels
            return
        found = [token for token in extras if "<extra_id_" in str(token)]
        if not found:
            kwargs["additional_special_tokens"] = list(extras) + sentinels
        elif extra_ids > 0 and extra_ids != len(found):
            raise ValueError(
                f"extra_ids={extra_ids} but additional_special_tokens holds {len(found)} <extra_id_N> "
                "sentinels; they must agree (or pass extra_ids=0)"
            )

    def _finish_init(self) -> None:
        eos_id = self.eos_token_id
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", eos_id)]
        )

    def get_sentinel_tokens(self) -> list[str]:
        """The ``<extra_id_N>`` tokens among the extra special tokens."""
        return [
            token
            for token in self.extra_special_tokens
            if token.startswith("<extra_id_") and token.endswith(">")
        ]

    def get_sentinel_token_ids(self) -> list[int]:
        """Ids of ``get_sentinel_tokens()``."""
        return [self.convert_tokens_to_ids(token) for token in self.get_sentinel_tokens()]


class PegasusTokenizer(_SpmSeq2SeqTokenizer):
    """Pegasus SentencePiece Unigram tokenizer: ``<pad>``=0, ``</s>``=1, ``<mask_1>``, ``<mask_2>``, then
    ``<unk_2>``..``<unk_{offset-1}>`` before the pieces; ``A </s>`` and ``A B </s>``."""

    _family = "pegasus"

    def _set_default_tokens(self, kwargs: dict[str, Any]) -> None:
        # Not family defaults: the SentencePiece conversion must see whether the checkpoint named them.
        kwargs.setdefault("mask_token", "<mask_2>")
        kwargs.setdefault("mask_token_sent", "<mask_1>")

    def _prepare_special_tokens(self, kwargs: dict[str, Any]) -> None:
        mask_sent = kwargs.get("mask_token_sent")
        extras = kwargs.get("additional_special_tokens")
        if extras is None or mask_sent not in extras:
            extras = [mask_sent] if mask_sent is not None else []
        else:
            extras = []  # as the reference: the given extras give way to the <unk_N> tokens
        offset = int(kwargs.get("offset", 103))
        kwargs["additional_special_tokens"] = extras + [f"<unk_{i}>" for i in range(2, offset)]

    def _finish_init(self) -> None:
        self.offset = int(self.init_kwargs.get("offset", 103))
        self.mask_token_sent = self.init_kwargs.get("mask_token_sent")
        eos = str(self.eos_token)
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A $B {eos}", special_tokens=[(eos, self.convert_tokens_to_ids(eos))]
        )


class _LanguageCodesTokenizer(_SpmSeq2SeqTokenizer):
    """mBART-style language codes: ``src_lang`` for inputs, ``tgt_lang`` for targets."""

    _codes: list[str] = []

    def _lang_id(self, code: str, what: str) -> int:
        if code not in self.lang_code_to_id:
            raise ValueError(
                f"{what}={code!r} is not a language code of this {type(self).__name__}; known codes: "
                f"{', '.join(self.lang_code_to_id)}"
            )
        return self.lang_code_to_id[code]

    def _finish_init(self) -> None:
        self.lang_code_to_id = {code: self.convert_tokens_to_ids(code) for code in self._codes}
        self.id_to_lang_code = {index: code for code, index in self.lang_code_to_id.items()}
        self.fairseq_offset = 1
        self.fairseq_tokens_to_ids = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **self.lang_code_to_id}
        self.fairseq_tokens_to_ids["<mask>"] = self.convert_tokens_to_ids(str(self.mask_token))
        self.fairseq_ids_to_tokens = {index: token for token, index in self.fairseq_tokens_to_ids.items()}
        self._tgt_lang: str | None = None
        src_lang, tgt_lang = self.init_kwargs.get("src_lang"), self.init_kwargs.get("tgt_lang")
        self.tgt_lang = tgt_lang
        self.src_lang = src_lang if src_lang is not None else "en_XX"

    @property
    def src_lang(self) -> str:
        """Language code of the inputs; setting it rebuilds the special tokens around them."""
        return self._src_lang

    @src_lang.setter
    def src_lang(self, code: str) -> None:
        self._lang_id(code, "src_lang")
        self._src_lang = code
        self.init_kwargs["src_lang"] = code  # saved as it is now, as the reference saves it
        self.set_src_lang_special_tokens(code)

    @property
    def tgt_lang(self) -> str | None:
        """Language code of the targets (None: the source language)."""
        return self._tgt_lang

    @tgt_lang.setter
    def tgt_lang(self, code: str | None) -> None:
        if code is not None:
            self._lang_id(code, "tgt_lang")
        self._tgt_lang = code
        self.init_kwargs["tgt_lang"] = code

    def _layout(self, code: str) -> tuple[list[int], list[int]]:
        """Ids before and after the text for language ``code``."""
        raise NotImplementedError

    def _set_lang_special_tokens(self, code: str, what: str) -> None:
        self.cur_lang_code = self.cur_lang_code_id = self._lang_id(code, what)
        self.prefix_tokens, self.suffix_tokens = self._layout(code)
        prefix = self.convert_ids_to_tokens(self.prefix_tokens)
        suffix = self.convert_ids_to_tokens(self.suffix_tokens)
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=[*prefix, "$A", *suffix],
            pair=[*prefix, "$A", "$B", *suffix],
            special_tokens=list(zip(prefix + suffix, self.prefix_tokens + self.suffix_tokens)),
        )

    def set_src_lang_special_tokens(self, src_lang: str) -> None:
        """Put the special tokens of source language ``src_lang`` around encoded text."""
        self._set_lang_special_tokens(src_lang, "src_lang")

    def set_tgt_lang_special_tokens(self, tgt_lang: str) -> None:
        """Put the special tokens of target language ``tgt_lang`` around encoded text."""
        self._set_lang_special_tokens(tgt_lang, "tgt_lang")

    def _switch_to_input_mode(self) -> None:
        self.set_src_lang_special_tokens(self.src_lang)

    def _switch_to_target_mode(self) -> None:
        if self.tgt_lang is None:
            self.tgt_lang = self.src_lang
        self.set_tgt_lang_special_tokens(self.tgt_lang)

    def _build_translation_inputs(
        self,
        raw_inputs: Any,
        return_tensors: str | None,
        src_lang: str | None,
        tgt_lang: str | None,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Translation pipeline inputs: ``src_lang`` text, ``forced_bos_token_id`` of ``tgt_lang``."""
        if src_lang is None or tgt_lang is None:
            raise ValueError(f"translation with a {type(self).__name__} needs src_lang and tgt_lang")
        self.src_lang = src_lang
        inputs = self(raw_inputs, add_special_tokens=True, return_tensors=return_tensors, **kwargs)
        inputs["forced_bos_token_id"] = self._lang_id(tgt_lang, "tgt_lang")
        return inputs


def _mask_lstrip(kwargs: dict[str, Any]) -> None:
    mask = kwargs.get("mask_token")
    if isinstance(mask, str):  # the mask token takes the space before it, as in fairseq
        kwargs["mask_token"] = AddedToken(mask, lstrip=True, rstrip=False)


class MBartTokenizer(_LanguageCodesTokenizer):
    """mBART SentencePiece tokenizer (``sentencepiece.bpe.model`` or ``tokenizer.json``) with fairseq ids and
    25 language codes: sources are ``A </s> src_lang``, targets ``A </s> tgt_lang``."""

    _family = "mbart"
    _codes = MBART_LANGUAGE_CODES

    def _prepare_special_tokens(self, kwargs: dict[str, Any]) -> None:
        _mask_lstrip(kwargs)
        extras: list[Any] = list(self._codes)
        given = kwargs.get("additional_special_tokens")
        if given is not None:
            extras += [token for token in given if token not in extras]
        kwargs["additional_special_tokens"] = extras

    def _layout(self, code: str) -> tuple[list[int], list[int]]:
        return [], [self.eos_token_id, self.cur_lang_code]


class MBart50Tokenizer(_LanguageCodesTokenizer):
    """mBART-50 SentencePiece tokenizer with 52 language codes: ``src_lang A </s>``, ``tgt_lang A </s>``."""

    _family = "mbart50"
    _codes = MBART50_LANGUAGE_CODES

    def _prepare_special_tokens(self, kwargs: dict[str, Any]) -> None:
        _mask_lstrip(kwargs)
        kwargs["additional_special_tokens"] = list(
            kwargs.pop("additional_special_tokens", None) or []
        ) + list(self._codes)

    def _finish_init(self) -> None:
        # The codes are extra special tokens even when the checkpoint's list of them left some out.
        present = {str(token) for token in self._extra_special_tokens}
        self._extra_special_tokens += [
            AddedToken(code, special=True) for code in self._codes if code not in present
        ]
        super()._finish_init()

    def _layout(self, code: str) -> tuple[list[int], list[int]]:
        return [self.cur_lang_code], [self.eos_token_id]


MBartTokenizerFast = MBartTokenizer
MBart50TokenizerFast = MBart50Tokenizer
PegasusTokenizerFast = PegasusTokenizer
T5TokenizerFast = T5Tokenizer

SEQ2SEQ_FAMILY_CLASSES: dict[str, type[FamilyTokenizer]] = {
    "t5": T5Tokenizer,
    "mbart": MBartTokenizer,
    "mbart50": MBart50Tokenizer,
    "pegasus": PegasusTokenizer,
}
