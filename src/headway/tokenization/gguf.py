"""A tokenizer from a GGUF file's metadata (``AutoTokenizer.from_pretrained(..., gguf_file=...)``).

A GGUF file carries no ``tokenizer.json``: llama.cpp stores the vocabulary (``tokenizer.ggml.tokens``),
the merges or the SentencePiece scores, each token's type (normal, control, user-defined, byte), the
special token ids, ``add_bos_token`` / ``add_eos_token`` and the chat template as metadata. This module
rebuilds the ``tokenizers`` backend they describe:

- ``tokenizer.ggml.model == "gpt2"``: byte-level BPE from tokens + merges, split before the byte-level
  step the way the file's pre-tokenizer type (``tokenizer.ggml.pre``) says: ``smollm`` (each digit on its
  own, then GPT-2's split), ``llama-bpe`` (Llama 3's split), ``qwen2`` (Qwen2's split), ``gpt-2`` /
  ``default`` and the unknown ones (GPT-2's split).
- ``tokenizer.ggml.model == "llama"``: SentencePiece-style BPE with byte fallback, merges from the file
  or recovered from the scores.

Control tokens become special tokens and user-defined tokens plain added tokens, so neither is split.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken, Regex, decoders, pre_tokenizers
from tokenizers import Tokenizer as BackendTokenizer
from tokenizers.models import BPE

from . import converters as conv

if TYPE_CHECKING:
    from ..gguf import GGUFCheckpoint
    from .tokenizer import Tokenizer

# llama.cpp token types (llama_token_type).
CONTROL = 3
USER_DEFINED = 4

# Pre-tokenizer splits, by tokenizer.ggml.pre. None: GPT-2's own split inside the ByteLevel step.
_GPT2_SPLIT = None
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PRE_TOKENIZER_SPLITS: dict[str, str | None] = {
    "default": _GPT2_SPLIT,
    "gpt-2": _GPT2_SPLIT,
    "smollm": _GPT2_SPLIT,  # plus one split per digit, see _byte_level_pre_tokenizer
    "llama-bpe": _LLAMA3_SPLIT,
    "llama3": _LLAMA3_SPLIT,
    "llama-v3": _LLAMA3_SPLIT,
    "qwen2": _QWEN2_SPLIT,
    "deepseek-r1-qwen": _QWEN2_SPLIT,
}
TOKENIZER_MODELS = ("gpt2", "llama")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the byte-level alphabet)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def _byte_level_pre_tokenizer(pre_type: str) -> Any:
    split = PRE_TOKENIZER_SPLITS.get(pre_type, _GPT2_SPLIT)
    if pre_type == "smollm":  # llama.cpp's smollm: every digit alone, then GPT-2's split
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    if split is None:
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _byte_level_backend(meta: dict[str, Any]) -> BackendTokenizer:
    spelling = _bytes_to_unicode()
    alphabet = set(spelling.values())
    # Files spell a few tokens in plain text; the BPE model needs every token in the byte alphabet.
    vocab = {
        token if set(token) <= alphabet else "".join(spelling[b] for b in token.encode("utf-8")): index
        for index, token in enumerate(meta["tokenizer.ggml.tokens"])
    }
    merges = [tuple(merge.split(" ", 1)) for merge in meta.get("tokenizer.ggml.merges") or []]
    backend = BackendTokenizer(
        BPE(vocab, merges, dropout=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False)
    )
    backend.normalizer = None
    backend.pre_tokenizer = _byte_level_pre_tokenizer(str(meta.get("tokenizer.ggml.pre", "default")))
    backend.decoder = decoders.ByteLevel()
    return backend


def _sentencepiece_backend(meta: dict[str, Any], kwargs: dict[str, Any]) -> BackendTokenizer:
    tokens = meta["tokenizer.ggml.tokens"]
    vocab = {token: index for index, token in enumerate(tokens)}
    if meta.get("tokenizer.ggml.merges"):
        merges = [tuple(merge.split(" ", 1)) for merge in meta["tokenizer.ggml.merges"]]
    else:  # recover them from the scores, best-scored merged token first
        scores = meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
        merges = conv.generate_merges(vocab, dict(zip(tokens, scores)))
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[unk_id] if unk_id is not None else None
    backend = BackendTokenizer(
        BPE(vocab, merges, unk_token=unk, fuse_unk=True, byte_fallback=True, dropout=None)
    )
    kwargs["add_prefix_space"] = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
    conv.set_family_pipeline("llama", backend, {**kwargs, "legacy": False})
    return backend


def tokenizer_from_gguf(cls: type[Tokenizer], checkpoint: GGUFCheckpoint, **kwargs: Any) -> Tokenizer:
    """The tokenizer a GGUF file describes, as ``cls`` (or the generic class when ``cls`` is Tokenizer).

    Args:
        cls: The tokenizer class ``from_pretrained`` was called on.
        checkpoint: The opened GGUF file.
        **kwargs: Tokenizer options overriding the file's (``padding_side``, ``add_bos_token``, ...).

    Raises:
        ValueError: the file has no tokenizer, or one of a kind headway cannot build.
    """
    meta = checkpoint.metadata
    model = meta.get("tokenizer.ggml.model")
    if model is None or "tokenizer.ggml.tokens" not in meta:
        raise ValueError(
            f"GGUF file {checkpoint.name!r} holds no tokenizer (no tokenizer.ggml.model / tokens)"
        )
    if model not in TOKENIZER_MODELS:
        raise ValueError(
            f"GGUF file {checkpoint.name!r} has tokenizer model {model!r}; headway builds: {', '.join(TOKENIZER_MODELS)}"
        )
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    init: dict[str, Any] = {}
    backend = _byte_level_backend(meta) if model == "gpt2" else _sentencepiece_backend(meta, init)

    alphabet = set(_bytes_to_unicode().values()) if model == "gpt2" else None
    kinds = meta.get("tokenizer.ggml.token_type") or []
    # A "control" token outside the byte alphabet of a byte-level file is a llama.cpp mislabel: the
    # reference skips it (adding it would grow the vocabulary past the model's).
    added: dict[int, AddedToken] = {}
    for index, (token, kind) in enumerate(zip(tokens, kinds)):
        if kind == CONTROL and (alphabet is None or set(token) <= alphabet):
            added[index] = AddedToken(token, normalized=False, special=True)
        elif kind == USER_DEFINED:
            added[index] = AddedToken(token, normalized=False, special=False)
    # As in the reference, control tokens are special added tokens (skipped by skip_special_tokens)
    # but not extra_special_tokens.
    init["added_tokens_decoder"] = added
    for name, key in (
        ("bos_token", "bos"),
        ("eos_token", "eos"),
        ("unk_token", "unknown"),
        ("pad_token", "padding"),
    ):
        index = meta.get(f"tokenizer.ggml.{key}_token_id")
        if index is not None and 0 <= index < len(tokens):
            init[name] = tokens[index]
    # llama.cpp adds BOS to a SentencePiece vocabulary unless the file says otherwise.
    init["add_bos_token"] = bool(meta.get("tokenizer.ggml.add_bos_token", model == "llama"))
    init["add_eos_token"] = bool(meta.get("tokenizer.ggml.add_eos_token", False))
    if "tokenizer.chat_template" in meta:
        init["chat_template"] = meta["tokenizer.chat_template"]
    init["name_or_path"] = checkpoint.name
    init.update(kwargs)

    from .tokenizer import Tokenizer

    target = cls if cls is not Tokenizer else Tokenizer
    return target(tokenizer_object=backend, _family="generic", _copy=False, **init)


def load_gguf_tokenizer(
    cls: type[Tokenizer], name_or_path: str | os.PathLike | None, gguf_file: str | os.PathLike, **kwargs: Any
) -> Tokenizer:
    """Resolve ``gguf_file`` (in the folder / Hub repo ``name_or_path``, or a path) and build its tokenizer."""
    from ..gguf import GGUFCheckpoint
    from ..hub import pop_hub_kwargs

    checkpoint = GGUFCheckpoint.resolve(name_or_path, gguf_file, **pop_hub_kwargs(kwargs))
    for ignored in ("use_fast", "_from_auto", "_from_pipeline", "tokenizer_type", "code_revision", "config"):
        kwargs.pop(ignored, None)
    return tokenizer_from_gguf(cls, checkpoint, **kwargs)


__all__ = ["PRE_TOKENIZER_SPLITS", "TOKENIZER_MODELS", "load_gguf_tokenizer", "tokenizer_from_gguf"]
