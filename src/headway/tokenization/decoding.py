"""Decoding token ids back to text."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any


def _to_python_ids(token_ids: Any) -> Any:
    """Token ids as Python ints / lists (accepts tensors, numpy arrays and encodings)."""
    if isinstance(token_ids, Mapping):
        token_ids = token_ids["input_ids"]
    if hasattr(token_ids, "tolist") and not isinstance(token_ids, (list, tuple)):
        token_ids = token_ids.tolist()
    if isinstance(token_ids, tuple):
        token_ids = list(token_ids)
    if isinstance(token_ids, list) and token_ids and hasattr(token_ids[0], "tolist"):
        token_ids = [item.tolist() if hasattr(item, "tolist") else item for item in token_ids]
    return token_ids


class DecodingMixin:
    """``decode`` / ``batch_decode`` and the clean-up of tokenization spaces."""


    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """Remove spaces before punctuation and English contractions (" ." -> ".", " n't" -> "n't")."""
        for before, after in (
            (" .", "."),
            (" ?", "?"),
            (" !", "!"),
            (" ,", ","),
            (" ' ", "'"),
            (" n't", "n't"),
            (" 'm", "'m"),
            (" 's", "'s"),
            (" 've", "'ve"),
            (" 're", "'re"),
        ):
            text = text.replace(before, after)
        return text

    def _cleanup(self, texts: list[str], clean_up_tokenization_spaces: bool | None) -> list[str]:
        cleanup = (
            self.clean_up_tokenization_spaces
            if clean_up_tokenization_spaces is None
            else clean_up_tokenization_spaces
        )
        if not cleanup:
            return texts
        if (
            type(self._tokenizer.model).__name__ == "BPE"
            and not self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output
        ):
            self._warn_once(
                "bpe-cleanup",
                "Ignoring clean_up_tokenization_spaces=True for a BPE tokenizer: the clean-up is meant for "
                "WordPiece and would remove real spaces before punctuation.",
            )
            return texts
        return [self.clean_up_tokenization(text) for text in texts]

    @staticmethod
    def _check_ids(ids: Any) -> list[int]:
        if isinstance(ids, Integral) and not isinstance(ids, bool):
            return [int(ids)]
        if not isinstance(ids, list):
            raise TypeError(
                f"token ids must be an int, a list of ints, a tensor or an array; got {type(ids).__name__}"
            )
        return ids

    @staticmethod
    def _decode_error(sequences: list[list[Any]], err: Exception) -> Exception:
        """A clear error for ids the backend refused (only computed on failure)."""
        for ids in sequences:
            for index in ids:
                if not isinstance(index, Integral) or isinstance(index, bool):
                    return TypeError(f"token ids must be ints, got {type(index).__name__}: {index!r}")
                if index < 0:
                    return ValueError(
                        f"token ids must be non-negative, got {index} (replace label padding such as -100 with "
                        "the pad token id before decoding)"
                    )
        return ValueError(f"cannot decode these token ids: {err}")

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> str | list[str]:
        """Text of token ids (int, list, tensor or array); a batch (list of lists) gives a list."""
        ids = _to_python_ids(token_ids)
        if isinstance(ids, list) and ids and isinstance(ids[0], (list, tuple)):
            return self.batch_decode(ids, skip_special_tokens, clean_up_tokenization_spaces)
        ids = self._check_ids(ids)
        try:
            text = self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        except (TypeError, OverflowError, ValueError) as err:
            raise self._decode_error([ids], err) from err
        return self._cleanup([text], clean_up_tokenization_spaces)[0]

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Texts of a batch of token id sequences."""
        sequences = _to_python_ids(sequences)
        if isinstance(sequences, list) and sequences and not isinstance(sequences[0], (list, tuple)):
            return [self.decode(sequences, skip_special_tokens, clean_up_tokenization_spaces)]
        if isinstance(sequences, Integral):
            return [self.decode(sequences, skip_special_tokens, clean_up_tokenization_spaces)]
        checked = [seq if isinstance(seq, list) else list(seq) for seq in sequences]
        try:
            texts = self._tokenizer.decode_batch(checked, skip_special_tokens=skip_special_tokens)
        except (TypeError, OverflowError, ValueError) as err:
            raise self._decode_error(checked, err) from err
        return self._cleanup(texts, clean_up_tokenization_spaces)
