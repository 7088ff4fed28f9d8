"""Tool schemas for chat templates: a Python function described as a JSON schema.

Chat templates that support tool use read ``tools`` as a list of JSON schemas
(``{"type": "function", "function": {"name", "description", "parameters"}}``). ``get_json_schema``
builds that schema from a function's signature (its type hints) and its Google-style docstring (the
summary and the ``Args:`` descriptions), the way the reference library's function of the same name
does, so the rendered prompts match.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from typing import Any


class ToolSchemaError(ValueError):
    """A function cannot be described as a tool: a missing type hint or docstring, or an unknown type."""


# Python scalars a JSON schema "enum" can list, with their JSON type names.
_JSON_SCALARS: dict[type, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    type(None): "null",
}

_PLAIN_TYPES: dict[Any, dict[str, str]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    list: {"type": "array"},
    tuple: {"type": "array"},
    dict: {"type": "object"},
}

_SECTION_HEADERS = ("Args:", "Returns:", "Raises:")
_ARG_LINE = re.compile(r"^(\w+):\s*(.*)$")
_CHOICES = re.compile(r"\(choices:\s*(.*?)\)\s*$", re.IGNORECASE)


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    # One JSON type per distinct value type, in order of first appearance.
    kinds = list(dict.fromkeys(_JSON_SCALARS[type(value)] for value in values))
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def _plain_type_schema(hint: Any) -> dict[str, Any] | None:
    if hint is Any:
        return {}
    if hint in _PLAIN_TYPES:
        return dict(_PLAIN_TYPES[hint])
    # Media types the reference maps too, checked without importing anything new.
    module = getattr(hint, "__module__", "")
    if module.startswith("PIL.") and getattr(hint, "__name__", "") == "Image":
        return {"type": "image"}
    if module == "torch" and getattr(hint, "__name__", "") == "Tensor":
        return {"type": "audio"}
    return None


def hint_to_schema(hint: Any) -> dict[str, Any]:
    """JSON schema of one type hint (``int``, ``list[str]``, ``str | None``, ``Literal[...]``, an Enum ...).

    Raises:
        ToolSchemaError: The hint is a custom class or a form JSON cannot express.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is None and isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [member.value for member in hint]
        if not values:
            raise ToolSchemaError(f"the Enum {hint.__name__} has no members")
        if any(type(value) not in _JSON_SCALARS for value in values):
            raise ToolSchemaError(
                f"the Enum {hint.__name__} has values {values!r}; only int, float, str, bool and None can be "
                "written in a JSON schema"
            )
        return _enum_schema(values)
    if origin is None:
        schema = _plain_type_schema(hint)
        if schema is None:
            raise ToolSchemaError(
                f"cannot describe the type hint {hint!r} as a JSON schema; use int, float, str, bool, Enum, "
                "Literal, or list/tuple/dict/Union of those, or write the tool's JSON schema by hand"
            )
        return schema
    if origin is typing.Union or origin is types.UnionType:
        members = [hint_to_schema(arg) for arg in args if arg is not type(None)]
        if len(members) == 1:
            schema = members[0]
        elif all(set(member) == {"type"} and isinstance(member["type"], str) for member in members):
            names = sorted({member["type"] for member in members})
            schema = {"type": names[0] if len(names) == 1 else names}
        else:
            schema = {"anyOf": members}
        if type(None) in args:
            schema["nullable"] = True
        return schema
    if origin is typing.Literal and args:
        if any(type(arg) not in _JSON_SCALARS for arg in args):
            raise ToolSchemaError(f"Literal values must be JSON scalars, got {args!r}")
        return _enum_schema(list(args))
    if origin is list:
        return {"type": "array", "items": hint_to_schema(args[0])} if args else {"type": "array"}
    if origin is tuple:
        if not args:
            return {"type": "array"}
        if len(args) == 1:
            raise ToolSchemaError(
                f"the one-element tuple hint {hint!r} is not converted; use list[...] or the element type"
            )
        if ... in args:
            raise ToolSchemaError(f"variable-length tuple hints ({hint!r}) are not converted; use list[...]")
        return {"type": "array", "prefixItems": [hint_to_schema(arg) for arg in args]}
    if origin is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = hint_to_schema(args[1])
        return schema
    raise ToolSchemaError(f"cannot describe the type hint {hint!r} as a JSON schema")


def parse_google_docstring(docstring: str) -> tuple[str | None, dict[str, str], str | None]:
    """Split a Google-style docstring into (summary, {argument: description}, returns description)."""
    lines = docstring.strip().split("\n")
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in lines:
        header = line.strip()
        if header in _SECTION_HEADERS:
            current = header
            sections.setdefault(current, [])
            continue
        sections[current].append(line)
    summary = "\n".join(sections[""]).strip() or None

    arguments: dict[str, str] = {}
    arg_lines = [line for line in sections.get("Args:", []) if line.strip()]
    if arg_lines:
        indent = len(arg_lines[0]) - len(arg_lines[0].lstrip())
        name = None
        for line in arg_lines:
            depth = len(line) - len(line.lstrip())
            match = _ARG_LINE.match(line.strip())
            if depth <= indent and match:
                name = match.group(1)
                arguments[name] = match.group(2).strip()
            elif name is not None:  # a continuation line of the current argument
                arguments[name] = f"{arguments[name]} {line.strip()}".strip()
    returns = "\n".join(sections.get("Returns:", [])).strip() or None
    return summary, arguments, returns


def get_json_schema(func: Callable[..., Any]) -> dict[str, Any]:
    """JSON schema of a function as a chat-template tool.

    The function needs a docstring whose ``Args:`` section describes every argument, and a type hint on
    every argument (``self``/``cls`` of a method are skipped). A description ending in
    ``(choices: ["a", "b"])`` becomes an ``enum``.

    Args:
        func: The function (or bound method) to describe.

    Returns:
        ``{"type": "function", "function": {"name", "description", "parameters"[, "return"]}}``.

    Raises:
        ToolSchemaError: A docstring, an argument description or a type hint is missing or unusable.
    """
    name = getattr(func, "__name__", "operation")
    doc = inspect.getdoc(func)
    if not doc:
        raise ToolSchemaError(f"cannot describe {name} as a tool: it has no docstring")
    summary, descriptions, returns_doc = parse_google_docstring(doc)

    signature = inspect.signature(func)
    hints = typing.get_type_hints(func)
    params = list(signature.parameters.values())
    receiver = None
    if params and params[0].name in ("self", "cls") and params[0].annotation is inspect.Parameter.empty:
        receiver = params[0].name
    required = []
    for param in params:
        if param.name == receiver:
            continue
        if param.annotation is inspect.Parameter.empty:
            raise ToolSchemaError(f"argument {param.name!r} of {name} has no type hint")
        if param.default is inspect.Parameter.empty:
            required.append(param.name)

    properties: dict[str, Any] = {}
    return_schema = None
    for param_name, hint in hints.items():
        if param_name == receiver:
            continue
        if param_name == "return":
            try:  # the model never writes the return value: an unusual return hint is left out
                return_schema = hint_to_schema(hint)
            except ToolSchemaError:
                pass
            continue
        properties[param_name] = hint_to_schema(hint)

    for param_name, schema in properties.items():
        if param_name not in descriptions:
            raise ToolSchemaError(f"the docstring of {name} does not describe the argument {param_name!r}")
        text = descriptions[param_name]
        choices = _CHOICES.search(text)
        if choices:
            schema["enum"] = [c.strip() if isinstance(c, str) else c for c in json.loads(choices.group(1))]
            text = text[: choices.start()].strip()
        schema["description"] = text

    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    function: dict[str, Any] = {"name": name, "description": summary, "parameters": parameters}
    if return_schema is not None:
        if returns_doc is not None:
            return_schema["description"] = returns_doc
        function["return"] = return_schema
    return {"type": "function", "function": function}
