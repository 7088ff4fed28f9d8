"""Saving a tokenizer: ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from tokenizers import AddedToken

from ..atomic import save_folder, staged_folder
from .chat import CHAT_TEMPLATE_DIR, chat_template_files
from .constants import (
    CHAT_TEMPLATE_FILE,
    SPECIAL_TOKENS_ATTRIBUTES,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
)
from .family_specs import FAMILIES

logger = logging.getLogger(__name__)

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



class SavingMixin:
    """``save_pretrained`` and the ``tokenizer_config.json`` it writes."""


    def _config_for_save(self, save_jinja_files: bool = True) -> dict[str, Any]:
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
        template_entry, _ = chat_template_files(self.chat_template, save_jinja_files=save_jinja_files)
        if template_entry is not None:
            config["chat_template"] = template_entry
        config["tokenizer_class"] = FAMILIES[self._family_name].class_name
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

        The folder is replaced as a whole (``headway.atomic.staged_folder``): its other files (model
        weights, a README) stay, and chat-template files of an earlier save that this one does not write
        are dropped, so a template removed from the tokenizer does not come back on loading. The folder
        loads back with ``from_pretrained`` here and in the reference library.

        A family class may define ``_files_to_save(files, prefix) -> files`` ({file name: str or bytes})
        to change the set of files; they are written into the same staged folder.

        Returns:
            Paths of the written files, under ``save_directory`` as given.
        """
        if push_to_hub:
            raise ValueError(
                "push_to_hub=True is not supported; upload the saved folder with huggingface_hub"
            )
        if legacy_format:
            raise ValueError(
                "legacy_format=True (slow-tokenizer vocabulary files) is not supported; use the default"
            )
        save_folder(save_directory, create=False)  # refuses an empty or file path before any work
        prefix = f"{filename_prefix}-" if filename_prefix else ""

        save_jinja_files = bool(kwargs.get("save_jinja_files", True))
        config = self._config_for_save(save_jinja_files)
        special_map: dict[str, Any] = {
            name: str(value) for name, value in self._special_tokens_map.items() if value is not None
        }
        if self._extra_special_tokens:
            special_map["additional_special_tokens"] = self.extra_special_tokens
        with self._lock:
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
            tokenizer_json = self._tokenizer.to_str(pretty=True)

        paths = {
            TOKENIZER_CONFIG_FILE: json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            SPECIAL_TOKENS_MAP_FILE: json.dumps(special_map, indent=2, sort_keys=True, ensure_ascii=False)
            + "\n",
            TOKENIZER_FILE: tokenizer_json,
        }
        paths = {f"{prefix}{name}": text for name, text in paths.items()}
        paths.update(chat_template_files(self.chat_template, prefix, save_jinja_files)[1])
        files: dict[str, str | bytes] = paths
        if hasattr(self, "_files_to_save"):  # a family that writes other files (e.g. vocabularies)
            files = self._files_to_save(files, prefix)
        with staged_folder(save_directory) as stage:
            stage.discard(prefix + CHAT_TEMPLATE_FILE, f"{prefix}{CHAT_TEMPLATE_DIR}/*.jinja")
            for name, data in files.items():
                path = stage.path / name  # the staging folder is private to this save: written directly
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        logger.info("Tokenizer saved to %s", stage.final)
        return tuple(os.path.join(save_directory, name) for name in files)
