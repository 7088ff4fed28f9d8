"""Encoding text: ``__call__``, ``encode``, ``tokenize`` and the padding/truncation strategies."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from numbers import Integral
from typing import TYPE_CHECKING, Any

from tokenizers import Encoding

from .batch_encoding import BatchEncoding, _tensor_kind
from .constants import LARGE_INTEGER, PADDING_STRATEGIES, TRUNCATION_STRATEGIES

if TYPE_CHECKING:
    from .tokenizer import Tokenizer

logger = logging.getLogger(__name__)


# Padding allocates every pad token: the tokenizers library keeps about 120 bytes per token (id, type
# id, token string, offsets, masks) before the Python lists are built, and when an allocation fails it
# aborts the whole Python process (SIGABRT), which no ``except`` can catch. A padded length is therefore
# bounded by memory rather than by an integer type (2**31 - 1 tokens would need some 250 GB): 2**24
# tokens, above the longest context of any released model, pad in about 2 GB.
MAX_PADDED_LENGTH = 2**24
# Truncation only compares lengths, so any length the library can store is harmless: it keeps
# max_length and stride as a Rust usize (2**64 - 1 on 64-bit platforms).
MAX_TRUNCATION_LENGTH = 2 * sys.maxsize + 1


def _check_length(name: str, value: Any, *, padded: bool = False, origin: str = "") -> None:
    """Refuse a length argument the tokenizers library would abort on or fail to convert.

    Args:
        name: The argument's name, for the message.
        value: The value given (None passes).
        padded: The value is a length to pad to, so ``MAX_PADDED_LENGTH`` bounds it.
        origin: Where the value came from when the user did not pass it, for the message.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    if padded and value > MAX_PADDED_LENGTH:
        raise ValueError(
            f"{name}={value}{origin} is too large to pad to: padding builds every pad token in memory "
            f"(about 120 bytes each), so padded lengths are limited to {MAX_PADDED_LENGTH} (2**24) tokens. "
            "Pad to a smaller length, or use padding=True to pad to the longest sequence."
        )
    if value > MAX_TRUNCATION_LENGTH:
        raise ValueError(
            f"{name}={value}{origin} is above {MAX_TRUNCATION_LENGTH}, the largest length the tokenizers "
            "library can hold (a 64-bit unsigned int); pass max_length=None (or truncation=False) for no limit."
        )


class TokenizerInputError(TypeError, ValueError):
    """Text of the wrong type was given to a tokenizer.

    It is both a ``TypeError`` (the honest kind) and a ``ValueError`` (what the reference raises), so
    code written against either keeps working.
    """


def _is_text_input(value: Any) -> bool:
    """Shape check of the reference: str, list[str], list[list[str]] or list[tuple[list, list]]."""
    if isinstance(value, str):
        return True
    if not isinstance(value, (list, tuple)):
        return False
    if not value:
        return True
    first = value[0]
    if isinstance(first, str):
        return True
    if not isinstance(first, (list, tuple)):
        return False
    if not first or isinstance(first[0], str):
        return True
    if isinstance(first[0], (list, tuple)):
        return not first[0] or isinstance(first[0][0], str)
    return False


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        inner = next((item for item in value if not isinstance(item, str)), None)
        kind = type(value).__name__
        return f"a {kind} holding {type(inner).__name__}" if value else f"an empty {kind}"
    return type(value).__name__


class EncodingMixin:
    """Turning text into ids: strategies, backend settings and the encode calls."""

    @property
    def padding_side(self) -> str:
        """Side padding goes to: "right" or "left"."""
        return self._padding_side

    @padding_side.setter
    def padding_side(self, value: str) -> None:
        if value not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {value!r}")
        self._padding_side = value

    @property
    def truncation_side(self) -> str:
        """Side truncation removes tokens from: "right" or "left"."""
        return self._truncation_side

    @truncation_side.setter
    def truncation_side(self, value: str) -> None:
        if value not in ("right", "left"):
            raise ValueError(f"truncation_side must be 'right' or 'left', got {value!r}")
        self._truncation_side = value

    # ---- encoding --------------------------------------------------------------------------

    def _resolve_strategies(
        self,
        padding: Any,
        truncation: Any,
        max_length: Any,
        pad_to_multiple_of: int | None = None,
        verbose: bool = True,
    ) -> tuple[str, str, int | None]:
        """Normalize padding/truncation arguments to strategy names and a max length."""
        _check_length("max_length", max_length)
        _check_length("pad_to_multiple_of", pad_to_multiple_of, padded=True)
        given_max_length = max_length
        if max_length is not None and (padding is False or padding is None) and truncation is None:
            truncation = "longest_first"
        padding = getattr(padding, "value", padding)
        truncation = getattr(truncation, "value", truncation)
        if padding is True:
            if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
                self._warn_once(
                    "max_length-ignored",
                    "max_length is ignored when padding=True and truncation is off; use padding='max_length' "
                    "to pad to max_length",
                )
            padding_strategy = "longest"
        elif padding is False or padding is None:
            padding_strategy = "do_not_pad"
        elif isinstance(padding, str) and padding in PADDING_STRATEGIES:
            padding_strategy = padding
        else:
            raise ValueError(
                f"padding must be True, False or one of {list(PADDING_STRATEGIES)}; got {padding!r}"
            )
        if truncation is True:
            truncation_strategy = "longest_first"
        elif truncation is False or truncation is None:
            truncation_strategy = "do_not_truncate"
        elif isinstance(truncation, str) and truncation in TRUNCATION_STRATEGIES:
            truncation_strategy = truncation
        else:
            raise ValueError(
                f"truncation must be True, False, None or one of {list(TRUNCATION_STRATEGIES)}; got {truncation!r}"
            )
        if max_length is None:
            if padding_strategy == "max_length":
                if self.model_max_length > LARGE_INTEGER:
                    padding_strategy = "do_not_pad"
                else:
                    max_length = self.model_max_length
            if truncation_strategy != "do_not_truncate":
                if self.model_max_length > LARGE_INTEGER:
                    truncation_strategy = "do_not_truncate"
                else:
                    max_length = self.model_max_length
        if padding_strategy == "max_length":
            origin = " (tokenizer.model_max_length)" if given_max_length is None else ""
            _check_length("max_length", max_length, padded=True, origin=origin)
        if padding_strategy != "do_not_pad":
            pad_id = self.pad_token_id
            if self.pad_token is None or pad_id is None or pad_id < 0:
                raise ValueError(
                    "Asking to pad but the tokenizer has no padding token. Set one, e.g. "
                    "`tokenizer.pad_token = tokenizer.eos_token`, or add one with "
                    "`tokenizer.add_special_tokens({'pad_token': '[PAD]'})`."
                )
        if (
            truncation_strategy != "do_not_truncate"
            and padding_strategy != "do_not_pad"
            and pad_to_multiple_of  # 0 means no rounding, as in the tokenizers library
            and max_length is not None
            and max_length % pad_to_multiple_of != 0
        ):
            raise ValueError(
                f"Truncation and padding are both on but the truncation length ({max_length}) is not a "
                f"multiple of pad_to_multiple_of ({pad_to_multiple_of})."
            )
        return padding_strategy, truncation_strategy, max_length

    def _configure_backend(
        self,
        padding_strategy: str,
        truncation_strategy: str,
        max_length: int | None,
        stride: int,
        pad_to_multiple_of: int | None,
        padding_side: str | None,
    ) -> None:
        backend = self._tokenizer
        current = backend.truncation
        if truncation_strategy == "do_not_truncate":
            if current is not None:
                backend.no_truncation()
        else:
            target = {
                "max_length": max_length,
                "stride": stride,
                "strategy": truncation_strategy,
                "direction": self._truncation_side,
            }
            if current is None or any(current.get(key) != value for key, value in target.items()):
                backend.enable_truncation(**target)
        current = backend.padding
        if padding_strategy == "do_not_pad":
            if current is not None:
                backend.no_padding()
        else:
            target = {
                "length": max_length if padding_strategy == "max_length" else None,
                "direction": padding_side if padding_side is not None else self._padding_side,
                "pad_id": self.pad_token_id,
                "pad_token": self.pad_token,
                "pad_type_id": 0,
                "pad_to_multiple_of": pad_to_multiple_of,
            }
            if current != target:
                backend.enable_padding(**target)

    def _encode_plus(
        self,
        text: Any,
        text_pair: Any = None,
        add_special_tokens: bool = True,
        padding_strategy: str = "do_not_pad",
        truncation_strategy: str = "do_not_truncate",
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: bool | None = None,
    ) -> BatchEncoding:
        if not _is_text_input(text):
            raise TokenizerInputError(
                "text must be a str, a list of str (a batch, or one pre-split example with "
                f"is_split_into_words=True) or a list of lists of str; got {_describe(text)}"
            )
        if text_pair is not None and not _is_text_input(text_pair):
            raise TokenizerInputError(
                f"text_pair must be a str, a list of str or a list of lists of str; got {_describe(text_pair)}"
            )
        if return_tensors is not None:
            _tensor_kind(return_tensors)
        if padding_side is not None and padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left', 'right' or None; got {padding_side!r}")
        if isinstance(stride, bool) or not isinstance(stride, Integral) or stride < 0:
            raise ValueError(f"stride must be a non-negative int, got {stride!r}")
        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
        else:
            is_batched = isinstance(text, (list, tuple))
        if is_batched:
            if isinstance(text_pair, str):
                raise TokenizerInputError(
                    "text is a batch, so text_pair must be a list of the same length, not a str"
                )
            if text_pair is not None and len(text) != len(text_pair):
                raise ValueError(
                    f"batch length of text ({len(text)}) does not match batch length of text_pair ({len(text_pair)})"
                )
            inputs = list(zip(text, text_pair)) if text_pair is not None else list(text)
        else:
            inputs = [(text, text_pair)] if text_pair else [text]

        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names

        is_pair = text_pair is not None or (
            bool(inputs) and isinstance(inputs[0], tuple) and not is_split_into_words
        )
        stride_error = None
        if truncation_strategy != "do_not_truncate" and max_length is not None:
            added = self._tokenizer.num_special_tokens_to_add(is_pair) if add_special_tokens else 0
            if stride > 0 and stride >= max_length - added:
                # Like the reference, this is an error only if some input needs truncating: encode with
                # no stride, and raise if anything overflowed.
                stride_error = (
                    f"stride ({stride}) must be smaller than max_length ({max_length}) minus the {added} special "
                    f"tokens added to each sequence, i.e. below {max_length - added}; lower stride or raise max_length"
                )
                stride = 0
            if max_length < added:
                self._warn_once(
                    f"max-length-below-specials-{max_length}",
                    f"max_length={max_length} is smaller than the {added} special tokens added to each sequence, "
                    "so nothing is truncated (as in the reference library).",
                )
        if split_special_tokens is None:
            split_special_tokens = self.split_special_tokens

        with self._lock:
            self._configure_backend(
                padding_strategy, truncation_strategy, max_length, stride, pad_to_multiple_of, padding_side
            )
            if self._tokenizer.encode_special_tokens != split_special_tokens:
                self._tokenizer.encode_special_tokens = split_special_tokens
            try:
                encodings = (
                    self._tokenizer.encode_batch(
                        inputs, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words
                    )
                    if inputs
                    else []
                )
            except TypeError as err:
                raise TokenizerInputError(
                    f"cannot encode this input ({_describe(text)}): every text must be a str"
                    + (
                        " and every pre-split word a str"
                        if is_split_into_words
                        else " (pass is_split_into_words=True for lists of words)"
                    )
                    + f". Backend said: {err}"
                ) from err
            except Exception as err:  # the Rust backend raises plain Exceptions
                hint = ""
                if "Missing [UNK]" in str(err):  # WordPiece met a word it cannot split, with no unknown token
                    hint = (
                        f". The vocabulary of {self.name_or_path!r} (its vocab.txt or tokenizer.json) has no "
                        f"entry for the unknown token {str(self.unk_token)!r}, which text outside the "
                        "vocabulary needs: add that line to vocab.txt"
                    )
                raise ValueError(f"tokenization failed: {err}{hint}") from err
            except BaseException as err:  # a Rust panic (pyo3 PanicException derives from BaseException)
                if type(err).__name__ != "PanicException":
                    raise
                raise ValueError(
                    f"tokenization failed: {err}. With truncation of pairs, stride must stay below the length "
                    "each sequence is truncated to; lower stride or raise max_length"
                ) from err

        if stride_error is not None and any(encoding.overflowing for encoding in encodings):
            raise ValueError(stride_error)
        if return_overflowing_tokens:
            flat: list[Encoding] = []
            mapping: list[int] = []
            for index, encoding in enumerate(encodings):
                flat.append(encoding)
                mapping.append(index)
                for window in encoding.overflowing:
                    flat.append(window)
                    mapping.append(index)
        else:
            flat = encodings
        data: dict[str, Any] = {"input_ids": self._encoding_ids(flat)}
        if return_token_type_ids:
            data["token_type_ids"] = [e.type_ids for e in flat]
        if return_attention_mask:
            data["attention_mask"] = [e.attention_mask for e in flat]
        if return_special_tokens_mask:
            data["special_tokens_mask"] = [e.special_tokens_mask for e in flat]
        if return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in flat]
        if return_length:
            data["length"] = [len(ids) for ids in data["input_ids"]]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = mapping

        if max_length is None and verbose and "too-long" not in self._warned and self.model_max_length:
            longest = max((len(ids) for ids in data["input_ids"]), default=0)
            if longest > self.model_max_length:
                self._warn_once(
                    "too-long",
                    f"Token indices sequence length is longer than the specified maximum sequence length for this "
                    f"model ({longest} > {self.model_max_length}). Running this sequence through the model will "
                    "result in indexing errors",
                )

        if not is_batched and return_tensors is None and not return_overflowing_tokens:
            data = {
                key: value[0] if value and isinstance(value[0], list) else value
                for key, value in data.items()
            }
            return BatchEncoding(data, flat)
        return BatchEncoding(data, flat, tensor_type=return_tensors)

    def __call__(
        self,
        text: Any = None,
        text_pair: Any = None,
        text_target: Any = None,
        text_pair_target: Any = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: bool | None = None,
        max_target_length: int | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Tokenize text (a str, a batch, pairs, or pre-split words) for a model.

        Args:
            text: A str, a list of str, or pre-split words (``is_split_into_words=True``).
            text_pair: Second sequences, matching ``text``.
            text_target: Target text; its ids come back under ``labels`` (or as ``input_ids`` when
                ``text`` is None).
            text_pair_target: Second target sequences.
            add_special_tokens: Add the model's special tokens ([CLS]/[SEP], <s>, ...).
            padding: True/"longest", "max_length", or False/"do_not_pad".
            truncation: True/"longest_first", "only_first", "only_second", or False/"do_not_truncate";
                defaults to "longest_first" when only ``max_length`` is given.
            max_length: Length for truncation/padding; defaults to ``model_max_length`` when needed.
            stride: Overlap between overflowing windows.
            is_split_into_words: Inputs are lists of words.
            pad_to_multiple_of: Round padded lengths up to a multiple of this.
            padding_side: "left" or "right" for this call.
            return_tensors: "pt" or "np" for tensors, None for lists.
            return_token_type_ids: Include ``token_type_ids`` (default: per ``model_input_names``).
            return_attention_mask: Include ``attention_mask`` (default: per ``model_input_names``).
            return_overflowing_tokens: Return truncated-away windows as extra rows, with
                ``overflow_to_sample_mapping``.
            return_special_tokens_mask: Include ``special_tokens_mask``.
            return_offsets_mapping: Include ``offset_mapping`` (character spans).
            return_length: Include ``length``.
            verbose: Log warnings (too long sequences, ignored max_length).
            split_special_tokens: Tokenize special tokens written in the text as plain text.
            max_target_length: ``max_length`` for ``text_target``.
            tokenizer_kwargs: Extra keyword arguments merged into these.

        Returns:
            A ``BatchEncoding``; lists for a single str are not batched unless tensors or overflow
            are asked for.

        Raises:
            TokenizerInputError: ``text`` is not text (a TypeError that is also a ValueError).
            ValueError: Invalid padding/truncation/return_tensors values, padding without a pad
                token, ``stride`` too large for ``max_length``, ragged tensors.
        """
        if tokenizer_kwargs:
            options = {
                "add_special_tokens": add_special_tokens,
                "padding": padding,
                "truncation": truncation,
                "max_length": max_length,
                "stride": stride,
                "is_split_into_words": is_split_into_words,
                "pad_to_multiple_of": pad_to_multiple_of,
                "padding_side": padding_side,
                "return_tensors": return_tensors,
                "return_token_type_ids": return_token_type_ids,
                "return_attention_mask": return_attention_mask,
                "return_overflowing_tokens": return_overflowing_tokens,
                "return_special_tokens_mask": return_special_tokens_mask,
                "return_offsets_mapping": return_offsets_mapping,
                "return_length": return_length,
                "verbose": verbose,
                "split_special_tokens": split_special_tokens,
                "max_target_length": max_target_length,
            }
            options.update(tokenizer_kwargs)
            options.update(kwargs)
            return self(text, text_pair, text_target, text_pair_target, **options)
        for key in kwargs:
            self._warn_once(
                f"kwarg-{key}", f"Keyword argument {key!r} is not used by the tokenizer and was ignored."
            )
        if text is None and text_target is None:
            raise ValueError("Nothing to tokenize: pass text=... or text_target=... (both are None).")
        padding_strategy, truncation_strategy, max_length = self._resolve_strategies(
            padding, truncation, max_length, pad_to_multiple_of, verbose
        )
        common = {
            "add_special_tokens": add_special_tokens,
            "padding_strategy": padding_strategy,
            "truncation_strategy": truncation_strategy,
            "stride": stride,
            "is_split_into_words": is_split_into_words,
            "pad_to_multiple_of": pad_to_multiple_of,
            "padding_side": padding_side,
            "return_tensors": return_tensors,
            "return_token_type_ids": return_token_type_ids,
            "return_attention_mask": return_attention_mask,
            "return_overflowing_tokens": return_overflowing_tokens,
            "return_special_tokens_mask": return_special_tokens_mask,
            "return_offsets_mapping": return_offsets_mapping,
            "return_length": return_length,
            "verbose": verbose,
            "split_special_tokens": split_special_tokens,
        }
        if text_target is not None:
            _check_length("max_target_length", max_target_length, padded=padding_strategy == "max_length")
        encodings = None
        with self._lock:  # the mode switches change the backend: keep them with the encoding they serve
            if text is not None:
                # Inside as_target_tokenizer() plain calls encode targets: the mode stays as it is.
                if not self._in_target_context_manager:
                    self._switch_to_input_mode()
                encodings = self._encode_plus(text, text_pair, max_length=max_length, **common)
            if text_target is None:
                return encodings  # type: ignore[return-value]
            target_length = max_target_length if max_target_length is not None else max_length
            self._switch_to_target_mode()
            try:
                targets = self._encode_plus(text_target, text_pair_target, max_length=target_length, **common)
            finally:
                self._switch_to_input_mode()
        if encodings is None:
            return targets
        encodings["labels"] = targets["input_ids"]
        return encodings

    def encode(
        self,
        text: Any,
        text_pair: Any = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Token ids of ``text`` (and ``text_pair``): a list of ints, or a tensor with return_tensors."""
        padding_strategy, truncation_strategy, max_length = self._resolve_strategies(
            padding, truncation, max_length, kwargs.get("pad_to_multiple_of"), kwargs.get("verbose", True)
        )
        allowed = {"is_split_into_words", "pad_to_multiple_of", "verbose", "split_special_tokens"}
        extra = {key: value for key, value in kwargs.items() if key in allowed}
        return self._encode_plus(
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding_strategy=padding_strategy,
            truncation_strategy=truncation_strategy,
            max_length=max_length,
            stride=stride,
            padding_side=padding_side,
            return_tensors=return_tensors,
            **extra,
        )["input_ids"]

    def encode_plus(self, text: Any, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        """Older name of ``__call__`` for one example."""
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs: list[Any], **kwargs: Any) -> BatchEncoding:
        """Older name of ``__call__`` for a batch (pairs given as tuples)."""
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TokenizerInputError(
                f"batch_encode_plus takes a list, got {type(batch_text_or_text_pairs).__name__}"
            )
        return self(list(batch_text_or_text_pairs), **kwargs)

    def tokenize(
        self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs: Any
    ) -> list[str]:
        """Token strings of ``text`` (special tokens only with ``add_special_tokens=True``)."""
        allowed = {"is_split_into_words", "split_special_tokens"}
        extra = {key: value for key, value in kwargs.items() if key in allowed}
        return self._encode_plus(text, pair, add_special_tokens=add_special_tokens, **extra).tokens()

    def _encoding_ids(self, encodings: list[Encoding]) -> list[list[int]]:
        """The ids of encoded sequences (Marian looks the text of unknown pieces up in its vocabulary)."""
        return [encoding.ids for encoding in encodings]

    def _switch_to_input_mode(self) -> None:
        """Set the tokenizer up for model inputs (families with separate target handling override this)."""

    def _switch_to_target_mode(self) -> None:
        """Set the tokenizer up for targets: mBART's ``tgt_lang``, Marian's target vocabulary."""

    @contextlib.contextmanager
    def as_target_tokenizer(self) -> Iterator[Tokenizer]:
        """Context in which plain calls encode targets (the transformers v4 spelling, kept here).

        ``with tokenizer.as_target_tokenizer(): labels = tokenizer(targets)`` gives the ids of
        ``tokenizer(text_target=targets)``: Marian uses its target vocabulary, mBART ``tgt_lang``; for the
        other families targets are encoded like inputs. Prefer ``tokenizer(text, text_target=...)``.
        Every call inside the block encodes targets (transformers 4.57 went back to inputs after the
        first call, its ``__call__`` always ending in input mode).
        """
        logger.debug("as_target_tokenizer(): tokenizer(text, text_target=targets) does the same in one call")
        with self._lock:
            self._switch_to_target_mode()
            self._in_target_context_manager = True
        try:
            yield self
        finally:
            with self._lock:
                self._in_target_context_manager = False
                self._switch_to_input_mode()
