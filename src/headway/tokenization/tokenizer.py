"""``Tokenizer``: the ``transformers`` tokenizer API over a Rust ``tokenizers.Tokenizer``.

The class is assembled from one mixin per concern: loading (``from_pretrained``), special tokens,
vocabulary, encoding (``__call__``), padding, decoding, saving and chat templates. This module holds
what ties them together: the constructor, pickling, and the representation.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as BackendTokenizer

from . import converters as conv
from .call import EncodingMixin
from .chat import ChatTemplateMixin
from .constants import SPECIAL_TOKENS_ATTRIBUTES, VERY_LARGE_INTEGER
from .decoding import DecodingMixin
from .family_specs import FAMILIES
from .loading import LoadingMixin
from .padding import PaddingMixin
from .saving import SavingMixin
from .special_tokens import SpecialTokensMixin
from .vocabulary import VocabularyMixin

logger = logging.getLogger(__name__)


class Tokenizer(
    LoadingMixin,
    SpecialTokensMixin,
    VocabularyMixin,
    EncodingMixin,
    PaddingMixin,
    DecodingMixin,
    SavingMixin,
    ChatTemplateMixin,
):
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
        if family not in FAMILIES:
            raise ValueError(f"unknown tokenizer family {family!r}; expected one of {sorted(FAMILIES)}")
        spec = FAMILIES[family]
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

        self._init_special_tokens(kwargs)

        model_max_length = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        if model_max_length is None or (  # no limit, however spelled (Infinity, NaN or 1e300 in a JSON file)
            isinstance(model_max_length, float) and not model_max_length < VERY_LARGE_INTEGER
        ):
            model_max_length = VERY_LARGE_INTEGER
        self.model_max_length = int(model_max_length)
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

    # ---- pickling ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

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
