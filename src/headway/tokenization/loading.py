"""Loading a checkpoint's tokenizer files: ``from_pretrained``.

Finds and reads ``tokenizer.json``, the vocabulary files, ``tokenizer_config.json``,
``special_tokens_map.json``, ``added_tokens.json`` and ``chat_template.jinja``, picks the tokenizer
family the reference ``AutoTokenizer`` would, and builds the backend through ``converters``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken

from ..hub import pop_hub_kwargs, resolve
from ..jsonfile import check_field, read_json, type_name
from . import converters as conv
from .chat import read_chat_templates
from .constants import (
    ADDED_TOKENS_FILE,
    SPECIAL_TOKENS_ATTRIBUTES,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
)
from .family_specs import CLASS_TO_FAMILY, FAMILIES, resolve_family, strip_fast

if TYPE_CHECKING:
    from .tokenizer import Tokenizer


_ADDED_TOKEN_FLAGS = ("single_word", "lstrip", "rstrip", "normalized", "special")


def _check_token(value: Any, path: Path, field: str, what: str) -> None:
    """A special token as a file spells it: a string, or an AddedToken-like object (``content`` + flags)."""
    if value is None or isinstance(value, str):
        return
    if not isinstance(value, dict):
        raise ValueError(  # noqa: TRY004 - bad file content, not a bad argument
            f"{what} {str(path)!r}: {field} must be a token (a string or an AddedToken-like object with a "
            f"'content' string), got {type_name(value)} {value!r:.80}"
        )
    check_field(value.get("content"), str, source=path, field=f"{field}['content']", what=what)
    for key, flag in value.items():
        if key in _ADDED_TOKEN_FLAGS:
            check_field(flag, bool, source=path, field=f"{field}[{key!r}]", what=what)
        elif key not in ("content", "__type"):
            raise ValueError(
                f"{what} {str(path)!r}: {field} has the key {key!r}, which an AddedToken does not take"
            )


def _check_special_tokens(data: dict[str, Any], path: Path, what: str) -> None:
    """The token fields of tokenizer_config.json / special_tokens_map.json have the types loading needs."""
    for key in SPECIAL_TOKENS_ATTRIBUTES:
        if key in data:
            _check_token(data[key], path, key, what)
    for key in ("additional_special_tokens", "extra_special_tokens"):
        tokens = data.get(key)
        if tokens is None:
            continue
        check_field(tokens, (list, dict), source=path, field=key, what=what)
        for name, token in tokens.items() if isinstance(tokens, dict) else enumerate(tokens):
            _check_token(token, path, f"{key}[{name!r}]", what)
    decoder = data.get("added_tokens_decoder")
    if decoder is not None:
        check_field(decoder, dict, source=path, field="added_tokens_decoder", what=what)
        for index, token in decoder.items():
            field = f"added_tokens_decoder[{index!r}]"
            if not str(index).strip().isdigit():
                raise ValueError(f"{what} {str(path)!r}: {field}: the keys must be token ids (integers)")
            check_field(token, dict, source=path, field=field, what=what)
            _check_token(token, path, field, what)


# tokenizer_config.json fields whose wrong kind would fail later, naming neither the field nor the file (the
# reference fails on them too): the kinds accepted are those the reference loads and runs with.
_CONFIG_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "tokenizer_class": (str, type(None)),
    "model_max_length": (int, float, type(None)),  # a float: Infinity (no limit) or 1e30, as Hub files say
    # A string is read letter by letter and an object by its keys, as in the reference (which loads both).
    "model_input_names": (list, str, dict),
}


def _read_tokenizer_config(path: Path) -> dict[str, Any]:
    data = read_json(path, what="tokenizer config")
    for key, kinds in _CONFIG_FIELD_TYPES.items():
        if key in data:
            check_field(data[key], kinds, source=path, field=key, what="tokenizer config")
    _check_special_tokens(data, path, "tokenizer config")
    return data


def _read_special_tokens_map(path: Path) -> dict[str, Any]:
    data = read_json(path, what="special tokens map")
    _check_special_tokens(data, path, "special tokens map")
    return data


def _read_added_tokens(path: Path) -> dict[str, int]:
    """``added_tokens.json``: token text -> id."""
    data = read_json(path, what="added tokens file")
    for content, index in data.items():
        check_field(index, int, source=path, field=f"the id of {content!r}", what="added tokens file")
    return data


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


class LoadingMixin:
    """``from_pretrained`` and the reading of checkpoint files it needs."""

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
            **kwargs: ``gguf_file`` (a GGUF file in the checkpoint, or a path: the tokenizer comes from its
                metadata), hub options (``revision``, ``cache_dir``, ``local_files_only``, ``token``,
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
        gguf_file = kwargs.pop("gguf_file", None)
        if gguf_file is not None:  # the tokenizer a llama.cpp GGUF file's metadata describes
            from .gguf import load_gguf_tokenizer

            return load_gguf_tokenizer(cls, pretrained_model_name_or_path, gguf_file, **kwargs)
        hub_kwargs = pop_hub_kwargs(kwargs)
        for ignored in ("use_fast", "_from_auto", "_from_pipeline", "tokenizer_type", "code_revision"):
            kwargs.pop(ignored, None)
        model_config = kwargs.pop("config", None)
        ckpt = resolve(pretrained_model_name_or_path, **hub_kwargs)

        config_path = ckpt.get(TOKENIZER_CONFIG_FILE)
        tok_config = _read_tokenizer_config(config_path) if config_path is not None else {}
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
                    model_json = read_json(model_config_path, what="config")
                    if model_json:
                        model_type = model_json.get("model_type")
                        hub_class = hub_class or check_field(
                            model_json.get("tokenizer_class"), (str, type(None)), source=model_config_path,
                            field="tokenizer_class", what="config",
                        )
            family = resolve_family(hub_class, model_type, tokenizer_json)
            if json_path is None and family == "generic":
                family = cls._family_without_tokenizer_json(ckpt, hub_class)

        init_kwargs = cls._gather_init_kwargs(ckpt, tok_config, tokenizer_json, kwargs)
        init_kwargs["name_or_path"] = ckpt.name
        for key, value in FAMILIES[family].defaults.items():
            init_kwargs.setdefault(key, value)
        conv.family_special_token_objects(family, init_kwargs)
        # Tokenizer and its family subclasses are built from this mixin: imported here.
        from .families import family_class
        from .tokenizer import Tokenizer

        target = family_class(family) if cls is Tokenizer else cls
        if family == "marian":  # two SentencePiece models and a vocabulary, never a tokenizer.json
            return target._from_checkpoint_files(ckpt, init_kwargs)

        if tokenizer_json is not None:
            backend, family = conv.backend_from_tokenizer_json(tokenizer_json, family, init_kwargs)
        else:
            files = cls._vocab_files(ckpt, family)
            backend = conv.backend_from_vocab_files(files, family, init_kwargs)
        # The generic class hands back the family's class, as the reference AutoTokenizer does.
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
        if hub_class and strip_fast(hub_class) not in CLASS_TO_FAMILY:
            raise ValueError(
                f"{ckpt.name!r} has no tokenizer.json and its tokenizer_class {hub_class!r} is not supported "
                f"without one. Supported classes: {sorted(set(CLASS_TO_FAMILY))}. Save the tokenizer with "
                "tokenizer.json (e.g. transformers' save_pretrained) to load it here."
            )
        if ckpt.get("tokenizer.model") is not None:
            return "generic"
        if ckpt.get("vocab.txt") is not None:
            return "bert"
        if ckpt.get("vocab.json") is not None and ckpt.get("merges.txt") is not None:
            return "gpt2"
        if ckpt.get("spm.model") is not None:  # the file name only DeBERTa-v2/v3 use
            return "deberta_v2"
        return "generic"

    @staticmethod
    def _vocab_files(ckpt: Any, family: str) -> dict[str, Path]:
        """Locate the vocabulary files a family needs when there is no tokenizer.json."""
        wanted = FAMILIES[family].vocab_files
        for names in wanted:
            paths = {name: ckpt.get(name) for name in names}
            if all(path is not None for path in paths.values()):
                if names[0].endswith(".model"):
                    return {"spm": paths[names[0]]}
                return paths  # type: ignore[return-value]
        needed = [TOKENIZER_FILE, *("+".join(names) for names in wanted)]
        if family == "generic":  # no class known: the files a family would be guessed from work too
            needed += ["vocab.txt", "vocab.json+merges.txt", "spm.model"]
        raise FileNotFoundError(
            f"{ckpt.name!r} has no tokenizer: a {FAMILIES[family].class_name} needs {' or '.join(needed)}. "
            "Looked in:\n" + "\n".join(f"  - {place}" for place in ckpt.searched)
        )

    @staticmethod
    def _gather_init_kwargs(
        ckpt: Any,
        tok_config: dict[str, Any],
        tokenizer_json: conv.TokenizerJson | None,
        user_kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """Merge tokenizer_config.json, legacy special-token files and user keywords."""
        init_kwargs = {k: v for k, v in tok_config.items() if k not in ("tokenizer_class", "init_inputs")}
        for key in ("tokenizer_file", "vocab_file", "merges_file", "special_tokens_map_file", "name_or_path"):
            init_kwargs.pop(key, None)  # paths come from the checkpoint only, never from the config
        if tokenizer_json is not None:
            init_kwargs.pop("add_bos_token", None)
            init_kwargs.pop("add_eos_token", None)
        # The .jinja files (chat_template.jinja, additional_chat_templates/) win over tokenizer_config.json.
        templates = read_chat_templates([folder / ckpt.subfolder for folder in ckpt.folders], ckpt.get)
        if templates is not None:
            init_kwargs["chat_template"] = templates
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
                special_map = _read_special_tokens_map(map_path)
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
                for content, index in _read_added_tokens(added_path).items():
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
