"""``apply_chat_template``: a conversation rendered with the tokenizer's chat template, then tokenized.

``tokenizer.chat_template`` is a plain attribute: the template's Jinja source, a dict of named templates
(``{"default": ..., "tool_use": ...}``), or None. It is read from the checkpoint when loading and written
back by ``save_pretrained`` (see ``chat_template``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .constants import CHAT_TEMPLATE_FILE

if TYPE_CHECKING:
    from .batch_encoding import BatchEncoding

Message = Mapping[str, Any]

CHAT_TEMPLATE_DIR = "additional_chat_templates"


def _is_batch(conversation: Any) -> bool:
    """A batch is a list of conversations (lists of messages, or objects with ``messages``)."""
    first = conversation[0]
    return isinstance(first, (list, tuple)) or hasattr(first, "messages")


class ChatTemplateMixin:
    """``apply_chat_template`` and ``get_chat_template`` of a ``Tokenizer``."""

    chat_template: str | dict[str, str] | None

    def get_chat_template(self, chat_template: str | None = None, tools: list[Any] | None = None) -> str:
        """The Jinja source of the template to use.

        Args:
            chat_template: A template's source, or the name of one of the tokenizer's named templates.
                None: the tokenizer's template (with named templates: ``"tool_use"`` when ``tools`` are
                given and it exists, else ``"default"``).
            tools: The tools of the call, used to pick a ``"tool_use"`` template.

        Raises:
            ValueError: No template given and the tokenizer has none (or no default among its named ones).
        """
        own = self.chat_template
        if own is not None and not isinstance(own, (str, dict)):
            raise TypeError(
                "tokenizer.chat_template must be a str, a dict of named templates or None; "
                f"got {type(own).__name__}"
            )
        if chat_template is not None and not isinstance(chat_template, str):
            raise TypeError(
                f"chat_template must be a template str or a template name, got {type(chat_template).__name__}"
            )
        if isinstance(own, dict):
            if chat_template is not None:
                return own.get(chat_template, chat_template)
            if tools is not None and "tool_use" in own:
                return own["tool_use"]
            if "default" in own:
                return own["default"]
            raise ValueError(
                "this tokenizer has several chat templates and none is named 'default'; pass "
                f"chat_template=<a template or one of the names {sorted(own)}>"
            )
        if chat_template is not None:
            return chat_template
        if own is None:
            raise ValueError(
                "this tokenizer has no chat template: tokenizer.chat_template is None and no chat_template "
                "argument was given. Set tokenizer.chat_template to a Jinja template string, or pass one."
            )
        return own

    def apply_chat_template(
        self,
        conversation: Sequence[Message] | Sequence[Sequence[Message]],
        tools: list[dict | Callable[..., Any]] | None = None,
        documents: list[dict[str, str]] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool | str = False,
        tokenize: bool = True,
        sanitize_control_tokens: bool = False,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_dict: bool = True,
        return_assistant_tokens_mask: bool = False,
        tokenizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> str | list[str] | list[int] | list[list[int]] | BatchEncoding:
        """Render a conversation (or a batch) with the chat template and tokenize it.

        Args:
            conversation: Messages (``{"role": ..., "content": ...}`` dicts), or a list of such lists.
                Keys whose value is None are dropped first.
            tools: Tools the model may call: JSON schemas, or functions (type hints and a Google-style
                docstring) converted with ``get_json_schema``.
            documents: Documents for retrieval-augmented templates.
            chat_template: A template's source or the name of a named template; default: the tokenizer's.
            add_generation_prompt: End with the header that starts an assistant message.
            continue_final_message: Leave the final message open so the model continues it (a str names
                the field to continue, e.g. ``"reasoning_content"``). Not with ``add_generation_prompt``.
            tokenize: Return token ids; False returns the rendered text.
            sanitize_control_tokens: Not supported here (NotImplementedError when True).
            padding: Padding strategy, as in ``__call__``.
            truncation: Truncate to ``max_length``.
            max_length: Length for padding/truncation.
            return_tensors: ``"pt"`` or ``"np"`` for tensors.
            return_dict: Return the ``BatchEncoding`` (the default, as in transformers 5); False returns
                the ids only. Ignored when ``tokenize=False``.
            return_assistant_tokens_mask: Add ``assistant_masks``: 1 on the tokens inside the template's
                ``{% generation %}`` blocks. Needs ``return_dict=True`` and ``tokenize=True``.
            tokenizer_kwargs: Further keyword arguments for the tokenizer call.
            **kwargs: Further variables for the template (they override the special tokens, which are
                always available: ``bos_token``, ``eos_token``, ...).

        Returns:
            The rendered text (a list for a batch) when ``tokenize=False``; else a ``BatchEncoding``, or
            the ids when ``return_dict=False``. Special tokens are not added around the text: the
            template writes them.

        Raises:
            ValueError: No template, an empty conversation, or incompatible options.
            TemplateError: The template raised (a ValueError carrying the template's message).
        """
        if sanitize_control_tokens:
            raise NotImplementedError("apply_chat_template(sanitize_control_tokens=True) is not supported")
        if not tokenize:
            return_dict = False
        if return_assistant_tokens_mask and not (return_dict and tokenize):
            raise ValueError("return_assistant_tokens_mask=True needs return_dict=True and tokenize=True")
        template = self.get_chat_template(chat_template, tools)
        if not isinstance(conversation, (list, tuple)) and not hasattr(conversation, "messages"):
            raise TypeError(
                "conversation must be a list of messages or a list of conversations, "
                f"got {type(conversation).__name__}"
            )
        if isinstance(conversation, (list, tuple)) and not conversation:
            raise ValueError(
                "cannot apply a chat template to an empty conversation; give at least one message"
            )
        batched = isinstance(conversation, (list, tuple)) and _is_batch(conversation)
        conversations = list(conversation) if batched else [conversation]
        conversations = [
            [
                {key: value for key, value in message.items() if value is not None}
                if isinstance(message, Mapping)
                else message
                for message in getattr(chat, "messages", chat)
            ]
            for chat in conversations
        ]
        if continue_final_message and return_assistant_tokens_mask:
            raise ValueError("continue_final_message cannot be combined with return_assistant_tokens_mask")

        from .chat_template import render_chat  # jinja2 is imported only when a template is rendered

        variables = {**self.special_tokens_map, **kwargs}
        rendered, spans = render_chat(
            conversations,
            template,
            tools=tools,
            documents=documents,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message,
            track_generation=return_assistant_tokens_mask,
            **variables,
        )
        text = rendered if batched else rendered[0]
        if not tokenize:
            return text
        encoding = self(
            text,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            add_special_tokens=False,
            return_tensors=return_tensors,
            **(tokenizer_kwargs or {}),
        )
        if not return_dict:
            return encoding["input_ids"]
        if return_assistant_tokens_mask:
            self._add_assistant_masks(encoding, spans, batched, return_tensors)
        return encoding

    @staticmethod
    def _add_assistant_masks(
        encoding: BatchEncoding, spans: list[list[tuple[int, int]]], batched: bool, return_tensors: str | None
    ) -> None:
        """Set ``encoding["assistant_masks"]``: 1 on tokens inside the ``{% generation %}`` spans."""
        ids = encoding["input_ids"] if batched or return_tensors else [encoding["input_ids"]]
        masks = []
        for row, row_spans in enumerate(spans):
            length = len(ids[row])
            mask = [0] * length
            for start_char, end_char in row_spans:
                start = encoding.char_to_token(row, start_char)
                if start is None:  # the span starts beyond a truncation
                    break
                end = encoding.char_to_token(row, end_char - 1)
                stop = end + 1 if end else length
                mask[start:stop] = [1] * (stop - start)
            masks.append(mask)
        encoding["assistant_masks"] = masks if batched or return_tensors else masks[0]
        if return_tensors:
            encoding.convert_to_tensors(tensor_type=return_tensors)


# ---- files -------------------------------------------------------------------------------------


def read_chat_templates(folders: Sequence[Path], get: Callable[[str], Path | None]) -> str | dict | None:
    """The chat templates of a checkpoint: ``chat_template.jinja``, ``additional_chat_templates/*.jinja``.

    Args:
        folders: Local folders of the checkpoint, searched for a ``additional_chat_templates/`` folder.
        get: Looks a file of the checkpoint up by name (None when absent).

    Returns:
        The default template as a str when it is the only one, a dict ``{name: template}`` (the file
        one under ``"default"``) when there are named templates, or None when there is no template file.
    """
    templates: dict[str, str] = {}
    path = get(CHAT_TEMPLATE_FILE)
    if path is not None:
        templates["default"] = path.read_text(encoding="utf-8")
    for folder in folders:
        directory = folder / CHAT_TEMPLATE_DIR
        if directory.is_dir():
            for file in sorted(directory.glob("*.jinja")):
                templates.setdefault(file.name.removesuffix(".jinja"), file.read_text(encoding="utf-8"))
            break
    if not templates:
        return None
    if list(templates) == ["default"]:
        return templates["default"]
    return templates


def chat_template_files(
    chat_template: str | dict | None, prefix: str = "", save_jinja_files: bool = True
) -> tuple[Any, dict[str, str]]:
    """How ``save_pretrained`` writes chat templates, as the reference library 5.x does.

    Args:
        chat_template: ``tokenizer.chat_template``.
        prefix: The file-name prefix (``"name-"`` or ``""``).
        save_jinja_files: Write ``.jinja`` files (default); False puts the templates in
            ``tokenizer_config.json`` instead (the older format).

    Returns:
        The ``chat_template`` entry of ``tokenizer_config.json`` (None: no entry), and the files to write
        as {relative path: text}: the default template in ``chat_template.jinja``, the other named ones
        in ``additional_chat_templates/<name>.jinja``.
    """
    if chat_template is None:
        return None, {}
    if not isinstance(chat_template, (str, dict)):
        raise TypeError(
            f"tokenizer.chat_template must be a str, a dict of named templates or None; got "
            f"{type(chat_template).__name__}"
        )
    if not save_jinja_files:
        if isinstance(chat_template, dict):
            return [{"name": name, "template": text} for name, text in chat_template.items()], {}
        return chat_template, {}
    if isinstance(chat_template, str):
        return None, {prefix + CHAT_TEMPLATE_FILE: chat_template}
    files = {}
    for name, text in chat_template.items():
        if name == "default":
            files[prefix + CHAT_TEMPLATE_FILE] = text
        else:
            if not re.fullmatch(r"[\w.-]+", name) or name.startswith("."):
                raise ValueError(f"chat template name {name!r} cannot be used as a file name")
            files[f"{prefix}{CHAT_TEMPLATE_DIR}/{name}.jinja"] = text
    return None, files
