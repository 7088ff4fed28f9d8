"""Stopping criteria: after each step, which rows of the batch are finished.

A criterion maps ``(input_ids (B, T), scores) -> (B,) bool``. ``build_stopping_criteria`` returns those a
``GenerationConfig`` asks for, in the reference's order (maximum length, maximum time, stop strings,
end-of-sequence tokens), merged with the caller's.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

from headway.generation.processors import _eos_ids, _token_ids, merge_with_user_list

if TYPE_CHECKING:
    from headway.generation.config import GenerationConfig

logger = logging.getLogger(__name__)


class StoppingCriteria:
    """Base class: ``__call__(input_ids, scores) -> (B,) bool``, True where the row is finished."""

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores)")


class StoppingCriteriaList(list):
    """Criteria combined with "or": a row is finished as soon as one criterion says so."""

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for criterion in self:
            done = done | criterion(input_ids, scores, **kwargs)
        return done

    @property
    def max_length(self) -> int | None:
        """The ``max_length`` of the first ``MaxLengthCriteria``, if any."""
        return next((c.max_length for c in self if isinstance(c, MaxLengthCriteria)), None)


class MaxLengthCriteria(StoppingCriteria):
    """Stop every row once the sequence (prompt included) holds ``max_length`` tokens.

    Args:
        max_length: the most tokens a sequence may hold.
        max_position_embeddings: the model's context length; going past it logs a warning once.
    """

    def __init__(self, max_length: int, max_position_embeddings: int | None = None) -> None:
        self.max_length = max_length
        self.max_position_embeddings = max_position_embeddings
        self._warned = False

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        length = input_ids.shape[1]
        done = length >= self.max_length
        limit = self.max_position_embeddings
        if limit is not None and not done and length > limit and not self._warned:
            self._warned = True
            logger.warning(
                "Generation has gone past the model's context length (%d tokens): outputs may degrade or fail.",
                limit,
            )
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class MaxTimeCriteria(StoppingCriteria):
    """Stop every row once ``max_time`` seconds have passed since ``initial_timestamp`` (default: creation)."""

    def __init__(self, max_time: float, initial_timestamp: float | None = None) -> None:
        self.max_time = max_time
        self.initial_timestamp = time.time() if initial_timestamp is None else initial_timestamp

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = time.time() - self.initial_timestamp > self.max_time
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class EosTokenCriteria(StoppingCriteria):
    """Stop a row when its last token (or one of its last ``new_token_length``) is an end-of-sequence id."""

    def __init__(self, eos_token_id: int | list[int] | torch.Tensor) -> None:
        self.eos_token_id = _token_ids(eos_token_id)

    def __call__(
        self, input_ids: torch.LongTensor, scores: Any, new_token_length: int = 1, **kwargs: Any
    ) -> torch.BoolTensor:
        self.eos_token_id = self.eos_token_id.to(input_ids.device)
        return torch.isin(input_ids[:, -new_token_length:], self.eos_token_id).any(dim=-1)


# -- stop strings -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _byte_level_alphabet() -> dict[str, int]:
    """Character -> byte of byte-level BPE vocabularies (GPT-2): printable bytes stand for themselves, the
    others for the characters from U+0100 on, in byte order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {char: b for b, char in chars.items()}


def _decoder_kinds(node: Any) -> set[str]:
    """Every ``type`` named in a decoder's JSON state (sequences of decoders nest)."""
    if isinstance(node, dict):
        found = {node["type"]} if isinstance(node.get("type"), str) else set()
        for value in node.values():
            found |= _decoder_kinds(value)
        return found
    if isinstance(node, list):
        return set().union(*(_decoder_kinds(value) for value in node)) if node else set()
    return set()


def _matching_mode(tokenizer: Any) -> str | None:
    """How token text is compared: "byte_level" (GPT-2 style bytes), "byte_fallback" (<0xNN> tokens) or
    None (plain text)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if decoder is None:
        return None
    if type(decoder).__name__ == "ByteLevel":
        return "byte_level"
    try:
        state = decoder.__getstate__()
        kinds = _decoder_kinds(json.loads(state.decode() if isinstance(state, bytes) else state))
    except (TypeError, ValueError, AttributeError):
        return None
    if "ByteFallback" in kinds:  # explicit <0xNN> tokens win when both appear
        return "byte_fallback"
    return "byte_level" if "ByteLevel" in kinds else None


_TOKEN_TEXT_CACHE: OrderedDict[tuple, list] = OrderedDict()


def _token_texts(tokenizer: Any, mode: str | None) -> list[str | bytes | None]:
    """Id -> the text (bytes in the byte modes) the token adds to a decoded string, without the markers
    of word starts ("Ġ", "▁", "##"). None for ids the vocabulary does not hold."""
    vocab = tokenizer.get_vocab()
    key = (frozenset(vocab.items()), mode)  # get_vocab order varies between calls
    cached = _TOKEN_TEXT_CACHE.get(key)
    if cached is not None:
        _TOKEN_TEXT_CACHE.move_to_end(key)
        return cached
    # A token's text is what it adds after a fixed prefix: decoders treat a sequence's first token apart
    # (a leading space dropped, say), which the prefix absorbs.
    prefix = "abcdef"
    prefix_tokens = tokenizer.convert_ids_to_tokens(tokenizer(prefix, add_special_tokens=False)["input_ids"])
    alphabet = _byte_level_alphabet() if mode == "byte_level" else None
    texts: list[str | bytes | None] = [None] * (max(vocab.values(), default=-1) + 1)
    for token, index in vocab.items():
        text: str | bytes | None = None
        if alphabet is not None and all(char in alphabet for char in token):
            text = bytes(alphabet[char] for char in token)
        elif mode == "byte_fallback" and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            try:
                text = bytes([int(token[3:5], 16)])
            except ValueError:
                text = None
        if text is None:
            decoded = tokenizer.convert_tokens_to_string([*prefix_tokens, token])
            decoded = decoded[decoded.index(prefix) + len(prefix) :]
            text = decoded if mode is None else decoded.encode("utf-8")
        texts[index] = text
    _TOKEN_TEXT_CACHE[key] = texts
    if len(_TOKEN_TEXT_CACHE) > 8:
        _TOKEN_TEXT_CACHE.popitem(last=False)
    return texts


class StopStringCriteria(StoppingCriteria):
    """Stop a row when its text ends with a stop string, also one spread over several tokens.

    "Ends with" means the stop string finishes inside the last token (the token may run on past it): a stop
    string somewhere earlier in the text does not stop the row, since it was checked when it appeared. Token
    texts are computed once per vocabulary; each step then joins the texts of the last few tokens of each
    row (never more tokens than the longest stop string has characters) and searches only the part where
    a match could end in the last token.

    Args:
        tokenizer: the model's tokenizer (its vocabulary gives each token's text).
        stop_strings: one string or a list.
    """

    def __init__(self, tokenizer: Any, stop_strings: str | list[str]) -> None:
        if isinstance(stop_strings, str):
            stop_strings = [stop_strings]
        if not stop_strings or not all(isinstance(s, str) and s for s in stop_strings):
            raise ValueError(f"stop_strings must be a non-empty string or list of them, got {stop_strings!r}")
        self.stop_strings = tuple(stop_strings)
        mode = _matching_mode(tokenizer)
        self._targets: tuple[str | bytes, ...] = (
            self.stop_strings if mode is None else tuple(s.encode("utf-8") for s in self.stop_strings)
        )
        self._texts = _token_texts(tokenizer, mode)
        self._empty = "" if mode is None else b""
        self.maximum_token_len = max(len(target) for target in self._targets)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = [self._row_done(row) for row in input_ids[:, -self.maximum_token_len :].tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _row_done(self, ids: list[int]) -> bool:
        texts = self._texts
        pieces = []
        for index in reversed(ids):  # back from the last token, until an id with no text
            text = texts[index] if 0 <= index < len(texts) else None
            if text is None:
                break
            pieces.append(text)
        if not pieces:
            return False
        last_len = len(pieces[0])
        joined = self._empty.join(reversed(pieces))
        for target in self._targets:
            # A match must end inside the last token: it starts no earlier than this.
            if joined.find(target, max(0, len(joined) - last_len - len(target) + 1)) != -1:
                return True
        return False


def build_stopping_criteria(
    generation_config: GenerationConfig,
    *,
    tokenizer: Any = None,
    stopping_criteria: StoppingCriteriaList | None = None,
    max_position_embeddings: int | None = None,
) -> StoppingCriteriaList:
    """The criteria ``generation_config`` asks for, in the reference's order, merged with the caller's.

    Args:
        generation_config: the settings (``max_length`` final, special tokens final).
        tokenizer: needed for ``stop_strings``.
        stopping_criteria: the caller's criteria; one of a class built here replaces it.
        max_position_embeddings: the model's context length, for the warning when generation goes past it.

    Raises:
        ValueError: ``stop_strings`` without a tokenizer.
    """
    config = generation_config
    criteria = StoppingCriteriaList()
    if config.max_length is not None:
        criteria.append(MaxLengthCriteria(config.max_length, max_position_embeddings=max_position_embeddings))
    if config.max_time is not None:
        criteria.append(MaxTimeCriteria(config.max_time))
    if config.stop_strings is not None:
        if tokenizer is None:
            raise ValueError(
                f"stop_strings={config.stop_strings!r} needs the model's tokenizer to find the strings in the "
                "generated tokens: pass tokenizer=<the tokenizer> to generate()"
            )
        criteria.append(StopStringCriteria(tokenizer, config.stop_strings))
    eos = _eos_ids(config)
    if eos is not None:
        criteria.append(EosTokenCriteria(eos))
    return merge_with_user_list(criteria, stopping_criteria)


__all__ = [
    "EosTokenCriteria",
    "MaxLengthCriteria",
    "MaxTimeCriteria",
    "StopStringCriteria",
    "StoppingCriteria",
    "StoppingCriteriaList",
    "build_stopping_criteria",
]
