"""Backends of the encoder-decoder SentencePiece families: T5, mBART, mBART-50 and Pegasus.

Each family lays its SentencePiece pieces out in its own id order (the *vocabulary layout*) and wraps
them in a Unigram model with a fixed normalizer, pre-tokenizer and decoder, as the reference classes of
transformers v5 do:

- T5: the pieces as trained, then the ``<extra_id_N>`` sentinels numbered from the end
  (``<extra_id_0>`` is the last id); Metaspace on whitespace-split words, the file's charsmap.
- mBART / mBART-50 (fairseq order): ``<s> <pad> </s> <unk>``, the pieces after the trainer's first three,
  the language codes, ``<mask>``. mBART ignores the charsmap; mBART-50 keeps it and folds runs of spaces.
- Pegasus: ``<pad> </s>``, the two mask tokens, ``<unk_2>``..``<unk_{offset-1}>``, then the pieces
  after the trainer's ``<pad> </s>``; ``<unk>`` lands at ``offset + 2``.

The layout comes from a SentencePiece ``.model`` file or from the vocabulary of a ``tokenizer.json``
(already laid out). The post-processor is set by the family class once its special tokens are known.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers
from tokenizers import Tokenizer as BackendTokenizer
from tokenizers.models import Unigram

from .sentencepiece_model import SPM_CONTROL, SPM_USER_DEFINED, load_sentencepiece_model

SPM_SEQ2SEQ_FAMILIES = ("t5", "mbart", "mbart50", "pegasus")

# fairseq's language codes, in their vocabulary order: mBART's 25, and the 27 that mBART-50 appends.
MBART_LANGUAGE_CODES = [
    "ar_AR",
    "cs_CZ",
    "de_DE",
    "en_XX",
    "es_XX",
    "et_EE",
    "fi_FI",
    "fr_XX",
    "gu_IN",
    "hi_IN",
    "it_IT",
    "ja_XX",
    "kk_KZ",
    "ko_KR",
    "lt_LT",
    "lv_LV",
    "my_MM",
    "ne_NP",
    "nl_XX",
    "ro_RO",
    "ru_RU",
    "si_LK",
    "tr_TR",
    "vi_VN",
    "zh_CN",
]
MBART50_LANGUAGE_CODES = [
    *MBART_LANGUAGE_CODES,
    "af_ZA",
    "az_AZ",
    "bn_IN",
    "fa_IR",
    "he_IL",
    "hr_HR",
    "id_ID",
    "ka_GE",
    "km_KH",
    "mk_MK",
    "ml_IN",
    "mn_MN",
    "mr_IN",
    "pl_PL",
    "ps_AF",
    "pt_XX",
    "sv_SE",
    "sw_KE",
    "ta_IN",
    "te_IN",
    "th_TH",
    "tl_XX",
    "uk_UA",
    "ur_PK",
    "xh_ZA",
    "gl_ES",
    "sl_SI",
]

Pieces = list[tuple[str, float]]


@dataclass
class SpmVocabulary:
    """A family's vocabulary layout and the SentencePiece normalization table that goes with it."""

    pieces: Pieces
    charsmap: bytes | None = None


# ---- vocabulary layouts from a SentencePiece model ------------------------------------------------


def _t5_layout(pieces: Pieces, kwargs: dict[str, Any]) -> Pieces:
    extra_ids = int(kwargs.get("extra_ids", 100))
    return pieces + [(f"<extra_id_{index}>", 0.0) for index in range(extra_ids - 1, -1, -1)]


def _fairseq_layout(codes: list[str], first: str) -> Callable[[Pieces, dict[str, Any]], Pieces]:
    """mBART's layout: fairseq's four specials, the trainer's pieces after its <unk> <s> </s>, codes, mask."""

    def layout(pieces: Pieces, kwargs: dict[str, Any]) -> Pieces:
        specials = [str(kwargs.get(first, "<s>")), str(kwargs.get("pad_token", "<pad>"))]
        specials += [str(kwargs.get("eos_token", "</s>")), str(kwargs.get("unk_token", "<unk>"))]
        laid_out = [(token, 0.0) for token in specials] + list(pieces[3:])
        laid_out += [(code, 0.0) for code in codes]
        return laid_out + [(str(kwargs.get("mask_token", "<mask>")), 0.0)]

    return layout


def _pegasus_layout(pieces: Pieces, kwargs: dict[str, Any]) -> Pieces:
    # The reference's conversion defaults the two masks the other way round from its class (<mask_1> first)
    # and reads whatever the checkpoint names; kept as it is so that ids match.
    mask = str(kwargs.get("mask_token", "<mask_1>"))
    mask_sent = str(kwargs.get("mask_token_sent", "<mask_2>"))
    laid_out = [(str(kwargs.get("pad_token", "<pad>")), 0.0), (str(kwargs.get("eos_token", "</s>")), 0.0)]
    if mask != "None":
        laid_out.append((mask, 0.0))
    if mask_sent not in ("None", mask):
        laid_out.append((mask_sent, 0.0))
    laid_out += [(f"<unk_{index}>", -100.0) for index in range(2, int(kwargs.get("offset", 103)))]
    return laid_out + list(pieces[2:])


_LAYOUTS: dict[str, Callable[[Pieces, dict[str, Any]], Pieces]] = {
    "t5": _t5_layout,
    "mbart": _fairseq_layout(MBART_LANGUAGE_CODES, "bos_token"),
    "mbart50": _fairseq_layout(MBART50_LANGUAGE_CODES, "cls_token"),
    "pegasus": _pegasus_layout,
}


def vocabulary_from_sentencepiece(
    path: str | os.PathLike, family: str, kwargs: dict[str, Any]
) -> SpmVocabulary:
    """Read a SentencePiece ``.model`` and lay its pieces out for ``family``.

    As the reference's conversion does, the trainer's control and user-defined pieces become
    ``additional_special_tokens`` and its ``unk_id`` is recorded (both in ``kwargs``).
    """
    spm = load_sentencepiece_model(path)
    kwargs["unk_id"] = spm.unk_id
    kwargs["additional_special_tokens"] = [
        AddedToken(piece, normalized=False, special=kind == SPM_CONTROL)
        for piece, _, kind in spm.pieces
        if kind in (SPM_CONTROL, SPM_USER_DEFINED)
    ]
    pieces = [(piece, score) for piece, score, _ in spm.pieces]
    return SpmVocabulary(_LAYOUTS[family](pieces, kwargs), spm.precompiled_charsmap or None)


def vocabulary_from_tokenizer_json(tokenizer_json: Any) -> SpmVocabulary:
    """The (already laid out) Unigram vocabulary and charsmap of a ``converters.TokenizerJson``."""
    pieces = [(str(piece), float(score)) for piece, score in tokenizer_json.model_json()["vocab"]]
    charsmap = tokenizer_json.charsmap()
    return SpmVocabulary(pieces, base64.b64decode(charsmap) if charsmap else None)


def vocabulary_from_argument(
    vocab: Any, family: str, kwargs: dict[str, Any], class_name: str
) -> SpmVocabulary:
    """The vocabulary given to a family class: a ``.model`` path or a list of ``(piece, score)``.

    Raises:
        FileNotFoundError: The path does not exist.
        TypeError: Anything else.
    """
    if isinstance(vocab, (str, os.PathLike)):
        path = Path(vocab)
        if not path.is_file():
            raise FileNotFoundError(f"{class_name} vocabulary file {str(path)!r} does not exist")
        return vocabulary_from_sentencepiece(path, family, kwargs)
    if isinstance(vocab, (list, tuple)) and all(
        isinstance(item, (list, tuple)) and len(item) == 2 for item in vocab
    ):
        pieces = [(str(piece), float(score)) for piece, score in vocab]
        if family == "mbart50" and not any(piece in MBART50_LANGUAGE_CODES for piece, _ in pieces):
            # A SentencePiece-ordered list: the class lays it out in fairseq order itself.
            pieces = _LAYOUTS["mbart50"](pieces, kwargs)
        return SpmVocabulary(pieces)
    raise TypeError(
        f"a {class_name} is built from a SentencePiece .model path or a list of (piece, score) pairs, "
        f"got {type(vocab).__name__}"
    )


# ---- backends ---------------------------------------------------------------------------------


def _metaspace(whitespace_split: bool) -> tuple[Any, Any]:
    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    pre = (
        pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), metaspace])
        if whitespace_split
        else metaspace
    )
    return pre, decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)


def _pegasus_unk_id(pieces: Pieces, kwargs: dict[str, Any]) -> int:
    unk = (str(kwargs.get("unk_token", "<unk>")), 0.0)
    for index in range(1, len(pieces)):  # the reference looks it up from id 1 on
        if pieces[index] == unk:
            return index
    raise ValueError(
        f"the Pegasus vocabulary has no unknown token {unk[0]!r} with score 0.0; pass unk_token=... naming it"
    )


def build_backend(family: str, vocabulary: SpmVocabulary, kwargs: dict[str, Any]) -> BackendTokenizer:
    """The Unigram backend of ``family`` over a laid-out vocabulary (no post-processor yet)."""
    pieces, charsmap = vocabulary.pieces, vocabulary.charsmap
    if not pieces:
        raise ValueError(f"the {family} vocabulary is empty")
    unk_id = {"t5": 2, "mbart": 3, "mbart50": 3}.get(family)
    if unk_id is None:
        unk_id = _pegasus_unk_id(pieces, kwargs)
    if unk_id >= len(pieces):
        raise ValueError(
            f"the {family} vocabulary has {len(pieces)} pieces, too few for its <unk> id {unk_id}"
        )
    backend = BackendTokenizer(Unigram(pieces, unk_id=unk_id, byte_fallback=False))
    precompiled = [normalizers.Precompiled(charsmap)] if charsmap else []
    spaces = normalizers.Replace(Regex(r" {2,}"), " ")
    if family == "t5":
        backend.normalizer = precompiled[0] if precompiled else None
    elif family == "mbart":
        backend.normalizer = None  # the reference's class leaves the charsmap out
    elif family == "mbart50":
        backend.normalizer = normalizers.Sequence([*precompiled, spaces])
    else:  # pegasus
        steps = precompiled or [normalizers.Replace(Regex(r"\n"), " ")]
        backend.normalizer = normalizers.Sequence([*steps, spaces])
    backend.pre_tokenizer, backend.decoder = _metaspace(whitespace_split=family in ("t5", "mbart"))
    return backend
