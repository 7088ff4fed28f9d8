"""Tokenizers with the ``transformers`` API, over the Rust ``tokenizers`` library.

``Tokenizer.from_pretrained`` loads a checkpoint's tokenizer (``tokenizer.json`` or vocabulary files
alone) and reproduces the reference library's ids, offsets and word alignment. Calling the tokenizer
returns a ``BatchEncoding``: a dict of lists or tensors that also answers character/word/token
alignment questions.

``torch`` and ``numpy`` are imported only when tensors are asked for.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any, NamedTuple

from tokenizers import AddedToken, Encoding, processors
from tokenizers import Tokenizer as BackendTokenizer

from . import tokenizer_converters as conv
from .checkpoint import atomic_write_text
from .configuration import read_json_object
from .hub import pop_hub_kwargs, resolve

logger = logging.getLogger(__name__)

__all__ = [
    "AddedToken",
    "BatchEncoding",
    "BertTokenizer",
    "BertTokenizerFast",
    "CharSpan",
    "DistilBertTokenizer",
    "DistilBertTokenizerFast",
    "GPT2Tokenizer",
    "GPT2TokenizerFast",
    "LlamaTokenizer",
    "LlamaTokenizerFast",
    "MPNetTokenizer",
    "MPNetTokenizerFast",
    "PreTrainedTokenizer",
    "PreTrainedTokenizerBase",
    "PreTrainedTokenizerFast",
    "RobertaTokenizer",
    "RobertaTokenizerFast",
    "TokenSpan",
    "Tokenizer",
    "TokenizerInputError",
    "XLMRobertaTokenizer",
    "XLMRobertaTokenizerFast",
]

VERY_LARGE_INTEGER = int(1e30)  # model_max_length of a model without a length limit
LARGE_INTEGER = int(1e20)

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("only_first", "only_second", "longest_first", "do_not_truncate")
TENSOR_TYPES = ("pt", "np")
SPECIAL_TOKENS_ATTRIBUTES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)

# tokenizer_config.json keys that describe how a file was loaded rather than the tokenizer.
_NOT_SAVED = {
    "add_bos_token",
    "add_eos_token",
    "added_tokens_decoder",
    "additional_special_tokens",
    "backend",
    "chat_template",
    "device_map",
    "extra_special_tokens",
    "files_loaded",
    "is_local",
    "local_files_only",
    "max_length",
    "merges_file",
    "model_specific_special_tokens",
    "name_or_path",
    "pad_to_multiple_of",
    "pad_token_type_id",
    "post_processor",
    "slow_tokenizer_class",
    "special_tokens_map_file",
    "stride",
    "tokenizer_file",
    "tokenizer_object",
    "truncation_strategy",
    "vocab_file",
}


# Family options readable as attributes (``tokenizer.do_lower_case``), as on the reference classes.
_FAMILY_OPTIONS = {
    "do_lower_case",
    "strip_accents",
    "tokenize_chinese_chars",
    "do_basic_tokenize",
    "never_split",
    "trim_offsets",
    "legacy",
    "errors",
    "use_default_system_prompt",
}


class TokenizerInputError(TypeError, ValueError):
    """Text of the wrong type was given to a tokenizer.

    It is both a ``TypeError`` (the honest kind) and a ``ValueError`` (what the reference raises), so
    code written against either keeps working.
    """


class CharSpan(NamedTuple):
    """Character span ``[start, end)`` in the original string."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Token span ``[start, end)`` in an encoded sequence."""

    start: int
    end: int


# ---------------------------------------------------------------------------------------------
# BatchEncoding
# ---------------------------------------------------------------------------------------------


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

    def _encoding(self, batch_index: int, method: str) -> Encoding:
        if not self._encodings:
            raise ValueError(
                f"{method}() needs backend encodings; this BatchEncoding has none (e.g. built by pad())"
            )
        if batch_index < 0:
            batch_index += len(self._encodings)
        return self._encodings[batch_index]

    @staticmethod
    def _split(first: int, second: int | None) -> tuple[int, int]:
        return (first, second) if second is not None else (0, first)

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
        batch_index, token_index = self._split(batch_or_token_index, token_index)
        encoding = self._encoding(batch_index, "token_to_sequence")
        if token_index < 0:
            token_index += len(encoding)
        return encoding.token_to_sequence(token_index)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Index of the word holding a token (None for special tokens)."""
        batch_index, token_index = self._split(batch_or_token_index, token_index)
        encoding = self._encoding(batch_index, "token_to_word")
        if token_index < 0:
            token_index += len(encoding)
        return encoding.token_to_word(token_index)

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> TokenSpan | None:
        """Token span of a word, or None if no token comes from it."""
        batch_index, word_index = self._split(batch_or_word_index, word_index)
        span = self._encoding(batch_index, "word_to_tokens").word_to_tokens(word_index, sequence_index)
        return TokenSpan(*span) if span is not None else None

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        """Character span of a token in its original string, or None for added special tokens."""
        batch_index, token_index = self._split(batch_or_token_index, token_index)
        span = self._encoding(batch_index, "token_to_chars").token_to_chars(token_index)
        return CharSpan(*span) if span is not None else None

    def char_to_token(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the token covering a character, or None (e.g. whitespace)."""
        batch_index, char_index = self._split(batch_or_char_index, char_index)
        return self._encoding(batch_index, "char_to_token").char_to_token(char_index, sequence_index)

    def word_to_chars(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> CharSpan | None:
        """Character span of a word in its original string."""
        batch_index, word_index = self._split(batch_or_word_index, word_index)
        span = self._encoding(batch_index, "word_to_chars").word_to_chars(word_index, sequence_index)
        return CharSpan(*span) if span is not None else None

    def char_to_word(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """Index of the word holding a character."""
        batch_index, char_index = self._split(batch_or_char_index, char_index)
        return self._encoding(batch_index, "char_to_word").char_to_word(char_index, sequence_index)

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


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err}") from err


def _added_token_from(value: Any) -> Any:
    """Turn serialized AddedToken dicts (``{"__type": "AddedToken", ...}``) back into AddedTokens."""
    if isinstance(value, dict):
        if value.get("__type") == "AddedToken":
            fields = {k: v for k, v in value.items() if k != "__type"}
            return AddedToken(**fields)
        return {key: _added_token_from(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_added_token_from(item) for item in value]
    return value


def _added_token_to_json(value: Any) -> Any:
    if isinstance(value, AddedToken):
        state = value.__getstate__()
        state["__type"] = "AddedToken"
        return state
    if isinstance(value, dict):
        return {key: _added_token_to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_added_token_to_json(item) for item in value]
    return value


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


def _special_property(name: str) -> property:
    def getter(self: Tokenizer) -> str | None:
        value = self._special_tokens_map.get(name)
        return None if value is None else str(value)

    def setter(self: Tokenizer, value: str | AddedToken | None) -> None:
        self._set_special_token(name, value, add_to_vocab=True)

    return property(
        getter, setter, doc=f"The {name.replace('_', ' ')} (str) or None; assigning adds it if new."
    )


def _special_id_property(name: str) -> property:
    def getter(self: Tokenizer) -> int | None:
        value = self._special_tokens_map.get(name)
        return None if value is None else self.convert_tokens_to_ids(str(value))

    def setter(self: Tokenizer, value: int | None) -> None:
        self._set_special_token(
            name, None if value is None else self._token_for_id(value), add_to_vocab=False
        )

    return property(getter, setter, doc=f"Id of the {name.replace('_', ' ')}, or None.")


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------


class Tokenizer:
    """A text tokenizer with the ``transformers`` API, backed by a ``tokenizers.Tokenizer``.

    Build one with ``Tokenizer.from_pretrained(name_or_path)``, or wrap a backend directly with
    ``Tokenizer(tokenizer_object=...)`` / ``Tokenizer(tokenizer_file="tokenizer.json")``.

    Args:
        tokenizer_object: A ``tokenizers.Tokenizer`` (copied).
        tokenizer_file: Path of a ``tokenizer.json``.
        **kwargs: Special tokens (``pad_token="[PAD]"``, ...), ``extra_special_tokens``,
            ``model_max_length``, ``padding_side``, ``truncation_side``, ``model_input_names``,
            ``clean_up_tokenization_spaces``, ``split_special_tokens``, ``add_bos_token``,
            ``add_eos_token`` and family options (``do_lower_case``, ``add_prefix_space``, ...).
    """

    _family: str | None = None
    SPECIAL_TOKENS_ATTRIBUTES = list(SPECIAL_TOKENS_ATTRIBUTES)

    bos_token = _special_property("bos_token")
    eos_token = _special_property("eos_token")
    unk_token = _special_property("unk_token")
    sep_token = _special_property("sep_token")
    pad_token = _special_property("pad_token")
    cls_token = _special_property("cls_token")
    mask_token = _special_property("mask_token")
    bos_token_id = _special_id_property("bos_token")
    eos_token_id = _special_id_property("eos_token")
    unk_token_id = _special_id_property("unk_token")
    sep_token_id = _special_id_property("sep_token")
    pad_token_id = _special_id_property("pad_token")
    cls_token_id = _special_id_property("cls_token")
    mask_token_id = _special_id_property("mask_token")

    def __init__(
        self,
        tokenizer_object: BackendTokenizer | None = None,
        *,
        tokenizer_file: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        family = kwargs.pop("_family", None) or self._family or "generic"
        install_family_post = kwargs.pop("_family_post", False)
        copy_backend = kwargs.pop("_copy", True)
        if family not in conv.FAMILIES:
            raise ValueError(f"unknown tokenizer family {family!r}; expected one of {sorted(conv.FAMILIES)}")
        spec = conv.FAMILIES[family]
        for key, value in spec.defaults.items():
            kwargs.setdefault(key, value)
        conv.family_special_token_objects(family, kwargs)

        if tokenizer_object is not None:
            if not isinstance(tokenizer_object, BackendTokenizer):
                raise TypeError(
                    f"tokenizer_object must be a tokenizers.Tokenizer, got {type(tokenizer_object).__name__}"
                )
            backend = (
                BackendTokenizer.from_str(tokenizer_object.to_str()) if copy_backend else tokenizer_object
            )
        elif tokenizer_file is not None:
            path = Path(tokenizer_file)
            if not path.is_file():
                raise FileNotFoundError(f"tokenizer_file {str(path)!r} does not exist")
            backend = BackendTokenizer.from_file(str(path))
        else:
            raise ValueError(
                "Tokenizer needs a backend: pass tokenizer_object=<tokenizers.Tokenizer> or "
                "tokenizer_file=<path to tokenizer.json>, or load a checkpoint with Tokenizer.from_pretrained()."
            )
        # Padding/truncation baked into the backend only give defaults; each call sets its own.
        truncation, padding = backend.truncation, backend.padding
        if truncation is not None:
            kwargs.setdefault("truncation_side", truncation.get("direction", "right"))
            backend.no_truncation()
        if padding is not None:
            if padding.get("pad_token") is not None:
                kwargs.setdefault("pad_token", padding["pad_token"])
            kwargs.setdefault("padding_side", padding.get("direction", "right"))
            backend.no_padding()

        explicit_bos_eos = "add_bos_token" in kwargs or "add_eos_token" in kwargs
        self._add_bos_token = bool(kwargs.get("add_bos_token", False))
        self._add_eos_token = bool(kwargs.get("add_eos_token", False))
        post_processor = kwargs.pop("post_processor", None)
        if post_processor is not None:
            backend.post_processor = post_processor
        should_update_post_processor = explicit_bos_eos or backend.post_processor is None

        self._tokenizer = backend
        self._family_name = family
        self._lock = threading.RLock()
        self._warned: set[str] = set()
        self._template_cache: dict[tuple[bytes, bool], list[tuple[str, Any, int]]] = {}
        self._in_target_context_manager = False

        if "additional_special_tokens" in kwargs and "extra_special_tokens" not in kwargs:
            kwargs["extra_special_tokens"] = kwargs.pop("additional_special_tokens")
        self.init_kwargs = copy.deepcopy(kwargs)
        self.init_inputs: tuple = ()
        self.name_or_path = str(kwargs.pop("name_or_path", ""))
        self.verbose = bool(kwargs.pop("verbose", False))

        self._special_token_names = list(SPECIAL_TOKENS_ATTRIBUTES)
        self._special_tokens_map: dict[str, str | AddedToken | None] = dict.fromkeys(
            SPECIAL_TOKENS_ATTRIBUTES
        )
        self._extra_special_tokens: list[str | AddedToken] = []
        model_specific = dict(kwargs.pop("model_specific_special_tokens", None) or {})
        for key in list(kwargs):
            value = kwargs[key]
            if key in SPECIAL_TOKENS_ATTRIBUTES:
                kwargs.pop(key)
                if value is not None and not isinstance(value, (str, AddedToken)):
                    raise TypeError(f"{key} must be a str or an AddedToken, got {type(value).__name__}")
                self._special_tokens_map[key] = value
            elif key == "extra_special_tokens":
                kwargs.pop(key)
                if isinstance(value, dict):
                    model_specific.update(value)
                elif isinstance(value, (list, tuple)):
                    self._extra_special_tokens = list(value)
                elif value is not None:
                    raise TypeError(
                        f"extra_special_tokens must be a list of tokens or a dict of named tokens, got {type(value).__name__}"
                    )
            elif key.endswith("_token") and isinstance(value, (str, AddedToken)):
                model_specific[key] = kwargs.pop(key)
        for key, value in model_specific.items():
            if not isinstance(value, (str, AddedToken)):
                raise TypeError(
                    f"special token {key} must be a str or an AddedToken, got {type(value).__name__}"
                )
            if key not in self._special_token_names:
                self._special_token_names.append(key)
            self._special_tokens_map[key] = value

        model_max_length = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        self.model_max_length = int(model_max_length) if model_max_length is not None else VERY_LARGE_INTEGER
        self.padding_side = kwargs.pop("padding_side", spec.padding_side)
        self.truncation_side = kwargs.pop("truncation_side", "right")
        self.model_input_names = list(kwargs.pop("model_input_names", spec.model_input_names))
        self.clean_up_tokenization_spaces = bool(kwargs.pop("clean_up_tokenization_spaces", False))
        self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output = bool(
            kwargs.pop("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
        )
        self.split_special_tokens = bool(kwargs.pop("split_special_tokens", False))
        chat_template = kwargs.pop("chat_template", None)
        if isinstance(chat_template, (list, tuple)):
            chat_template = {item["name"]: item["template"] for item in chat_template}
        self.chat_template = chat_template
        self.add_prefix_space = kwargs.get("add_prefix_space", False)
        backend.encode_special_tokens = self.split_special_tokens

        self._add_initial_tokens(kwargs.pop("added_tokens_decoder", None) or {})
        if should_update_post_processor:
            self.update_post_processor()
        if install_family_post:
            post = conv.family_post_processor(family, self, self.init_kwargs)
            if post is not None:
                backend.post_processor = post

    # ---- construction ----------------------------------------------------------------------

    def _add_initial_tokens(self, added_tokens_decoder: Mapping[Any, Any]) -> None:
        """Add the checkpoint's added tokens, then any special token the vocabulary lacks."""
        backend = self._tokenizer
        present = backend.get_added_tokens_decoder()
        present_reprs = {repr(token) for token in present.values()}
        decoded = {
            int(index): AddedToken(**token) if isinstance(token, dict) else token
            for index, token in added_tokens_decoder.items()
        }
        to_add: list[Any] = [
            token for _, token in sorted(decoded.items()) if repr(token) not in present_reprs
        ]
        encoder = [token.content for token in present.values()] + [str(token) for token in to_add]
        for value in list(self._special_tokens_map.values()) + list(self._extra_special_tokens):
            if value is None:
                continue
            if str(value) not in encoder and value not in to_add:
                to_add.append(value)
        if not to_add:
            return
        named = {str(value) for value in self._special_tokens_map.values() if value}
        tokens = []
        for token in to_add:
            if isinstance(token, str):
                token = AddedToken(token, special=True)
            elif isinstance(token, AddedToken) and not token.special and str(token) in named:
                token.special = True
            tokens.append(token)
        backend.add_tokens(tokens)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *init_inputs: Any, **kwargs: Any
    ) -> Tokenizer:
        """Load the tokenizer of a checkpoint (local folder, HF cache, packaged model or Hub id).

        The tokenizer family (BERT WordPiece, GPT-2/RoBERTa byte-level BPE, Llama SentencePiece, ...)
        is chosen like the reference ``AutoTokenizer`` does, from ``tokenizer_config.json`` and
        ``config.json``; a subclass such as ``BertTokenizerFast`` forces its own family.

        Args:
            pretrained_model_name_or_path: Folder path or Hub id.
            *init_inputs: Not supported (must be empty).
            **kwargs: Hub options (``revision``, ``cache_dir``, ``local_files_only``, ``token``,
                ``force_download``, ``subfolder``), a model ``config`` (object or dict) used to pick
                the family, and tokenizer options overriding ``tokenizer_config.json``.

        Raises:
            FileNotFoundError: The checkpoint or its tokenizer files cannot be found.
            ValueError: ``trust_remote_code=True`` (refused), or unusable tokenizer files.
        """
        if init_inputs:
            raise TypeError(
                f"from_pretrained takes no positional tokenizer arguments besides the checkpoint; got {len(init_inputs)}"
            )
        hub_kwargs = pop_hub_kwargs(kwargs)
        for ignored in ("use_fast", "_from_auto", "_from_pipeline", "tokenizer_type", "code_revision"):
            kwargs.pop(ignored, None)
        model_config = kwargs.pop("config", None)
        ckpt = resolve(pretrained_model_name_or_path, **hub_kwargs)

        config_path = ckpt.get(TOKENIZER_CONFIG_FILE)
        tok_config = read_json_object(config_path) if config_path is not None else {}
        json_path = ckpt.get(TOKENIZER_FILE)
        tokenizer_json = conv.TokenizerJson.read(json_path) if json_path is not None else None

        hub_class = tok_config.get("tokenizer_class")
        if cls._family is not None:
            family = cls._family
        else:
            model_type = None
            if model_config is not None:
                model_type = (
                    model_config.get("model_type")
                    if isinstance(model_config, Mapping)
                    else getattr(model_config, "model_type", None)
                )
                if hub_class is None:
                    hub_class = (
                        model_config.get("tokenizer_class")
                        if isinstance(model_config, Mapping)
                        else getattr(model_config, "tokenizer_class", None)
                    )
            else:
                model_config_path = ckpt.get("config.json")
                if model_config_path is not None:
                    model_json = _read_json(model_config_path)
                    if isinstance(model_json, dict):
                        model_type = model_json.get("model_type")
                        hub_class = hub_class or model_json.get("tokenizer_class")
            family = conv.resolve_family(hub_class, model_type, tokenizer_json)
            if json_path is None and family == "generic":
                family = cls._family_without_tokenizer_json(ckpt, hub_class)

        init_kwargs = cls._gather_init_kwargs(ckpt, tok_config, tokenizer_json, kwargs)
        init_kwargs["name_or_path"] = ckpt.name
        for key, value in conv.FAMILIES[family].defaults.items():
            init_kwargs.setdefault(key, value)
        conv.family_special_token_objects(family, init_kwargs)

        if tokenizer_json is not None:
            backend, family = conv.backend_from_tokenizer_json(tokenizer_json, family, init_kwargs)
        else:
            files = cls._vocab_files(ckpt, family)
            backend = conv.backend_from_vocab_files(files, family, init_kwargs)
        target = cls
        if cls is Tokenizer:
            target = _FAMILY_CLASSES.get(family, Tokenizer)
        return target(
            tokenizer_object=backend,
            _family=family,
            _family_post=family != "generic",
            _copy=False,
            **init_kwargs,
        )

    @staticmethod
    def _family_without_tokenizer_json(ckpt: Any, hub_class: str | None) -> str:
        """Family for a checkpoint with no tokenizer.json and no dedicated class: guess from its files."""
        if hub_class and conv.strip_fast(hub_class) not in conv.CLASS_TO_FAMILY:
            raise ValueError(
                f"{ckpt.name!r} has no tokenizer.json and its tokenizer_class {hub_class!r} is not supported "
                f"without one. Supported classes: {sorted(set(conv.CLASS_TO_FAMILY))}. Save the tokenizer with "
                "tokenizer.json (e.g. transformers' save_pretrained) to load it here."
            )
        if ckpt.get("tokenizer.model") is not None:
            return "generic"
        if ckpt.get("vocab.txt") is not None:
            return "bert"
        if ckpt.get("vocab.json") is not None and ckpt.get("merges.txt") is not None:
            return "gpt2"
        return "generic"

    @staticmethod
    def _vocab_files(ckpt: Any, family: str) -> dict[str, Path]:
        """Locate the vocabulary files a family needs when there is no tokenizer.json."""
        wanted = conv.FAMILIES[family].vocab_files
        for names in wanted:
            paths = {name: ckpt.get(name) for name in names}
            if all(path is not None for path in paths.values()):
                if names[0].endswith(".model"):
                    return {"spm": paths[names[0]]}
                return paths  # type: ignore[return-value]
        needed = f" or {' or '.join('+'.join(names) for names in wanted)}" if wanted else ""
        raise FileNotFoundError(
            f"{ckpt.name!r} has no tokenizer: a {conv.FAMILIES[family].class_name} needs {TOKENIZER_FILE}{needed}. "
            "Looked in:\n" + "\n".join(f"  - {place}" for place in ckpt.searched)
        )

    @staticmethod
    def _gather_init_kwargs(
        ckpt: Any, tok_config: dict[str, Any], tokenizer_json: conv.TokenizerJson | None, user_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge tokenizer_config.json, legacy special-token files and user keywords."""
        init_kwargs = {k: v for k, v in tok_config.items() if k not in ("tokenizer_class", "init_inputs")}
        for key in ("tokenizer_file", "vocab_file", "merges_file", "special_tokens_map_file", "name_or_path"):
            init_kwargs.pop(key, None)  # paths come from the checkpoint only, never from the config
        if tokenizer_json is not None:
            init_kwargs.pop("add_bos_token", None)
            init_kwargs.pop("add_eos_token", None)
        template_path = ckpt.get(CHAT_TEMPLATE_FILE)
        if template_path is not None:
            init_kwargs["chat_template"] = template_path.read_text(encoding="utf-8")
        init_kwargs.update(user_kwargs)
        if "additional_special_tokens" in init_kwargs and not init_kwargs.get("extra_special_tokens"):
            init_kwargs["extra_special_tokens"] = init_kwargs.pop("additional_special_tokens")

        added_decoder: dict[int, AddedToken] = {}
        added_map: dict[str, AddedToken] = {}
        if "added_tokens_decoder" in init_kwargs:
            for index, token in (init_kwargs["added_tokens_decoder"] or {}).items():
                if isinstance(token, dict):
                    token = AddedToken(**{k: v for k, v in token.items() if k != "__type"})
                if not isinstance(token, AddedToken):
                    raise TypeError(
                        f"added_tokens_decoder[{index}] must be a dict or an AddedToken, got {type(token).__name__}"
                    )
                added_decoder[int(index)] = token
                added_map[str(token)] = token
        else:
            map_path = ckpt.get(SPECIAL_TOKENS_MAP_FILE)
            if map_path is not None:
                special_map = _read_json(map_path)
                for key, value in (special_map or {}).items():
                    if user_kwargs.get(key):
                        continue
                    if isinstance(value, dict) and key != "extra_special_tokens":
                        fields = {k: v for k, v in value.items() if k not in ("special", "__type")}
                        value = AddedToken(**fields, special=True)
                    elif key == "extra_special_tokens" and isinstance(value, list):
                        merged = list(init_kwargs.get("extra_special_tokens") or [])
                        for token in value:
                            token = AddedToken(**token, special=True) if isinstance(token, dict) else token
                            if token not in merged:
                                merged.append(token)
                        value = merged
                    init_kwargs[key] = value
            added_path = ckpt.get(ADDED_TOKENS_FILE)
            if added_path is not None:
                specials = {str(init_kwargs[k]) for k in SPECIAL_TOKENS_ATTRIBUTES if init_kwargs.get(k)}
                extras = init_kwargs.get("extra_special_tokens") or []
                specials.update(str(t) for t in (extras.values() if isinstance(extras, dict) else extras))
                for content, index in _read_json(added_path).items():
                    special = content in specials
                    token = AddedToken(
                        content, rstrip=False, lstrip=False, normalized=not special, special=special
                    )
                    added_decoder[int(index)] = token
                    added_map[content] = token
            if tokenizer_json is not None:
                for index, token in tokenizer_json.added_tokens().items():
                    added_decoder[index] = token
                    added_map[str(token)] = token
        init_kwargs["added_tokens_decoder"] = added_decoder
        init_kwargs = _added_token_from(init_kwargs)
        if added_map:
            for key in SPECIAL_TOKENS_ATTRIBUTES:
                if init_kwargs.get(key) is not None:
                    init_kwargs[key] = added_map.get(str(init_kwargs[key]), init_kwargs[key])
        return init_kwargs

    # ---- pickling ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ---- special tokens --------------------------------------------------------------------

    def __getattr__(self, key: str) -> Any:
        named = self.__dict__.get("_special_tokens_map")
        if named is not None and not key.startswith("_"):
            base = key.removesuffix("_id")
            if base in named:
                value = named[base]
                if value is None:
                    return None
                return self.convert_tokens_to_ids(str(value)) if key != base else str(value)
        options = self.__dict__.get("init_kwargs")
        if options is not None and key in _FAMILY_OPTIONS and key in options:
            return options[key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def _set_special_token(self, name: str, value: str | AddedToken | None, add_to_vocab: bool) -> None:
        if value is not None and not isinstance(value, (str, AddedToken)):
            raise TypeError(f"{name} must be a str, an AddedToken or None; got {type(value).__name__}")
        self._special_tokens_map[name] = value
        if add_to_vocab and value is not None and self._tokenizer.token_to_id(str(value)) is None:
            token = (
                value if isinstance(value, AddedToken) else AddedToken(value, special=True, normalized=False)
            )
            self._tokenizer.add_special_tokens([token])
            logger.info(
                "Added %r to the vocabulary as %s (id %d)",
                str(value),
                name,
                self._tokenizer.token_to_id(str(value)),
            )

    def _token_for_id(self, index: Any) -> str:
        if not isinstance(index, Integral) or isinstance(index, bool):
            raise TypeError(f"a token id must be an int, got {type(index).__name__}")
        token = self._tokenizer.id_to_token(int(index))
        if token is None:
            raise ValueError(f"token id {index} is not in the vocabulary (size {len(self)})")
        return token

    @property
    def extra_special_tokens(self) -> list[str]:
        """Special tokens beyond the named ones (``additional_special_tokens`` in older versions)."""
        return [str(token) for token in self._extra_special_tokens]

    @extra_special_tokens.setter
    def extra_special_tokens(self, value: list[str | AddedToken] | None) -> None:
        if value is not None and not isinstance(value, (list, tuple)):
            raise TypeError(
                f"extra_special_tokens must be a list of str or AddedToken, got {type(value).__name__}"
            )
        self._extra_special_tokens = list(value or [])

    additional_special_tokens = extra_special_tokens

    @property
    def extra_special_tokens_ids(self) -> list[int]:
        """Ids of ``extra_special_tokens``."""
        return self.convert_tokens_to_ids(self.extra_special_tokens)

    additional_special_tokens_ids = extra_special_tokens_ids

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """Named special tokens that are set, as strings (``{"pad_token": "[PAD]", ...}``)."""
        return {
            name: str(self._special_tokens_map[name])
            for name in self._special_token_names
            if self._special_tokens_map.get(name) is not None
        }

    @property
    def all_special_tokens(self) -> list[str]:
        """Every special token (named, then extra), without duplicates."""
        seen: dict[str, None] = {}
        for name in self._special_token_names:
            value = self._special_tokens_map.get(name)
            if value is not None:
                seen.setdefault(str(value))
        for value in self._extra_special_tokens:
            seen.setdefault(str(value))
        return list(seen)

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of ``all_special_tokens``."""
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def pad_token_type_id(self) -> int:
        """Token type id used for padding (always 0)."""
        return 0

    def add_special_tokens(
        self, special_tokens_dict: Mapping[str, Any], replace_extra_special_tokens: bool = True
    ) -> int:
        """Set named special tokens (and extra ones) and add those missing from the vocabulary.

        Args:
            special_tokens_dict: Keys among ``bos_token``, ``eos_token``, ``unk_token``, ``sep_token``,
                ``pad_token``, ``cls_token``, ``mask_token``, ``extra_special_tokens`` (or
                ``additional_special_tokens``); values are str/AddedToken (a list for the extras).
            replace_extra_special_tokens: Replace the extra special tokens rather than extend them.

        Returns:
            How many tokens were added to the vocabulary.
        """
        if not special_tokens_dict:
            return 0
        if not isinstance(special_tokens_dict, Mapping):
            raise TypeError(
                f"add_special_tokens takes a dict like {{'pad_token': '[PAD]'}}, got {type(special_tokens_dict).__name__}"
            )
        tokens = dict(special_tokens_dict)
        if "additional_special_tokens" in tokens and not tokens.get("extra_special_tokens"):
            tokens["extra_special_tokens"] = tokens.pop("additional_special_tokens")
        allowed = list(self._special_token_names) + ["extra_special_tokens", "additional_special_tokens"]
        to_add: list[AddedToken] = []
        for key, value in tokens.items():
            if key not in allowed:
                raise ValueError(f"{key!r} is not a special token key; valid keys: {allowed}")
            if key in ("extra_special_tokens", "additional_special_tokens"):
                if not isinstance(value, (list, tuple)) or not all(
                    isinstance(t, (str, AddedToken)) for t in value
                ):
                    raise TypeError(f"{key} must be a list of str or AddedToken, got {value!r}")
                new = [
                    AddedToken(t, rstrip=False, lstrip=False, normalized=False, special=True)
                    if isinstance(t, str)
                    else t
                    for t in value
                    if replace_extra_special_tokens or str(t) not in self.extra_special_tokens
                ]
                if replace_extra_special_tokens and new:
                    self._extra_special_tokens = list(new)
                else:
                    self._extra_special_tokens.extend(new)
                to_add.extend(new)
            else:
                if not isinstance(value, (str, AddedToken)):
                    raise TypeError(f"{key} must be a str or an AddedToken, got {type(value).__name__}")
                if isinstance(value, str):
                    value = AddedToken(value, rstrip=False, lstrip=False, normalized=False, special=True)
                self._set_special_token(key, value, add_to_vocab=False)
                to_add.append(value)
        return self.add_tokens(to_add, special_tokens=True)

    def add_tokens(
        self, new_tokens: str | AddedToken | list[str | AddedToken], special_tokens: bool = False
    ) -> int:
        """Add tokens to the vocabulary; they are matched whole, before normalization if not ``normalized``.

        A token already in the base vocabulary keeps its id; one already added is skipped.

        Returns:
            How many tokens were registered (as the reference counts: base-vocabulary tokens included).
        """
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        for token in new_tokens:
            if not isinstance(token, (str, AddedToken)):
                raise TypeError(
                    f"tokens to add must be str or AddedToken, got {type(token).__name__}: {token!r}"
                )
        with self._lock:
            if special_tokens:
                return self._tokenizer.add_special_tokens(list(new_tokens))
            return self._tokenizer.add_tokens(list(new_tokens))

    @property
    def add_bos_token(self) -> bool:
        """Whether the generic post-processor adds ``bos_token``; setting rebuilds it."""
        return self._add_bos_token

    @add_bos_token.setter
    def add_bos_token(self, value: bool) -> None:
        self._add_bos_token = bool(value)
        self.update_post_processor()

    @property
    def add_eos_token(self) -> bool:
        """Whether the generic post-processor adds ``eos_token``; setting rebuilds it."""
        return self._add_eos_token

    @add_eos_token.setter
    def add_eos_token(self, value: bool) -> None:
        self._add_eos_token = bool(value)
        self.update_post_processor()

    def update_post_processor(self) -> None:
        """Rebuild the post-processor from ``add_bos_token``/``add_eos_token`` and the bos/eos tokens."""
        bos, eos = self.bos_token, self.eos_token
        if bos is None:
            self._add_bos_token = False
        if eos is None:
            self._add_eos_token = False
        add_bos, add_eos = self._add_bos_token, self._add_eos_token
        single = f"{bos + ':0 ' if add_bos else ''}$A:0{' ' + eos + ':0' if add_eos else ''}"
        pair = f"{single}{' ' + bos + ':1' if add_bos else ''} $B:1{' ' + eos + ':1' if add_eos else ''}"
        special = []
        if add_bos:
            special.append((bos, self.bos_token_id))
        if add_eos:
            special.append((eos, self.eos_token_id))
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=special
        )

    # ---- vocabulary ------------------------------------------------------------------------

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

    # ---- special-token templates ----------------------------------------------------------

    def _template(self, pair: bool) -> list[tuple[str, Any, int]]:
        """The post-processor layout: ("seq", 0|1, type_id) and ("tok", [ids], type_id) items."""
        post = self._tokenizer.post_processor
        state = post.__getstate__() if post is not None else b"null"
        key = (state, pair)
        cached = self._template_cache.get(key)
        if cached is None:
            cached = _template_items(json.loads(state), pair)
            self._template_cache[key] = cached
        return cached

    def _apply_template(self, ids0: list[int], ids1: list[int] | None, what: str) -> list[int]:
        out: list[int] = []
        for kind, value, type_id in self._template(ids1 is not None):
            if kind == "seq":
                part = ids0 if value == 0 else (ids1 or [])
                if what == "ids":
                    out.extend(part)
                elif what == "types":
                    out.extend([type_id] * len(part))
                else:
                    out.extend([0] * len(part))
            else:
                out.extend(value if what == "ids" else [type_id if what == "types" else 1] * len(value))
        return out

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """Add the special tokens the tokenizer's post-processor adds around one or two sequences."""
        return self._apply_template(
            list(token_ids_0), None if token_ids_1 is None else list(token_ids_1), "ids"
        )

    def create_token_type_ids_from_sequences(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """Token type ids matching ``build_inputs_with_special_tokens``."""
        return self._apply_template(
            list(token_ids_0), None if token_ids_1 is None else list(token_ids_1), "types"
        )

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 for special tokens, 0 for sequence tokens.

        With ``already_has_special_tokens=True`` the ids are already formatted and special ids are
        looked up; otherwise the mask is that of ``build_inputs_with_special_tokens``.
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when already_has_special_tokens=True")
            special = set(self.all_special_ids)
            return [1 if int(index) in special else 0 for index in token_ids_0]
        return self._apply_template(
            list(token_ids_0), None if token_ids_1 is None else list(token_ids_1), "mask"
        )

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
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, Integral)):
            raise TypeError(f"max_length must be an int or None, got {type(max_length).__name__}")
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
            and pad_to_multiple_of is not None
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
                raise ValueError(f"tokenization failed: {err}") from err
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
        data: dict[str, Any] = {"input_ids": [e.ids for e in flat]}
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
        encodings = None
        if text is not None:
            encodings = self._encode_plus(text, text_pair, max_length=max_length, **common)
        if text_target is None:
            return encodings  # type: ignore[return-value]
        target_length = max_target_length if max_target_length is not None else max_length
        targets = self._encode_plus(text_target, text_pair_target, max_length=target_length, **common)
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

    @contextlib.contextmanager
    def as_target_tokenizer(self) -> Iterator[Tokenizer]:
        """Deprecated context in which calls encode targets; prefer ``tokenizer(text_target=...)``.

        With a single tokenizer, targets are encoded exactly like inputs.
        """
        self._warn_once(
            "as_target_tokenizer",
            "as_target_tokenizer() is deprecated; pass targets with tokenizer(text_target=...) instead.",
        )
        self._in_target_context_manager = True
        try:
            yield self
        finally:
            self._in_target_context_manager = False

    # ---- padding ---------------------------------------------------------------------------

    def pad(
        self,
        encoded_inputs: Any,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Pad already-encoded inputs (a dict of lists, or a list of dicts as a collate function).

        ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``special_tokens_mask`` are padded;
        other keys are kept as they are. Tensor inputs come back as tensors of the same kind.
        """
        if (
            isinstance(encoded_inputs, (list, tuple))
            and encoded_inputs
            and isinstance(encoded_inputs[0], Mapping)
        ):
            encoded_inputs = {
                # .keys() explicitly: some Mapping types (e.g. TensorDict) iterate differently
                key: [example[key] for example in encoded_inputs]
                for key in encoded_inputs[0].keys()  # noqa: SIM118
            }
        if not isinstance(encoded_inputs, Mapping):
            raise TypeError(
                f"pad() takes a dict of lists or a list of dicts, got {type(encoded_inputs).__name__}"
            )
        encoded_inputs = dict(encoded_inputs)
        main = self.model_input_names[0]
        if main not in encoded_inputs:
            raise ValueError(f"pad() needs {main!r} in the inputs; got keys {list(encoded_inputs.keys())}")
        preserved_mask = None
        mask = encoded_inputs.get("attention_mask")
        if isinstance(mask, list) and mask and getattr(mask[0], "ndim", 0) > 1:
            preserved_mask = encoded_inputs.pop("attention_mask")
        required = encoded_inputs[main]
        if required is None or (hasattr(required, "__len__") and len(required) == 0):
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return BatchEncoding(encoded_inputs, tensor_type=return_tensors)
        first = required[0]
        if isinstance(first, (list, tuple)):
            first = next((item[0] for item in required if len(item)), first)
        if not isinstance(first, (Integral, list, tuple)):
            kind = type(first).__module__.split(".")[0]
            if kind == "torch":
                return_tensors = return_tensors or "pt"
            elif kind == "numpy":
                return_tensors = return_tensors or "np"
            else:
                raise TypeError(
                    f"cannot pad values of type {type(first).__name__}; use lists, numpy arrays or torch tensors"
                )
            encoded_inputs = {key: _to_python_ids(value) for key, value in encoded_inputs.items()}
        padding_strategy, _, max_length = self._resolve_strategies(padding, None, max_length, verbose=verbose)
        if padding_strategy == "max_length" and max_length is None:
            padding_strategy = "do_not_pad"
        required = encoded_inputs[main]
        if required and not isinstance(required[0], (list, tuple)):
            padded = self._pad_one(
                encoded_inputs,
                max_length,
                padding_strategy,
                pad_to_multiple_of,
                padding_side,
                return_attention_mask,
            )
            return BatchEncoding(padded, tensor_type=return_tensors)
        batch_size = len(required)
        for key, value in encoded_inputs.items():
            if len(value) != batch_size:
                raise ValueError(f"pad(): {key!r} has {len(value)} items but {main!r} has {batch_size}")
        if padding_strategy == "longest":
            max_length = max(len(item) for item in required)
            padding_strategy = "max_length"
        batch: dict[str, list[Any]] = {}
        for index in range(batch_size):
            example = {key: value[index] for key, value in encoded_inputs.items()}
            padded = self._pad_one(
                example, max_length, padding_strategy, pad_to_multiple_of, padding_side, return_attention_mask
            )
            for key, value in padded.items():
                batch.setdefault(key, []).append(value)
        if preserved_mask is not None:
            sample = preserved_mask[0]
            if type(sample).__module__.startswith("torch"):
                import torch

                batch["attention_mask"] = torch.stack(preserved_mask)
            else:
                import numpy as np

                batch["attention_mask"] = np.stack(preserved_mask)
        return BatchEncoding(batch, tensor_type=return_tensors)

    def _pad_one(
        self,
        example: dict[str, Any],
        max_length: int | None,
        padding_strategy: str,
        pad_to_multiple_of: int | None,
        padding_side: str | None,
        return_attention_mask: bool | None,
    ) -> dict[str, Any]:
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        main = self.model_input_names[0]
        required = list(example[main])
        if padding_strategy == "longest":
            max_length = len(required)
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if return_attention_mask and "attention_mask" not in example:
            example["attention_mask"] = [1] * len(required)
        if padding_strategy == "do_not_pad" or max_length is None or len(required) == max_length:
            return example
        difference = max_length - len(required)
        if difference < 0:
            return example
        side = padding_side if padding_side is not None else self._padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        pads = {
            "attention_mask": 0 if return_attention_mask else None,
            "token_type_ids": 0,
            "special_tokens_mask": 1,
            main: self.pad_token_id,
        }
        for key, fill in pads.items():
            if key not in example or fill is None:
                continue
            values = list(example[key])
            example[key] = values + [fill] * difference if side == "right" else [fill] * difference + values
        return example

    # ---- decoding --------------------------------------------------------------------------

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

    # ---- saving ----------------------------------------------------------------------------

    def _config_for_save(self) -> dict[str, Any]:
        config = {key: value for key, value in self.init_kwargs.items() if key not in _NOT_SAVED}
        for key in SPECIAL_TOKENS_ATTRIBUTES:
            config.pop(key, None)
        config.update(
            model_max_length=self.model_max_length,
            padding_side=self._padding_side,
            truncation_side=self._truncation_side,
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            model_input_names=list(self.model_input_names),
        )
        if self.split_special_tokens:
            config["split_special_tokens"] = True
        for name in self._special_token_names:
            value = self._special_tokens_map.get(name)
            if value is not None or name in self.init_kwargs:
                config[name] = None if value is None else str(value)
        if self._extra_special_tokens:
            config["extra_special_tokens"] = self.extra_special_tokens
        if isinstance(self.chat_template, dict):
            config["chat_template"] = [{"name": k, "template": v} for k, v in self.chat_template.items()]
        config["tokenizer_class"] = conv.FAMILIES[self._family_name].class_name
        return _added_token_to_json(config)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
        push_to_hub: bool = False,
        **kwargs: Any,
    ) -> tuple[str, ...]:
        """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``.

        Files are written atomically; the folder loads back with ``from_pretrained`` here and in the
        reference library.

        Returns:
            Paths of the written files.
        """
        if push_to_hub:
            raise ValueError(
                "push_to_hub=True is not supported; upload the saved folder with huggingface_hub"
            )
        if legacy_format:
            raise ValueError(
                "legacy_format=True (slow-tokenizer vocabulary files) is not supported; use the default"
            )
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"save_directory {str(directory)!r} is a file; expected a folder")
        directory.mkdir(parents=True, exist_ok=True)
        prefix = f"{filename_prefix}-" if filename_prefix else ""

        config = self._config_for_save()
        special_map: dict[str, Any] = {
            name: str(value) for name, value in self._special_tokens_map.items() if value is not None
        }
        if self._extra_special_tokens:
            special_map["additional_special_tokens"] = self.extra_special_tokens
        with self._lock:
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
            tokenizer_json = self._tokenizer.to_str(pretty=True)

        written = []
        paths = {
            TOKENIZER_CONFIG_FILE: json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            SPECIAL_TOKENS_MAP_FILE: json.dumps(special_map, indent=2, sort_keys=True, ensure_ascii=False)
            + "\n",
            TOKENIZER_FILE: tokenizer_json,
        }
        if isinstance(self.chat_template, str):
            paths[CHAT_TEMPLATE_FILE] = self.chat_template
        for name, text in paths.items():
            path = directory / f"{prefix}{name}"
            atomic_write_text(path, text)
            written.append(str(path))
        logger.info("Tokenizer saved to %s", directory)
        return tuple(written)

    # ---- misc ------------------------------------------------------------------------------

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def __repr__(self) -> str:
        added = "\n\t".join(f"{index}: {token!r}," for index, token in self.added_tokens_decoder.items())
        added = f"\n\t{added}\n" if added else ""
        return (
            f"{type(self).__name__}(name_or_path='{self.name_or_path}', vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, padding_side='{self._padding_side}', "
            f"truncation_side='{self._truncation_side}', special_tokens={self.special_tokens_map}, "
            f"added_tokens_decoder={{{added}}})"
        )


def _template_items(state: Any, pair: bool) -> list[tuple[str, Any, int]]:
    """Layout of a serialized post-processor for one sequence or a pair."""
    default = [("seq", 0, 0)] + ([("seq", 1, 1)] if pair else [])
    if not isinstance(state, dict):
        return default
    kind = state.get("type")
    if kind == "Sequence":
        for inner in state.get("processors", []):
            if inner.get("type") not in ("ByteLevel",):
                return _template_items(inner, pair)
        return default
    if kind == "TemplateProcessing":
        specials = state.get("special_tokens", {})
        items: list[tuple[str, Any, int]] = []
        for piece in state.get("pair" if pair else "single", []):
            if "Sequence" in piece:
                seq = piece["Sequence"]
                items.append(("seq", 0 if seq["id"] == "A" else 1, seq.get("type_id", 0)))
            elif "SpecialToken" in piece:
                tok = piece["SpecialToken"]
                items.append(("tok", list(specials.get(tok["id"], {}).get("ids", [])), tok.get("type_id", 0)))
        return items
    if kind in ("BertProcessing", "RobertaProcessing"):
        cls_id, sep_id = state["cls"][1], state["sep"][1]
        items = [("tok", [cls_id], 0), ("seq", 0, 0), ("tok", [sep_id], 0)]
        if pair:
            second = 1 if kind == "BertProcessing" else 0
            if kind == "RobertaProcessing":
                items.append(("tok", [sep_id], 0))
            items += [("seq", 1, second), ("tok", [sep_id], second)]
        return items
    return default


# ---------------------------------------------------------------------------------------------
# Reference class names
# ---------------------------------------------------------------------------------------------


class BertTokenizerFast(Tokenizer):
    """BERT WordPiece tokenizer (``vocab.txt`` or ``tokenizer.json``)."""

    _family = "bert"


class DistilBertTokenizerFast(Tokenizer):
    """DistilBERT tokenizer: BERT WordPiece without token type ids."""

    _family = "distilbert"


class MPNetTokenizerFast(Tokenizer):
    """MPNet tokenizer: BERT WordPiece with RoBERTa-style special tokens."""

    _family = "mpnet"


class GPT2TokenizerFast(Tokenizer):
    """GPT-2 byte-level BPE tokenizer (``vocab.json`` + ``merges.txt`` or ``tokenizer.json``)."""

    _family = "gpt2"


class RobertaTokenizerFast(Tokenizer):
    """RoBERTa byte-level BPE tokenizer with ``<s> A </s></s> B </s>`` templates."""

    _family = "roberta"


class LlamaTokenizerFast(Tokenizer):
    """Llama/Mistral SentencePiece BPE tokenizer (``tokenizer.model`` or ``tokenizer.json``)."""

    _family = "llama"


class XLMRobertaTokenizerFast(Tokenizer):
    """XLM-RoBERTa Unigram tokenizer (from ``tokenizer.json``)."""

    _family = "xlm_roberta"


_FAMILY_CLASSES: dict[str, type[Tokenizer]] = {
    "bert": BertTokenizerFast,
    "distilbert": DistilBertTokenizerFast,
    "mpnet": MPNetTokenizerFast,
    "gpt2": GPT2TokenizerFast,
    "roberta": RobertaTokenizerFast,
    "llama": LlamaTokenizerFast,
    "xlm_roberta": XLMRobertaTokenizerFast,
}

BertTokenizer = BertTokenizerFast
DistilBertTokenizer = DistilBertTokenizerFast
MPNetTokenizer = MPNetTokenizerFast
GPT2Tokenizer = GPT2TokenizerFast
RobertaTokenizer = RobertaTokenizerFast
LlamaTokenizer = LlamaTokenizerFast
XLMRobertaTokenizer = XLMRobertaTokenizerFast
PreTrainedTokenizerFast = Tokenizer
PreTrainedTokenizer = Tokenizer
PreTrainedTokenizerBase = Tokenizer
