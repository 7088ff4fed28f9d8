"""Vocabulary access of a ``Tokenizer``: sizes, token <-> id conversion, added tokens."""

from __future__ import annotations

from numbers import Integral
from typing import Any

from tokenizers import AddedToken
from tokenizers import Tokenizer as BackendTokenizer

from .decoding import _to_python_ids


class VocabularyMixin:
    """Sizes of the vocabulary and conversions between tokens and ids."""

    @property
    def backend_tokenizer(self) -> BackendTokenizer:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tokenizer

    @property
    def decoder(self) -> Any:
        """The backend decoder."""
        return self._tokenizer.decoder

    @property
    def is_fast(self) -> bool:
        """Always True (Rust backend)."""
        return True

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def __bool__(self) -> bool:
        return True

    def get_vocab(self) -> dict[str, int]:
        """Token -> id for the whole vocabulary, added tokens included."""
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        """Same as ``get_vocab()``."""
        return self.get_vocab()

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        """Id -> AddedToken of every added token."""
        return self._tokenizer.get_added_tokens_decoder()

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        """Content -> id of every added token, by id."""
        return {token.content: index for index, token in sorted(self.added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        """Same as ``added_tokens_encoder``."""
        return self.added_tokens_encoder

    def convert_tokens_to_ids(self, tokens: str | list[str] | None) -> int | list[int] | None:
        """Token(s) -> id(s); unknown tokens give ``unk_token_id``."""
        if tokens is None:
            return None
        backend = self._tokenizer
        if isinstance(tokens, str):
            index = backend.token_to_id(tokens)
            return index if index is not None else self._unk_id()
        unk = None
        result = []
        for token in tokens:
            index = backend.token_to_id(token)
            if index is None:
                if unk is None:
                    unk = self._unk_id()
                index = unk
            result.append(index)
        return result

    def _unk_id(self) -> int | None:
        unk = self._special_tokens_map.get("unk_token")
        return None if unk is None else self._tokenizer.token_to_id(str(unk))

    def convert_ids_to_tokens(
        self, ids: int | list[int], skip_special_tokens: bool = False
    ) -> str | list[str] | None:
        """Id(s) -> token string(s); ``skip_special_tokens`` drops special tokens from a list."""
        ids = _to_python_ids(ids)
        if isinstance(ids, Integral):
            return self._tokenizer.id_to_token(int(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        id_to_token = self._tokenizer.id_to_token
        return [id_to_token(int(index)) for index in ids if index not in skip]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join tokens into text with the backend decoder (space-joined without one)."""
        decoder = self._tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens encoding adds to one sequence (or a pair)."""
        return self._tokenizer.num_special_tokens_to_add(pair)

    @property
    def max_len_single_sentence(self) -> int:
        """``model_max_length`` minus the special tokens of a single sequence."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        """``model_max_length`` minus the special tokens of a pair."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)
