"""Marian (OPUS-MT) tokenizer: separate source and target SentencePiece models over one id vocabulary.

A Marian checkpoint ships ``source.spm`` and ``target.spm`` (SentencePiece Unigram models) and
``vocab.json`` (piece -> id, shared by both sides), or with ``separate_vocabs`` a ``target_vocab.json``
for the target side. Text is cut into pieces by the side's SentencePiece model, pieces become ids
through the vocabulary (a piece the vocabulary lacks is ``<unk>``), and ``</s>`` ends every sequence.
A leading language code such as ``>>fr<<`` (multilingual models) is one token.

The reference class runs the ``sentencepiece`` library. Here each side is a Unigram backend of the
``tokenizers`` library laid out in the vocabulary's id order: the side's pieces keep their SentencePiece
scores, the other entries can never be picked (specials and language codes are matched as added tokens
first), so the pieces are SentencePiece's; a run of characters the side lacks comes out as one unknown
piece whose text is then looked up in the vocabulary, as the reference does. Decoding follows the
reference: the pieces between special tokens are joined as SentencePiece joins them.

Known differences from the reference (none met on ordinary text):

- the tokenizers library applies a SentencePiece charsmap per grapheme cluster, so a few rare sequences
  normalize differently (a no-break space followed by a zero-width joiner loses the joiner);
- a language code is one token anywhere in the text (the reference: only at the start), and a leading
  ``>>xx<<`` the vocabulary lacks is encoded as text (the reference: one ``<unk>``);
- truncating a pair to an odd length leaves the extra token to the longer text (the reference: the first);
- pieces of a SentencePiece model missing from the vocabulary are never produced (a warning says so;
  the reference encodes them as ``<unk>``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as BackendTokenizer
from tokenizers.models import Unigram

from ..jsonfile import read_json
from .decoding import _to_python_ids
from .family_specs import FAMILIES
from .sentencepiece_model import (
    SPM_CONTROL,
    SPM_NORMAL,
    SPM_UNKNOWN,
    SPM_USER_DEFINED,
    load_sentencepiece_model,
)
from .tokenizer import Tokenizer

logger = logging.getLogger(__name__)

SOURCE_SPM, TARGET_SPM, VOCAB_FILE, TARGET_VOCAB_FILE = (
    "source.spm",
    "target.spm",
    "vocab.json",
    "target_vocab.json",
)
# Score of vocabulary entries a side's SentencePiece model does not have: low enough that the Viterbi
# search takes any path of real pieces first, small enough that path scores keep their precision.
_NEVER = -1e6
_UNK_SURFACE = " \u2047 "  # what SentencePiece decodes its <unk> piece to
# File arguments a tokenizer_config.json may name: the files always come from the checkpoint itself.
_PATH_ARGUMENTS = (
    "source_spm",
    "target_spm",
    "vocab",
    "target_vocab_file",
    "tokenizer_file",
    "tokenizer_object",
)


class _SideModel:
    """One side: its SentencePiece model (bytes, for saving; piece kinds, for decoding) and vocabulary."""

    def __init__(self, spm_path: str | os.PathLike, vocab: dict[str, int], what: str) -> None:
        self.path = Path(spm_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"Marian {what} SentencePiece model {str(self.path)!r} does not exist")
        self.data = self.path.read_bytes()
        self.spm = load_sentencepiece_model(self.path)
        self.kinds = {piece: kind for piece, _, kind in self.spm.pieces}
        self.vocab = vocab
        self.what = what
        # Language codes (">>fr<<") of the vocabulary: one token each, matched before the model sees the text.
        self.codes = [token for token in vocab if token.startswith(">>") and token.endswith("<<")]

    def backend(self, unk_token: str, keep: set[str]) -> BackendTokenizer:
        """A Unigram backend over the vocabulary, segmenting as this side's SentencePiece model.

        Args:
            unk_token: The unknown token.
            keep: Tokens that must keep their names although this side's model lacks them (the special
                tokens and language codes, matched as added tokens before the model sees the text).
        """
        scores = {
            piece: score for piece, score, kind in self.spm.pieces if kind in (SPM_NORMAL, SPM_USER_DEFINED)
        }
        pieces = []
        for token, _ in sorted(self.vocab.items(), key=lambda item: item[1]):
            if token in scores:
                pieces.append((token, scores[token]))
            elif token in keep:  # matched as added tokens before the model sees the text
                pieces.append((token, _NEVER))
            else:
                # The other side's pieces: a name with a space can never match (the pre-tokenizer turns
                # spaces into word boundaries), so characters this side lacks stay unknown, as in
                # SentencePiece, and ``unknown_ids`` looks their text up afterwards.
                pieces.append((f" {token}", _NEVER))
        missing = sum(piece not in self.vocab for piece in scores)
        if missing:
            logger.warning(
                "%d pieces of the %s SentencePiece model are not in the vocabulary; they are never produced "
                "(the reference library encodes them as the unknown token)",
                missing,
                self.what,
            )
        backend = BackendTokenizer(Unigram(pieces, unk_id=self.vocab[unk_token], byte_fallback=False))
        charsmap = self.spm.precompiled_charsmap
        backend.normalizer = normalizers.Precompiled(charsmap) if charsmap else None
        metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
        backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), metaspace])
        backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
        return backend

    def encoding_ids(self, encoding: Any, unk_id: int, remap: dict[int, int]) -> list[int]:
        """The ids of an encoding as Marian gives them.

        SentencePiece returns characters it lacks as they are (a run of them as one piece), and Marian looks
        each piece up in the vocabulary, which may hold it (a piece of the other side): an unknown run takes
        the id of its text. ``remap`` moves the target side's special tokens to their source ids.
        """
        ids = encoding.ids
        if unk_id in ids:
            tokens, vocab = encoding.tokens, self.vocab
            ids = [vocab.get(tokens[i], unk_id) if index == unk_id else index for i, index in enumerate(ids)]
        if remap and not remap.keys().isdisjoint(ids):
            mask = encoding.attention_mask  # padding already has the source id
            ids = [remap.get(index, index) if mask[i] else index for i, index in enumerate(ids)]
        return ids

    def decode_pieces(self, pieces: list[str]) -> str:
        """Join pieces as SentencePiece's ``decode_pieces`` does (pieces it lacks are kept as written)."""
        out: list[str] = []
        at_start = True  # the first visible piece loses its leading word boundary
        for piece in pieces:
            kind = self.kinds.get(piece)
            if kind == SPM_CONTROL:
                surface = ""
            elif kind is None or kind == SPM_UNKNOWN:
                surface = _UNK_SURFACE if kind == SPM_UNKNOWN else piece
            else:
                surface = (piece[1:] if at_start and piece.startswith("▁") else piece).replace("▁", " ")
            at_start = at_start and not surface
            out.append(surface)
        return "".join(out)


def _read_vocab(path: str | os.PathLike, what: str) -> dict[str, int]:
    data = read_json(Path(path), what=what)
    ids = (
        sorted(data.values())
        if all(isinstance(v, int) and not isinstance(v, bool) for v in data.values())
        else None
    )
    if ids != list(range(len(data))):
        raise ValueError(f"{what} {str(path)!r} must map each token to a distinct id 0..{len(data) - 1}")
    return data


class MarianTokenizer(Tokenizer):
    """Marian tokenizer: ``source.spm`` for inputs, ``target.spm`` for targets, ids from ``vocab.json``.

    Args:
        source_spm: Path of the source SentencePiece model.
        target_spm: Path of the target SentencePiece model.
        vocab: Path of ``vocab.json`` (piece -> id).
        target_vocab_file: Path of ``target_vocab.json``, used for targets when ``separate_vocabs``.
        source_lang: Source language name (kept in the config).
        target_lang: Target language name (kept in the config).
        separate_vocabs: Targets use ``target_vocab_file`` instead of ``vocab``.
        **kwargs: Special tokens (``unk_token``, ``eos_token``, ``pad_token``) and ``Tokenizer`` options.

    Raises:
        FileNotFoundError: A file does not exist.
        ValueError: The unknown token is not in the vocabulary, or a vocabulary file is malformed.
    """

    _family = "marian"
    # id -> piece of the decoding vocabulary, as on the reference class (here not the backend's decoder).
    decoder: dict[int, str] | None = None

    def __init__(
        self,
        source_spm: str | os.PathLike | None = None,
        target_spm: str | os.PathLike | None = None,
        vocab: str | os.PathLike | None = None,
        target_vocab_file: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        if source_spm is None or target_spm is None or vocab is None:
            raise ValueError(
                "MarianTokenizer needs source_spm, target_spm and vocab (paths of source.spm, target.spm and "
                "vocab.json), or load a checkpoint with MarianTokenizer.from_pretrained()"
            )
        for key in ("tokenizer_object", "tokenizer_file"):
            if kwargs.pop(key, None) is not None:
                raise ValueError(f"MarianTokenizer is built from its vocabulary files, not from {key}")
        for key, value in FAMILIES["marian"].defaults.items():
            kwargs.setdefault(key, value)
        self.separate_vocabs = bool(kwargs["separate_vocabs"])
        unk = str(kwargs["unk_token"])
        self.encoder = _read_vocab(vocab, "Marian vocabulary")
        if unk not in self.encoder:
            raise ValueError(f"the unknown token {unk!r} is not in the Marian vocabulary {str(vocab)!r}")
        if self.separate_vocabs:
            if target_vocab_file is None:
                raise ValueError(
                    "separate_vocabs=True needs target_vocab_file (the path of target_vocab.json)"
                )
            self.target_encoder = _read_vocab(target_vocab_file, "Marian target vocabulary")
            if unk not in self.target_encoder:
                raise ValueError(f"the unknown token {unk!r} is not in {str(target_vocab_file)!r}")
            self.supported_language_codes: list[str] = []
        else:
            self.target_encoder = self.encoder
            self.supported_language_codes = [
                t for t in self.encoder if t.startswith(">>") and t.endswith("<<")
            ]
        self.decoder = {index: token for token, index in self.target_encoder.items()}
        self._source = _SideModel(source_spm, self.encoder, "source")
        self._target = _SideModel(target_spm, self.target_encoder, "target")
        self.spm_files = [str(source_spm), str(target_spm)]
        self.source_lang, self.target_lang = kwargs.get("source_lang"), kwargs.get("target_lang")
        keep = {str(kwargs.get(key)) for key in ("unk_token", "eos_token", "pad_token") if kwargs.get(key)}
        keep.update(self._source.codes + self._target.codes)
        keep.update(str(token) for token in (kwargs.get("added_tokens_decoder") or {}).values())
        for key in ("extra_special_tokens", "additional_special_tokens"):
            extras = kwargs.get(key) or []
            keep.update(str(token) for token in (extras.values() if isinstance(extras, dict) else extras))
        self._source_backend = self._source.backend(unk, keep)
        self._target_backend = self._target.backend(unk, keep)
        self._side = self._source
        self._decode_use_source_tokenizer = False
        super().__init__(self._source_backend, _copy=False, **kwargs)
        self._finish_backends()

    def _finish_backends(self) -> None:
        """Language codes, the same added tokens on both sides, ``</s>`` at the end of each sequence."""

        def codes(side: _SideModel) -> list[AddedToken]:
            return [AddedToken(code, special=False, normalized=False) for code in side.codes]

        self._source_backend.add_tokens(codes(self._source))
        added = sorted(self._source_backend.get_added_tokens_decoder().items())
        self._target_backend.add_special_tokens([token for _, token in added if token.special])
        source_codes = set(self._source.codes)
        self._target_backend.add_tokens(
            [token for _, token in added if not token.special and token.content not in source_codes]
        )
        self._target_backend.add_tokens(codes(self._target))
        self._target_backend.encode_special_tokens = self._source_backend.encode_special_tokens
        eos = str(self.eos_token)
        for backend in (self._source_backend, self._target_backend):
            backend.post_processor = processors.TemplateProcessing(
                single=f"$A {eos}", pair=f"$A $B {eos}", special_tokens=[(eos, self.eos_token_id)]
            )

    @classmethod
    def _from_checkpoint_files(cls, ckpt: Any, init_kwargs: dict[str, Any]) -> MarianTokenizer:
        """Build from a checkpoint's files (``from_pretrained`` calls this for the Marian family)."""
        needed = [SOURCE_SPM, TARGET_SPM, VOCAB_FILE]
        paths = {name: ckpt.get(name) for name in [*needed, TARGET_VOCAB_FILE]}
        absent = [name for name in needed if paths[name] is None]
        if init_kwargs.get("separate_vocabs") and paths[TARGET_VOCAB_FILE] is None:
            absent.append(TARGET_VOCAB_FILE)
        if absent:
            raise FileNotFoundError(
                f"{ckpt.name!r} is a Marian checkpoint without {', '.join(absent)}; a MarianTokenizer needs "
                f"{', '.join(needed)} (and {TARGET_VOCAB_FILE} with separate_vocabs). Looked in:\n"
                + "\n".join(f"  - {place}" for place in ckpt.searched)
            )
        options = {key: value for key, value in init_kwargs.items() if key not in _PATH_ARGUMENTS}
        return cls(
            paths[SOURCE_SPM], paths[TARGET_SPM], paths[VOCAB_FILE], paths[TARGET_VOCAB_FILE], **options
        )

    # ---- source and target ----------------------------------------------------------------

    def _switch_to_input_mode(self) -> None:
        self._tokenizer, self._side = self._source_backend, self._source

    def _switch_to_target_mode(self) -> None:
        self._tokenizer, self._side = self._target_backend, self._target

    def _encoding_ids(self, encodings: list[Any]) -> list[list[int]]:
        unk_id = self._side.vocab[str(self.unk_token)]
        remap: dict[int, int] = {}
        if self._side is self._target and self.separate_vocabs:
            # The reference registers the special tokens with their source ids, and uses those on both sides.
            for index, token in self._source_backend.get_added_tokens_decoder().items():
                target_id = self._target_backend.token_to_id(token.content)
                if token.special and target_id is not None and target_id != index:
                    remap[target_id] = index
        return [self._side.encoding_ids(encoding, unk_id, remap) for encoding in encodings]

    def add_tokens(
        self, new_tokens: str | AddedToken | list[str | AddedToken], special_tokens: bool = False
    ) -> int:
        """Add tokens to both sides (see ``Tokenizer.add_tokens``)."""
        current = self._tokenizer
        try:
            for backend in (self._target_backend, self._source_backend):
                self._tokenizer = backend
                count = super().add_tokens(new_tokens, special_tokens)
        finally:
            self._tokenizer = current
        return count

    # ---- vocabulary -------------------------------------------------------------------------

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        """Id -> AddedToken of the added tokens (the language codes, matched as tokens here, left out)."""
        codes = set(self._source.codes)
        decoder = self._source_backend.get_added_tokens_decoder()
        return {index: token for index, token in decoder.items() if token.content not in codes}

    def get_vocab(self) -> dict[str, int]:
        """The source vocabulary with the added tokens (as the reference's ``get_vocab``)."""
        return self.get_src_vocab()

    def _added_vocab(self) -> dict[str, int]:
        return {
            token.content: index for index, token in self._source_backend.get_added_tokens_decoder().items()
        }

    def get_src_vocab(self) -> dict[str, int]:
        """``vocab.json`` and the added tokens."""
        return {**self.encoder, **self._added_vocab()}

    def get_tgt_vocab(self) -> dict[str, int]:
        """The target vocabulary and the added tokens."""
        return {**self.target_encoder, **self._added_vocab()}

    def convert_tokens_to_ids(self, tokens: str | list[str] | None) -> int | list[int] | None:
        """Token(s) -> id(s): added tokens by their source id, others by the current side's vocabulary."""
        if tokens is None:
            return None
        added, vocab = self._added_vocab(), self._side.vocab
        unk = added.get(str(self.unk_token)) if self.unk_token is not None else None

        def one(token: str) -> int | None:
            index = added.get(token)
            if index is None:
                index = vocab.get(token)
            return unk if index is None else index

        return one(tokens) if isinstance(tokens, str) else [one(token) for token in tokens]

    def convert_ids_to_tokens(
        self, ids: int | list[int], skip_special_tokens: bool = False
    ) -> str | list[str] | None:
        """Id(s) -> token(s): added tokens first, then the decoding vocabulary (the target one)."""
        ids = _to_python_ids(ids)
        added = self._source_backend.get_added_tokens_decoder()
        fallback = self._source if self._decode_use_source_tokenizer else self._target

        def one(index: int) -> str:
            if index in added:
                return added[index].content
            token = self.decoder.get(index)
            if token is None:  # outside the vocabulary: SentencePiece's own piece, as the reference does
                pieces = fallback.spm.pieces
                token = pieces[index][0] if 0 <= index < len(pieces) else str(self.unk_token)
            return token

        if isinstance(ids, int):
            return one(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [one(int(index)) for index in ids if int(index) not in skip]

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 for ``</s>`` and ``<pad>`` (not ``<unk>``, as in the reference) and the ``</s>`` to add."""
        special = set(self.all_special_ids) - {self.unk_token_id}
        ids = list(token_ids_0) + (list(token_ids_1) if token_ids_1 is not None else [])
        mask = [1 if index in special else 0 for index in ids]
        return mask if already_has_special_tokens else [*mask, 1]

    # ---- decoding ----------------------------------------------------------------------------

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join tokens: pieces between special tokens as SentencePiece joins them, specials then a space."""
        side = self._source if self._decode_use_source_tokenizer else self._target
        specials = set(self.all_special_tokens)
        out, pieces = "", []
        for token in tokens:
            if token in specials:
                out += side.decode_pieces(pieces) + token + " "
                pieces = []
            else:
                pieces.append(token)
        out += side.decode_pieces(pieces)
        return out.replace("▁", " ").strip()

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        *,
        use_source_tokenizer: bool | None = None,
        **kwargs: Any,
    ) -> str | list[str]:
        """Text of token ids; ``use_source_tokenizer`` joins pieces with the source model (default: only
        when the vocabulary is shared)."""
        ids = _to_python_ids(token_ids)
        if isinstance(ids, list) and ids and isinstance(ids[0], (list, tuple)):
            return self.batch_decode(
                ids,
                skip_special_tokens,
                clean_up_tokenization_spaces,
                use_source_tokenizer=use_source_tokenizer,
            )
        ids = self._check_ids(ids)
        self._decode_use_source_tokenizer = (
            not self.separate_vocabs if use_source_tokenizer is None else bool(use_source_tokenizer)
        )
        for index in ids:
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise self._decode_error([ids], ValueError("not a token id"))
        text = self.convert_tokens_to_string(
            self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        )
        return self._cleanup([text], clean_up_tokenization_spaces)[0]

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        *,
        use_source_tokenizer: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Texts of a batch of token id sequences (see ``decode``)."""
        sequences = _to_python_ids(sequences)
        if isinstance(sequences, int) or (
            isinstance(sequences, list) and sequences and isinstance(sequences[0], int)
        ):
            sequences = [sequences if isinstance(sequences, list) else [sequences]]
        options = {"use_source_tokenizer": use_source_tokenizer}
        return [
            self.decode(list(ids), skip_special_tokens, clean_up_tokenization_spaces, **options)
            for ids in sequences
        ]

    # ---- saving ------------------------------------------------------------------------------

    def _files_to_save(self, files: dict[str, str | bytes], prefix: str) -> dict[str, str | bytes]:
        """The vocabulary files, not ``tokenizer.json`` (the reference would take added tokens from it)."""
        files = {name: data for name, data in files.items() if name != f"{prefix}tokenizer.json"}
        files[prefix + SOURCE_SPM] = self._source.data
        files[prefix + TARGET_SPM] = self._target.data
        files[prefix + VOCAB_FILE] = json.dumps(self.encoder, indent=2)
        if self.separate_vocabs:
            files[prefix + TARGET_VOCAB_FILE] = json.dumps(self.target_encoder, indent=2)
        return files


MarianTokenizerFast = MarianTokenizer  # transformers v5 answers this name with the same class
