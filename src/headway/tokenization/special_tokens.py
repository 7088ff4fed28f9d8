"""Special tokens: the named ones (``cls_token``, ...), extra ones, added tokens and templates.

The mixin keeps the named special tokens in ``_special_tokens_map`` and reads the post-processor's
template to add special tokens around ids the caller already has.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from numbers import Integral
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken, processors

from .constants import SPECIAL_TOKENS_ATTRIBUTES

if TYPE_CHECKING:
    from .tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Family options readable as attributes (``tokenizer.do_lower_case``), as on the reference classes.
_FAMILY_OPTIONS = {
    "do_lower_case",
    "strip_accents",
    "tokenize_chinese_chars",
    "do_basic_tokenize",
    "split_by_punct",
    "never_split",
    "trim_offsets",
    "legacy",
    "errors",
    "use_default_system_prompt",
}


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


class SpecialTokensMixin:
    """Named, extra and added special tokens of a ``Tokenizer``; the special-token templates."""

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

    def _init_special_tokens(self, kwargs: dict[str, Any]) -> None:
        """Take the special tokens out of the constructor keywords (``kwargs`` is modified)."""
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
