"""``BatchEncoding``, the output of a tokenizer call, and the ``CharSpan`` / ``TokenSpan`` it returns.

``torch`` and ``numpy`` are imported only when tensors are asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from numbers import Integral
from typing import Any, NamedTuple

from tokenizers import Encoding

from .constants import TENSOR_TYPES

logger = logging.getLogger(__name__)


class CharSpan(NamedTuple):
    """Character span ``[start, end)`` in the original string."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Token span ``[start, end)`` in an encoded sequence."""

    start: int
    end: int


class BatchIndexError(IndexError, ValueError):
    """A batch index outside a ``BatchEncoding``.

    An ``IndexError`` as in the reference library, and a ``ValueError`` because the usual cause is a
    misread signature (``char_to_token(1, start)`` on one example) rather than a bad loop bound.
    """


def _all_empty(value: Any) -> bool:
    """True when ``value`` is a (possibly nested) list holding no leaf at all."""
    if not isinstance(value, (list, tuple)):
        return False
    return all(_all_empty(item) for item in value)


def _tensor_kind(tensor_type: Any) -> str:
    kind = getattr(tensor_type, "value", tensor_type)
    if kind not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be one of {list(TENSOR_TYPES)} or None; got {tensor_type!r}")
    return kind


class BatchEncoding(dict):
    """Output of a tokenizer call: a dict (``input_ids``, ``attention_mask``, ...) plus alignment.

    Keys are also attributes (``enc.input_ids``). Integer indexing returns the ``tokenizers.Encoding``
    of that batch item. Alignment methods accept ``(index)`` for the first batch item or
    ``(batch_index, index)``.

    Args:
        data: The encoded values.
        encoding: Backend encodings, one per batch item (overflowing windows included).
        tensor_type: Convert values to tensors: "pt" (torch) or "np" (numpy).
        prepend_batch_axis: Add a batch axis while converting.
        n_sequences: Sequences per item (1, or 2 for pairs); read from the encodings when None.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        encoding: Encoding | list[Encoding] | None = None,
        tensor_type: str | None = None,
        prepend_batch_axis: bool = False,
        n_sequences: int | None = None,
    ) -> None:
        super().__init__(data or {})
        if isinstance(encoding, Encoding):
            encoding = [encoding]
        self._encodings = encoding
        if n_sequences is None and encoding:
            n_sequences = encoding[0].n_sequences
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type=tensor_type, prepend_batch_axis=prepend_batch_axis)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            return dict.__getitem__(self, item)
        if self._encodings is not None:
            if isinstance(item, Integral) and not isinstance(item, bool):
                return self._encoding(item, "__getitem__")
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.items()}
        raise KeyError(
            f"BatchEncoding keys are strings (e.g. 'input_ids'); integers and slices need backend encodings. Got {item!r}"
        )

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__") or item in ("_encodings", "_n_sequences"):
            raise AttributeError(item)
        try:
            return dict.__getitem__(self, item)
        except KeyError:
            raise AttributeError(
                f"BatchEncoding has no key or attribute {item!r}; keys: {list(self.keys())}"
            ) from None

    def __reduce__(self) -> tuple:
        return (type(self), (dict(self), self._encodings, None, False, self._n_sequences))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    @property
    def data(self) -> dict[str, Any]:
        """The encoded values (this object itself: it is a dict)."""
        return self

    @data.setter
    def data(self, value: Mapping[str, Any]) -> None:
        self.clear()
        self.update(value)

    @property
    def n_sequences(self) -> int | None:
        """Sequences per batch item: 1, 2 for pairs, None if unknown."""
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        """True when backend encodings (and so alignment methods) are available."""
        return self._encodings is not None

    @property
    def encodings(self) -> list[Encoding] | None:
        """The backend ``tokenizers.Encoding`` of each batch item, or None."""
        return self._encodings

    def _encoding(
        self, batch_index: int, method: str, index: int | None = None, sequence_index: bool = False
    ) -> Encoding:
        """The encoding of one batch item, with a clear error for a batch index out of range.

        Args:
            batch_index: The batch item asked for.
            method: The calling method's name, for the message.
            index: The second positional argument when two were given (the batch index was explicit).
            sequence_index: The method takes ``sequence_index``, so the message can suggest it.
        """
        if not self._encodings:
            raise ValueError(
                f"{method}() needs backend encodings; this BatchEncoding has none (e.g. built by pad())"
            )
        if isinstance(batch_index, bool) or not isinstance(batch_index, Integral):
            raise TypeError(f"{method}(): batch_index must be an int, got {type(batch_index).__name__}")
        size = len(self._encodings)
        if -size <= batch_index < size:
            return self._encodings[batch_index]
        if method == "__getitem__":
            call = f"BatchEncoding[{batch_index}]"
        else:
            call = f"{method}({batch_index})" if index is None else f"{method}({batch_index}, {index})"
        if size == 1 and index is not None:
            # The usual slip: the (batch_index, index) form used on one example, e.g. the question
            # answering recipe's char_to_token(1, start) meant "character start of the context".
            message = (
                f"{call}: this BatchEncoding holds one encoded input (batch size 1), and with two positional "
                f"arguments the first is the batch index, so {batch_index} is out of range. For item 0, call "
                f"{method}({index})"
            )
            if sequence_index:
                message += (
                    f"; to look in sequence {batch_index} of a pair (e.g. the context after a question), call "
                    f"{method}({index}, sequence_index={batch_index})"
                )
            raise BatchIndexError(message + ".")
        raise BatchIndexError(
            f"{call}: batch index {batch_index} is out of range for this BatchEncoding of batch size {size} "
            f"(valid: 0 to {size - 1}, or -{size} to -1)."
        )

    def _item(
        self, first: int, second: int | None, method: str, sequence_index: bool = False
    ) -> tuple[Encoding, int]:
        """Read ``(index)`` or ``(batch_index, index)``: the batch item's encoding and the index."""
        if second is None:
            return self._encoding(0, method), first
        return self._encoding(first, method, second, sequence_index), second

    def tokens(self, batch_index: int = 0) -> list[str]:
        """Token strings of one batch item."""
        return self._encoding(batch_index, "tokens").tokens

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token: 0 or 1 (which sequence of a pair), None for added special tokens."""
        return self._encoding(batch_index, "sequence_ids").sequence_ids

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token: the index of its word, None for added special tokens."""
        return self._encoding(batch_index, "word_ids").word_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int:
        """Index of the sequence (0 or 1) holding a token."""
        encoding, token_index = self._item(batch_or_token_index, token_index, "token_to_sequence")
        if token_index < 0:
            token_index += len(encoding)
        return encoding.token_to_sequence(token_index)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Index of the word holding a token (None for special tokens)."""
        encoding, token_index = self._item(batch_or_token_index, token_index, "token_to_word")
        if token_index < 0:
            token_index += len(encoding)
        return encoding.token_to_word(token_index)

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> TokenSpan | None:
        """Token span of a word, or None if no token comes from it."""
        encoding, word_index = self._item(batch_or_word_index, word_index, "word_to_tokens", True)
        span = encoding.word_to_tokens(word_index, sequence_index)
        return TokenSpan(*span) if span is not None else None

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        """Character span of a token in its original string, or None for added special tokens."""
        encoding, token_index = self._item(batch_or_token_index, token_index, "token_to_chars")
        span = encoding.token_to_chars(token_index)
        return CharSpan(*span) if span is not None else None

    def char_to_token(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the token covering a character, or None (e.g. whitespace)."""
        encoding, char_index = self._item(batch_or_char_index, char_index, "char_to_token", True)
        return encoding.char_to_token(char_index, sequence_index)

    def word_to_chars(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> CharSpan | None:
        """Character span of a word in its original string."""
        encoding, word_index = self._item(batch_or_word_index, word_index, "word_to_chars", True)
        span = encoding.word_to_chars(word_index, sequence_index)
        return CharSpan(*span) if span is not None else None

    def char_to_word(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the word holding a character."""
        encoding, char_index = self._item(batch_or_char_index, char_index, "char_to_word", True)
        return encoding.char_to_word(char_index, sequence_index)

    def convert_to_tensors(
        self, tensor_type: str | None = None, prepend_batch_axis: bool = False
    ) -> BatchEncoding:
        """Convert the values to torch tensors ("pt") or numpy arrays ("np") in place.

        Raises:
            ValueError: Unknown tensor type, or ragged values (ask for padding/truncation).
        """
        if tensor_type is None:
            return self
        kind = _tensor_kind(tensor_type)
        if kind == "pt":
            import torch

            def is_tensor(value: Any) -> bool:
                return isinstance(value, torch.Tensor)

            def as_tensor(value: Any) -> Any:
                if isinstance(value, list) and value and type(value[0]).__name__ == "ndarray":
                    import numpy as np

                    return torch.from_numpy(np.array(value))
                return torch.tensor(value, dtype=torch.int64 if _all_empty(value) else None)

        else:
            import numpy as np

            def is_tensor(value: Any) -> bool:
                return isinstance(value, np.ndarray)

            def as_tensor(value: Any) -> Any:
                if (
                    isinstance(value, (list, tuple))
                    and value
                    and isinstance(value[0], (list, tuple, np.ndarray))
                    and len({len(item) for item in value}) > 1
                ):
                    ragged = np.empty(len(value), dtype=object)
                    ragged[:] = [np.asarray(item) for item in value]
                    return ragged
                return np.asarray(value, dtype=np.int64 if _all_empty(value) else None)

        for key, value in list(self.items()):
            if prepend_batch_axis:
                value = [value]
            if is_tensor(value):
                continue
            try:
                self[key] = as_tensor(value)
            except (ValueError, TypeError, RuntimeError) as err:
                raise ValueError(
                    f"Cannot make a {kind!r} tensor of {key!r}: the sequences have different lengths (or are "
                    "nested too deeply). Pass padding=True (and truncation=True) to get equal lengths, or leave "
                    "return_tensors=None to get lists."
                ) from err
        return self

    def to(self, device: Any, *, non_blocking: bool = False) -> BatchEncoding:
        """Move the tensor values to ``device`` (a str, int or ``torch.device``); returns self."""
        if isinstance(device, (str, int)) or type(device).__name__ == "device":
            for key, value in list(self.items()):
                if hasattr(value, "to") and callable(value.to):
                    self[key] = value.to(device=device, non_blocking=non_blocking)
        else:
            logger.warning(
                "BatchEncoding.to() takes a device (str, int or torch.device), not %r; nothing moved", device
            )
        return self
