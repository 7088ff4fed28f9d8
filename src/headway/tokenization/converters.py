"""Build a ``tokenizers.Tokenizer`` backend from checkpoint files.

A checkpoint carries its tokenizer either as a ``tokenizer.json`` or as vocabulary files only
(``vocab.txt`` for WordPiece, ``vocab.json`` + ``merges.txt`` for byte-level BPE, a SentencePiece
``*.model``). Each family (see ``family_specs``) fixes the normalizer, pre-tokenizer, decoder and
post-processor; this module builds them so that ids and offsets equal the reference library's.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as BackendTokenizer
from tokenizers.models import BPE, Unigram, WordPiece

from ..jsonfile import check_field, parse_json, read_json
from .family_specs import FAMILIES
from .sentencepiece_model import SPM_CONTROL, SPM_USER_DEFINED, load_sentencepiece_model
from .spm_seq2seq import (
    SPM_SEQ2SEQ_FAMILIES,
    build_backend,
    vocabulary_from_sentencepiece,
    vocabulary_from_tokenizer_json,
)

logger = logging.getLogger(__name__)


def generate_merges(
    vocab: dict[str, int],
    vocab_scores: dict[str, float] | None = None,
    skip_tokens: set[str] | None = None,
) -> list[tuple[str, str]]:
    """Recover BPE merges from a vocabulary, ordered like the reference converter.

    Every token that splits into two tokens of the vocabulary yields a merge. Merges are ranked by
    the merged token's id (or by descending score when ``vocab_scores`` is given), then by the
    lengths of the two halves.
    """
    skip = skip_tokens or set()
    descending = vocab_scores is not None
    ranking = vocab_scores if vocab_scores is not None else vocab
    found: list[tuple[str, str, float]] = []
    for token, rank in ranking.items():
        if token in skip:
            continue
        pairs = []
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab and left not in skip and right not in skip:
                pairs.append((left, right, rank))
        if len(pairs) > 1:
            pairs.sort(key=lambda item: (vocab[item[0]], vocab[item[1]]))
        found.extend(pairs)
    found.sort(key=lambda item: (item[2], len(item[0]), len(item[1])), reverse=descending)
    return [(left, right) for left, right, _ in found]


@dataclass
class TokenizerJson:
    """A ``tokenizer.json``, parsed once by the tokenizers library.

    What loading needs besides the parsed tokenizer (added tokens, baked-in padding and truncation,
    the model kind, a precompiled charsmap) is read back from it, so the vocabulary and merges never
    become Python objects: for MiniLM's 30k-entry file that halves the cost of reading it.
    """

    path: Path
    backend: BackendTokenizer  # the file exactly as written

    @classmethod
    def read(cls, path: Path) -> TokenizerJson:
        try:
            backend = BackendTokenizer.from_file(str(path))
        except Exception as err:  # the tokenizers library raises plain Exceptions
            read_json(path, what="tokenizer.json")  # says what is wrong in JSON terms, if JSON is the trouble
            raise ValueError(
                f"{str(path)!r} is not a tokenizer.json the tokenizers library can read: {err}"
            ) from err
        return cls(path, backend)

    @cached_property
    def text(self) -> str:
        """The file's content (read only where a decision needs the raw text)."""
        return self.path.read_text(encoding="utf-8")

    @property
    def model_kind(self) -> str:
        """``WordPiece``, ``BPE``, ``Unigram`` or ``WordLevel``."""
        return type(self.backend.model).__name__

    def added_tokens(self) -> dict[int, AddedToken]:
        """The file's ``added_tokens`` by id."""
        return self.backend.get_added_tokens_decoder()

    def charsmap(self) -> str | None:
        """The base64 precompiled charsmap of a ``Precompiled`` normalizer, if any."""
        normalizer = self.backend.normalizer
        if normalizer is None:
            return None
        node = json.loads(normalizer.__getstate__())
        items = node.get("normalizers", []) if node.get("type") == "Sequence" else [node]
        for item in items:
            if item and item.get("type") == "Precompiled" and item.get("precompiled_charsmap"):
                return item["precompiled_charsmap"]
        return None

    def model_json(self) -> dict[str, Any]:
        """The file's ``model`` entry as JSON (parses the whole file: only where nothing else serves)."""
        # The tokenizers library has parsed this text already (its parser bounds the nesting).
        data = parse_json(self.text, source=self.path, what="tokenizer.json", max_depth=None)
        return check_field(
            data.get("model") or {}, dict, source=self.path, field="model", what="tokenizer.json"
        )


def _family_model(family: str, tokenizer_json: TokenizerJson, kwargs: dict[str, Any]) -> Any:
    """The backend model a family builds from the vocabulary of a ``tokenizer.json`` model.

    WordPiece and BPE reuse the model the tokenizers library parsed, with the settings the family's
    reference class would pass; Unigram is rebuilt from the file's vocabulary and scores.
    """
    if family in ("bert", "distilbert", "mpnet"):
        model = tokenizer_json.backend.model
        model.unk_token = str(kwargs.get("unk_token"))
        model.continuing_subword_prefix = "##"
        model.max_input_chars_per_word = 100
        return model
    if family in ("gpt2", "roberta", "llama"):
        bytelevel = family != "llama"
        model = tokenizer_json.backend.model
        model.dropout = None
        model.unk_token = None
        model.fuse_unk = not bytelevel
        model.byte_fallback = not bytelevel
        model.ignore_merges = False
        model.continuing_subword_prefix = "" if bytelevel else None
        model.end_of_word_suffix = "" if bytelevel else None
        return model
    if family == "xlm_roberta":
        return Unigram([tuple(piece) for piece in tokenizer_json.model_json()["vocab"]], 3, False)
    if family == "deberta_v2":
        pieces = [tuple(piece) for piece in tokenizer_json.model_json()["vocab"]]
        return Unigram(pieces, _deberta_unk_id(pieces, kwargs, kwargs.get("unk_id", 1)), False)
    raise ValueError(f"unknown tokenizer family {family!r}")


def _deberta_unk_id(pieces: list[tuple[str, float]], kwargs: dict[str, Any], default: int) -> int:
    """Id of DeBERTa-v2's unknown piece: where ``(unk_token, 0.0)`` sits in the vocabulary, else ``default``.

    The reference class looks the piece up with its score, so an unknown token scored otherwise keeps
    the default (the trainer's ``unk_id`` for a SentencePiece file, else ``unk_id`` from the config or 1).
    """
    wanted = (str(kwargs.get("unk_token")), 0.0)
    for index, piece in enumerate(pieces):
        if piece == wanted:
            return index
    return int(default)


def _flag(
    kwargs: dict[str, Any], name: str, default: bool | None, *, none_allowed: bool = False
) -> bool | None:
    """A true/false tokenizer setting handed to the tokenizers library, which refuses anything else with a
    message naming neither the setting nor its file (the reference fails there too)."""
    value = kwargs.get(name, default)
    if isinstance(value, bool) or (value is None and none_allowed):
        return value
    allowed = "true, false or null" if none_allowed else "true or false"
    raise ValueError(
        f"the tokenizer setting {name} (from tokenizer_config.json or a keyword argument) must be {allowed}, "
        f"got {value!r:.80}"
    )


def set_family_pipeline(
    family: str, backend: BackendTokenizer, kwargs: dict[str, Any], charsmap: str | bytes | None = None
) -> None:
    """Set the normalizer, pre-tokenizer and decoder a family uses (not the post-processor)."""
    if family in ("bert", "distilbert", "mpnet"):
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=_flag(kwargs, "tokenize_chinese_chars", True),
            strip_accents=_flag(kwargs, "strip_accents", None, none_allowed=True),
            lowercase=_flag(kwargs, "do_lower_case", True),
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
    elif family in ("gpt2", "roberta"):
        backend.normalizer = None
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=bool(kwargs.get("add_prefix_space"))
        )
        backend.decoder = decoders.ByteLevel()
    elif family == "llama":
        add_prefix_space = kwargs.get("add_prefix_space")
        add_prefix_space = True if add_prefix_space is None else bool(add_prefix_space)
        scheme = ("always" if kwargs.get("legacy") else "first") if add_prefix_space else "never"
        backend.normalizer = None
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=False)
        steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
        if add_prefix_space:
            steps.append(decoders.Strip(content=" ", left=1))
        backend.decoder = decoders.Sequence(steps)
    elif family == "xlm_roberta":
        scheme = "always" if kwargs.get("add_prefix_space", True) else "never"
        if charsmap:
            if isinstance(charsmap, str):
                import base64

                charsmap = base64.b64decode(charsmap)
            backend.normalizer = normalizers.Precompiled(charsmap)
        else:
            backend.normalizer = None
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.WhitespaceSplit(),
                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme),
            ]
        )
        backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)
    elif family == "deberta_v2":
        # The reference ignores a SentencePiece charsmap here: whitespace runs, NFC and a right strip.
        steps = [normalizers.Lowercase()] if kwargs.get("do_lower_case") else []
        steps += [
            normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " "),
            normalizers.NFC(),
            normalizers.Strip(left=False, right=True),
        ]
        backend.normalizer = normalizers.Sequence(steps)
        scheme = "always" if kwargs.get("add_prefix_space") else "first"
        splits = [pre_tokenizers.Punctuation(behavior="isolated")] if kwargs.get("split_by_punct") else []
        metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)
        backend.pre_tokenizer = pre_tokenizers.Sequence([*splits, metaspace])
        backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)


def backend_from_tokenizer_json(
    tokenizer_json: TokenizerJson, family: str, kwargs: dict[str, Any]
) -> tuple[BackendTokenizer, str]:
    """Build the backend from ``tokenizer.json`` the way the family's reference class does.

    The generic family uses the file as it is. Other families keep the file's vocabulary, merges
    and post-processor, and rebuild the rest; the file's added tokens then come back through
    ``added_tokens_decoder``.

    Args:
        tokenizer_json: The parsed file.
        family: Tokenizer family.
        kwargs: Tokenizer keyword arguments (family defaults already set); gets pad token and
            padding/truncation sides from the file's baked-in settings.

    Returns:
        The backend and the family actually used (generic when the file's model does not fit).
    """
    parsed = tokenizer_json.backend
    truncation, padding = parsed.truncation, parsed.padding
    if family != "generic":
        wanted = FAMILIES[family].model
        if tokenizer_json.model_kind != wanted:
            logger.warning(
                "%s is a %s tokenizer.json but the config names %s (a %s tokenizer); using the file as is",
                tokenizer_json.path,
                tokenizer_json.model_kind,
                FAMILIES[family].class_name,
                wanted,
            )
            family = "generic"
    if family == "generic":
        backend = parsed
    elif family in SPM_SEQ2SEQ_FAMILIES:
        backend = build_backend(family, vocabulary_from_tokenizer_json(tokenizer_json), kwargs)
        backend.post_processor = parsed.post_processor  # the family class sets its own afterwards
    else:
        backend = BackendTokenizer(_family_model(family, tokenizer_json, kwargs))
        backend.post_processor = parsed.post_processor
        set_family_pipeline(family, backend, kwargs, tokenizer_json.charsmap())
    # Keep the baked-in padding/truncation only as defaults for sides and pad token.
    if truncation is not None:
        kwargs.setdefault("truncation_side", str(truncation.get("direction", "right")).lower())
    if padding is not None:
        if padding.get("pad_token") is not None:
            kwargs.setdefault("pad_token", padding["pad_token"])
        kwargs.setdefault("padding_side", str(padding.get("direction", "right")).lower())
    backend.no_truncation()
    backend.no_padding()
    return backend, family


def backend_from_vocab_files(files: dict[str, Path], family: str, kwargs: dict[str, Any]) -> BackendTokenizer:
    """Build the backend from vocabulary files (no ``tokenizer.json``).

    Args:
        files: Found vocabulary files by name (``vocab.txt``; ``vocab.json`` and ``merges.txt``;
            or one SentencePiece ``*.model`` under the key ``"spm"``).
        family: Tokenizer family.
        kwargs: Tokenizer keyword arguments; SentencePiece loading adds its special tokens to them.
    """
    if "vocab.txt" in files and family in ("bert", "distilbert", "mpnet"):
        vocab = _read_wordpiece_vocab(files["vocab.txt"])
        unk = str(kwargs.get("unk_token"))
        if unk not in vocab:  # the reference loads it too; text it cannot split then fails (see call.py)
            logger.warning(
                "vocab.txt %r has no line %r (the unknown token): text with a word it cannot split into its "
                "pieces will fail to tokenize",
                str(files["vocab.txt"]),
                unk,
            )
        backend = BackendTokenizer(WordPiece(vocab, unk_token=unk))
        set_family_pipeline(family, backend, kwargs)
        return backend
    if "vocab.json" in files and family in ("gpt2", "roberta"):
        vocab, merges = BPE.read_file(str(files["vocab.json"]), str(files["merges.txt"]))
        backend = BackendTokenizer(_byte_level_bpe(vocab, merges))
        set_family_pipeline(family, backend, kwargs)
        return backend
    if "spm" in files and family in SPM_SEQ2SEQ_FAMILIES:
        return build_backend(family, vocabulary_from_sentencepiece(files["spm"], family, kwargs), kwargs)
    if "spm" in files and family in ("llama", "deberta_v2", "generic"):
        return _backend_from_sentencepiece(files["spm"], family, kwargs)
    raise ValueError(f"cannot build a {FAMILIES[family].class_name} from {sorted(files)}")


def _read_wordpiece_vocab(path: Path) -> dict[str, int]:
    """vocab.txt: one token per line, the line number its id (as the tokenizers library reads it), after
    checking that the file is UTF-8 (the library's own error names neither the file nor the place)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ValueError(
            f"vocab.txt {str(path)!r} is not UTF-8 text: byte 0x{raw[err.start]:02x} on line {line} cannot "
            f"be decoded ({err.reason})"
        ) from None
    return WordPiece.read_file(str(path))


def _byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]]) -> BPE:
    """The BPE model of the byte-level families (GPT-2, RoBERTa) built from vocabulary files."""
    return BPE(
        vocab, merges, dropout=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False
    )


def backend_from_vocab(family: str, vocab: Any, merges: Any, kwargs: dict[str, Any]) -> BackendTokenizer:
    """Build a family's backend from a vocabulary given to its class (``BertTokenizer("vocab.txt")``).

    Args:
        family: Tokenizer family (not the generic one).
        vocab: A file path (``vocab.txt``, ``vocab.json``, a SentencePiece ``.model``), a token -> id
            dict (WordPiece and byte-level BPE families) or a list of ``(piece, score)`` (DeBERTa-v2).
        merges: The merges of a byte-level BPE family: a ``merges.txt`` path or a list of pairs
            (``("a", "b")`` or ``"a b"``).
        kwargs: Tokenizer keyword arguments (family defaults already set).

    Raises:
        FileNotFoundError: A vocabulary or merges file does not exist.
        ValueError: Merges missing for a BPE family, or given to a family without merges.
        TypeError: A vocabulary of a kind the family cannot use.
    """
    spec = FAMILIES[family]
    byte_level = family in ("gpt2", "roberta")
    if merges is not None and not byte_level:
        raise ValueError(f"a {spec.class_name} has no BPE merges; got merges={merges!r}")
    if byte_level and merges is None:
        raise ValueError(
            f"a {spec.class_name} needs merges (a merges.txt path or a list of pairs) with its vocab"
        )
    if isinstance(vocab, (str, os.PathLike)):
        paths = [Path(vocab)] + ([Path(merges)] if isinstance(merges, (str, os.PathLike)) else [])
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{spec.class_name} vocabulary file {str(path)!r} does not exist")
        if spec.model == "WordPiece":
            return backend_from_vocab_files({"vocab.txt": paths[0]}, family, kwargs)
        if byte_level and len(paths) == 2:
            return backend_from_vocab_files({"vocab.json": paths[0], "merges.txt": paths[1]}, family, kwargs)
        if paths[0].suffix == ".model" and family in ("llama", "deberta_v2"):
            return backend_from_vocab_files({"spm": paths[0]}, family, kwargs)
        raise TypeError(f"a {spec.class_name} cannot be built from the file {str(paths[0])!r}")
    if spec.model == "WordPiece" and isinstance(vocab, Mapping):
        backend = BackendTokenizer(WordPiece(dict(vocab), unk_token=str(kwargs.get("unk_token"))))
    elif byte_level and isinstance(vocab, Mapping) and isinstance(merges, (list, tuple)):
        pairs = [tuple(pair.split(" ")) if isinstance(pair, str) else tuple(pair) for pair in merges]
        backend = BackendTokenizer(_byte_level_bpe(dict(vocab), pairs))
    elif family == "deberta_v2" and isinstance(vocab, (list, tuple)):
        pieces = [(str(piece), float(score)) for piece, score in vocab]
        backend = BackendTokenizer(
            Unigram(pieces, _deberta_unk_id(pieces, kwargs, kwargs.get("unk_id", 1)), False)
        )
    else:
        raise TypeError(
            f"a {spec.class_name} cannot be built from a vocabulary of type {type(vocab).__name__}"
            + (f" with merges of type {type(merges).__name__}" if merges is not None else "")
            + "; pass a vocabulary file path"
        )
    set_family_pipeline(family, backend, kwargs)
    return backend


def _backend_from_sentencepiece(path: Path, family: str, kwargs: dict[str, Any]) -> BackendTokenizer:
    spm = load_sentencepiece_model(path)
    unigram = family == "generic" and spm.model_type == 1
    extra = [
        AddedToken(piece, normalized=False, special=kind == SPM_CONTROL)
        for piece, _, kind in spm.pieces
        if kind in (SPM_CONTROL, SPM_USER_DEFINED)
    ]
    kwargs["additional_special_tokens"] = extra
    if family == "deberta_v2":
        pieces = [(piece, score) for piece, score, _ in spm.pieces]
        backend = BackendTokenizer(Unigram(pieces, _deberta_unk_id(pieces, kwargs, spm.unk_id), False))
        set_family_pipeline(family, backend, kwargs)
        return backend
    if unigram:
        vocab_list = [(piece, score) for piece, score, _ in spm.pieces]
        vocab_list = _rename_placeholders_list(vocab_list, kwargs.get("added_tokens_decoder") or {})
    else:
        vocab = {piece: index for index, (piece, _, _) in enumerate(spm.pieces)}
        merges = generate_merges(vocab)
    if family == "llama":
        backend = BackendTokenizer(BPE(vocab, merges, fuse_unk=True, byte_fallback=True, dropout=None))
        set_family_pipeline(family, backend, kwargs)
        return backend
    # Generic: a plain SentencePiece pipeline, with special tokens from the trainer spec.
    if unigram:
        backend = BackendTokenizer(Unigram(vocab_list, unk_id=spm.unk_id, byte_fallback=spm.byte_fallback))
    else:
        vocab = _rename_placeholders_dict(vocab, kwargs.get("added_tokens_decoder") or {})
        backend = BackendTokenizer(
            BPE(
                vocab,
                merges,
                unk_token=spm.unk_piece,
                fuse_unk=True,
                byte_fallback=spm.byte_fallback,
                dropout=None,
            )
        )
    steps = [normalizers.Replace(" ", "▁")]
    if spm.precompiled_charsmap:
        steps.insert(0, normalizers.Precompiled(spm.precompiled_charsmap))
    backend.normalizer = normalizers.Sequence(steps)
    if spm.byte_fallback:
        backend.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
        )
    else:
        backend.decoder = decoders.Sequence([decoders.Replace("▁", " ")])
    if spm.bos_id >= 0:
        kwargs.setdefault("bos_token", spm.bos_piece or "<s>")
    if spm.eos_id >= 0:
        kwargs.setdefault("eos_token", spm.eos_piece or "</s>")
    if spm.unk_id >= 0:
        kwargs.setdefault("unk_token", spm.unk_piece or "<unk>")
    return backend


def _rename_placeholders_dict(vocab: dict[str, int], added: dict[int, Any]) -> dict[str, int]:
    """Give vocabulary slots the names ``added_tokens_decoder`` assigns them (placeholder pieces)."""
    if not added:
        return vocab
    by_id = {index: token for token, index in vocab.items()}
    for index, new in added.items():
        index, new = int(index), str(new)
        current = by_id.get(index)
        if current and current != new and new not in vocab:
            vocab[new] = vocab.pop(current)
            by_id[index] = new
    return vocab


def _rename_placeholders_list(
    vocab: list[tuple[str, float]], added: dict[int, Any]
) -> list[tuple[str, float]]:
    if not added:
        return vocab
    present = {piece for piece, _ in vocab}
    for index, new in added.items():
        index, new = int(index), str(new)
        if 0 <= index < len(vocab) and vocab[index][0] != new and new not in present:
            present.discard(vocab[index][0])
            vocab[index] = (new, vocab[index][1])
            present.add(new)
    return vocab


def family_post_processor(family: str, tok: Any, kwargs: dict[str, Any]) -> Any | None:
    """The post-processor a family installs once its special tokens are known (None: keep current).

    Args:
        family: Tokenizer family.
        tok: The headway tokenizer being built (for token ids).
        kwargs: The keyword arguments the tokenizer was built with.
    """
    if family in ("bert", "distilbert", "deberta_v2"):
        # [CLS] A [SEP] (B [SEP]); ids the vocabulary lacks default to the family's usual slots.
        default_cls, default_sep = (0, 0) if family == "deberta_v2" else (2, 3)
        cls, sep = str(tok.cls_token), str(tok.sep_token)
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else default_cls
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else default_sep
        return processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, cls_id), (sep, sep_id)],
        )
    if family == "mpnet":
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else 0
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else 2
        return processors.RobertaProcessing(
            (str(tok.sep_token), sep_id), (str(tok.cls_token), cls_id), True, False
        )
    if family == "roberta":
        return processors.RobertaProcessing(
            (str(kwargs.get("sep_token")), tok.sep_token_id),
            (str(kwargs.get("cls_token")), tok.cls_token_id),
            bool(kwargs.get("trim_offsets", True)),
            bool(kwargs.get("add_prefix_space", False)),
        )
    if family == "xlm_roberta":
        bos, eos = str(kwargs.get("bos_token")), str(kwargs.get("eos_token"))
        return processors.TemplateProcessing(
            single=[bos, "$A", eos],
            pair=[bos, "$A", eos, eos, "$B", eos],
            special_tokens=[(bos, tok.bos_token_id), (eos, tok.eos_token_id)],
        )
    return None


def family_special_token_objects(family: str, kwargs: dict[str, Any]) -> None:
    """Turn string special tokens into the AddedToken objects some families use."""
    if family != "mpnet":
        return
    for key in ("bos_token", "eos_token", "sep_token", "cls_token", "unk_token", "pad_token"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = AddedToken(kwargs[key], lstrip=False, rstrip=False)
    if isinstance(kwargs.get("mask_token"), str):
        kwargs["mask_token"] = AddedToken(kwargs["mask_token"], lstrip=True, rstrip=False)
