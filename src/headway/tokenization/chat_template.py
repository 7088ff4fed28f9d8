"""Chat templates: rendering a conversation to the prompt text a chat model was trained on.

A chat template is a Jinja program shipped with a checkpoint (``chat_template.jinja``, named templates
in ``additional_chat_templates/*.jinja``, or ``chat_template`` in ``tokenizer_config.json``). Templates
come from the Hub and are untrusted code, so they run in Jinja's immutable sandbox: no attribute access
to Python internals (``__class__``, ``__globals__``, ...), no mutation of the inputs, and every input
rebuilt out of plain JSON values first. The environment matches the reference library's: ``trim_blocks``
and ``lstrip_blocks``, loop controls (``break``/``continue``), a ``tojson`` filter that does not escape
HTML, and the globals ``raise_exception(message)``, ``strftime_now(format)``, ``dict`` and ``namespace``,
plus the ``{% generation %}`` tag that marks the assistant's text for ``return_assistant_tokens_mask``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.exceptions import SecurityError as JinjaSecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

logger = logging.getLogger(__name__)

# The final message to continue is tagged with this text, then the rendered prompt is cut at the tag.
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "
# Names a message's reasoning can come under; templates read the first (gpt-oss ones read "thinking").
_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
_MIN_JINJA = (3, 1, 6)  # older versions have known sandbox escapes


class TemplateError(ValueError, JinjaTemplateError):
    """A chat template failed: it called ``raise_exception(message)``, or it is not valid Jinja.

    A ``ValueError`` and also a ``jinja2.TemplateError`` (what the reference library raises), so code
    catching either keeps working. ``str(error)`` is the template's own message.
    """

    def __init__(self, message: str | None = None) -> None:
        ValueError.__init__(self, message)
        JinjaTemplateError.__init__(self, message)

    def __str__(self) -> str:
        return str(self.message or "")


class TemplateSecurityError(TemplateError, JinjaSecurityError):
    """A chat template tried something the sandbox forbids (e.g. ``''.__class__``); nothing ran."""


# ---- the sandboxed environment ----------------------------------------------------------------


def _raise_exception(message: Any) -> None:
    raise TemplateError(str(message))


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | str | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson escapes <, >, & and ' for HTML; prompts need the JSON text itself.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class _TemplateDict:
    """``dict(...)`` inside a template: builds dicts without exposing the ``dict`` type itself."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """Jinja's ``namespace`` that refuses attribute names starting with an underscore."""

    # Jinja's signature trick: no named ``self``, so ``namespace(self=1)`` still works.
    def __init__(*args: Any, **kwargs: Any) -> None:
        self, rest = args[0], args[1:]
        values = dict(*rest, **kwargs)
        for name in values:
            _TemplateNamespace._check(name)
        jinja2.utils.Namespace.__init__(self, values)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateSecurityError(
                f"chat templates cannot set underscore-prefixed attributes on a namespace, got {name!r}"
            )


# Where the current render records the spans of ``{% generation %}`` blocks: (rendered pieces, spans).
_TRACKING: contextvars.ContextVar[tuple[list[str], list[tuple[int, int]]] | None] = contextvars.ContextVar(
    "headway_chat_template_tracking", default=None
)


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}``: renders its body and records its character span."""

    tags = {"generation"}

    def parse(self, parser: Any) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        call = self.call_method("_render_generation")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render_generation(self, caller: Callable[[], str]) -> str:
        text = caller()
        tracking = _TRACKING.get()
        if tracking is not None:
            pieces, spans = tracking
            start = sum(len(piece) for piece in pieces)
            spans.append((start, start + len(text)))
        return text


@functools.lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    """Compile a chat template in the sandbox (cached by its text).

    Raises:
        TemplateError: The template is not valid Jinja.
        ImportError: jinja2 is older than 3.1.6.
    """
    version = tuple(int(part) for part in re.findall(r"\d+", jinja2.__version__)[:3])
    if version < _MIN_JINJA:
        raise ImportError(
            "chat templates need jinja2>=3.1.6 (older versions have sandbox escapes); "
            f"found {jinja2.__version__}"
        )
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals.update(
        raise_exception=_raise_exception,
        strftime_now=_strftime_now,
        dict=_TemplateDict(),
        namespace=_TemplateNamespace,
    )
    try:
        return env.from_string(source)
    except JinjaTemplateError as err:
        raise TemplateError(f"the chat template is not valid Jinja: {err}") from err


# ---- inputs ------------------------------------------------------------------------------------


def plain_data(value: Any) -> Any:
    """Rebuild ``value`` out of plain JSON types (dict, list, tuple, str, int, float, bool, None).

    Objects the sandbox does not know (arrays, images, tensors, str subclasses with extra methods) could
    offer a template dangerous methods; they become an inert ``"<TypeName>"`` placeholder. Dataclasses
    and pydantic models become dicts.
    """
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {plain_data(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_data(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain_data(item) for item in value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return plain_data(value.item())  # numpy scalars (np.bool_(False) must stay falsy)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain_data(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return plain_data(value.model_dump())
    return f"<{type(value).__name__}>"


def _tool_schemas(tools: Sequence[Any] | None) -> list[dict] | None:
    if tools is None:
        return None
    from .tool_schema import get_json_schema

    schemas = []
    for tool in tools:
        if isinstance(tool, dict):
            schemas.append(tool)
        elif inspect.isfunction(tool) or inspect.ismethod(tool):
            schemas.append(get_json_schema(tool))
        else:
            raise TypeError(
                f"each tool must be a JSON schema dict or a function with type hints and a docstring; "
                f"got {type(tool).__name__}"
            )
    return schemas


def _with_reasoning_aliases(chat: list[Any]) -> list[Any]:
    """Give messages with reasoning under any known name both ``reasoning_content`` and ``thinking``."""
    out = []
    for message in chat:
        if isinstance(message, dict):
            reasoning = next((message[k] for k in _REASONING_FIELDS if message.get(k) is not None), None)
            if reasoning is not None:
                message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        out.append(message)
    return out


def _tag_final_message(chat: list[dict], field: str, template: str) -> str:
    """Append the continuation tag to the final message's ``field``; return the text being continued."""
    final = chat[-1].get(field)
    if final is None:
        raise ValueError(f"continue_final_message is set but the final message has no {field!r} to continue")
    fields = [field]
    if field in _REASONING_FIELDS:  # reasoning is copied under several names: tag every copy
        fields = [name for name in _REASONING_FIELDS if chat[-1].get(name) == final]
    if not any(name in template for name in fields):
        raise ValueError(
            f"continue_final_message is set to {field!r} but the chat template never reads that field"
        )
    if isinstance(final, (list, tuple)):  # content blocks: continue the last text block
        for block in reversed(final):
            if "text" in block:
                text = block["text"]
                block["text"] = text + _CONTINUE_TAG
                return text
        raise ValueError("continue_final_message is set but the final message has no text block to continue")
    for name in fields:
        chat[-1][name] = chat[-1][name] + _CONTINUE_TAG
    return final


def _cut_after_final_message(rendered: str, final: str) -> str:
    if final.strip() not in rendered or _CONTINUE_TAG.strip() not in rendered:
        raise ValueError(
            "continue_final_message is set but the final message does not appear in the rendered chat (the "
            f"template dropped part of it).\nFinal message: {final.strip()}\nRendered chat:\n{rendered}"
        )
    at = rendered.rindex(_CONTINUE_TAG.strip())
    if rendered[at : at + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return rendered[:at]
    return rendered[:at].rstrip()  # the template trimmed the message's trailing space


def render_chat(
    conversations: Sequence[Sequence[Mapping[str, Any]]],
    chat_template: str,
    *,
    tools: Sequence[Any] | None = None,
    documents: Sequence[Mapping[str, Any]] | None = None,
    add_generation_prompt: bool = False,
    continue_final_message: bool | str = False,
    track_generation: bool = False,
    **template_kwargs: Any,
) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Render each conversation with a chat template.

    Args:
        conversations: A batch of conversations, each a list of messages (``{"role", "content", ...}``
            dicts, dataclasses or pydantic models) or an object with a ``messages`` attribute.
        chat_template: The template's Jinja source.
        tools: Tools as JSON schemas, or functions turned into schemas with ``get_json_schema``.
        documents: Documents for retrieval-augmented templates (dicts, usually ``title`` and ``text``).
        add_generation_prompt: Passed to the template: end with the header of an assistant turn.
        continue_final_message: Cut the prompt right after the final message's content (or the field
            named by a str), so the model continues that message.
        track_generation: Record the character spans of ``{% generation %}`` blocks.
        **template_kwargs: Further variables for the template (special tokens, ``enable_thinking``, ...).

    Returns:
        The rendered texts, and for each the spans of its ``{% generation %}`` blocks (empty lists
        unless ``track_generation``).

    Raises:
        TemplateError: The template raised (``raise_exception``) or failed; ``TemplateSecurityError``
            when it tried to reach Python internals.
        ValueError: Both ``add_generation_prompt`` and ``continue_final_message``, or a final message
            that cannot be continued.
    """
    if continue_final_message and add_generation_prompt:
        raise ValueError(
            "continue_final_message and add_generation_prompt cannot both be set: continue_final_message "
            "leaves the final message open, add_generation_prompt starts a new assistant message"
        )
    if track_generation and not _GENERATION_TAG.search(chat_template):
        logger.warning(
            "return_assistant_tokens_mask=True but the chat template has no {%% generation %%} block"
        )
    compiled = compile_template(chat_template)
    tool_schemas = plain_data(_tool_schemas(tools))
    if documents is not None and any(not isinstance(document, Mapping) for document in documents):
        raise TypeError("documents must be a list of dicts (usually with 'title' and 'text' keys)")
    documents = plain_data(documents)
    template_kwargs = plain_data(template_kwargs)
    field = continue_final_message if isinstance(continue_final_message, str) else "content"

    rendered, all_spans = [], []
    for chat in conversations:
        chat = plain_data(
            getattr(chat, "messages", chat)
        )  # a fresh copy: the caller's messages stay as given
        if not isinstance(chat, (list, tuple)):
            raise TypeError(f"a conversation must be a list of messages, got {type(chat).__name__}")
        for message in chat:
            if not isinstance(message, dict):
                raise TypeError(
                    f"chat messages must be dicts, dataclasses or pydantic models; got {message!r}"
                )
        chat = _with_reasoning_aliases(list(chat))
        final = None
        if continue_final_message:
            if not chat:
                raise ValueError("continue_final_message is set but the conversation is empty")
            final = _tag_final_message(chat, field, chat_template)
        variables = dict(
            template_kwargs,
            messages=chat,
            tools=tool_schemas,
            documents=documents,
            add_generation_prompt=add_generation_prompt,
        )
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        token = _TRACKING.set((pieces, spans) if track_generation else None)
        try:
            # One piece at a time: a {% generation %} block measures what was rendered before it.
            for piece in compiled.generate(**variables):
                pieces.append(piece)  # noqa: PERF402
        except TemplateError:
            raise
        except JinjaSecurityError as err:
            raise TemplateSecurityError(f"the chat template tried an unsafe operation: {err}") from err
        except JinjaTemplateError as err:
            raise TemplateError(f"the chat template failed: {err}") from err
        finally:
            _TRACKING.reset(token)
        text = "".join(pieces)
        if final is not None:
            text = _cut_after_final_message(text, final)
        rendered.append(text)
        all_spans.append(spans)
    return rendered, all_spans
