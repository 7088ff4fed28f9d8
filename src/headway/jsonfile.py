"""The one way headway reads a JSON file from a checkpoint.

``config.json``, ``generation_config.json``, the tokenizer files, the sentence-transformers files, shard
indexes and safetensors headers all go through ``read_json`` (or ``parse_json`` for bytes already in
hand), so a broken file always gives the same kind of answer: a ValueError naming the file and what is
wrong with it (not UTF-8, invalid JSON with its line and column, nested too deep, an integer of thousands
of digits, or the wrong kind of value at the top). Files are read once at load, so the checks stay off the
hot path; the depth walk
only runs on files with enough brackets to be deep at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["JSON_TYPE_NAMES", "MAX_DEPTH", "check_field", "parse_json", "read_json", "type_name"]

# Hugging Face files nest a dozen levels at most; anything deeper is broken or hostile, and letting
# it through would only move the RecursionError into whatever code walks the value next.
MAX_DEPTH = 200

JSON_TYPE_NAMES: dict[type, str] = {
    dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
    bool: "a boolean", type(None): "null",
}


def type_name(value: Any) -> str:
    """The JSON name of a parsed value's kind: ``an object``, ``an array``, ``a string``, ..."""
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _too_deep(data: Any, limit: int) -> bool:
    """True when ``data`` nests more than ``limit`` containers; iterative, stops at the first hit."""
    containers = (dict, list)
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = [c for c in (value.values() if type(value) is dict else value) if type(c) in containers]
        if children:
            stack += [(child, depth + 1) for child in children]
    return False


def parse_json(
    data: str | bytes, *, source: str | os.PathLike, expect: type | tuple[type, ...] | None = dict,
    what: str = "JSON file", max_depth: int | None = MAX_DEPTH,
) -> Any:
    """Parse JSON text (``bytes`` must be UTF-8) read from ``source``.

    Args:
        data: The text, or its UTF-8 bytes.
        source: Where it came from (a path), named in every error.
        expect: The type (or types) the top-level value must have; None accepts any.
        what: What the file is (``"config"``, ``"shard index"``...), named in every error.
        max_depth: The deepest nesting accepted; None skips the check (for text a stricter parser, such as
            the tokenizers library's, has already read).

    Raises:
        ValueError: The bytes are not UTF-8, the text is not JSON (line and column given), the value nests
            deeper than ``MAX_DEPTH``, holds an integer longer than Python reads (4,300 digits), or the
            top-level value is not of the ``expect`` type.
    """
    where = f"{what} {str(source)!r}"
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{where} is not UTF-8 text: byte 0x{err.object[err.start]:02x} at offset {err.start} "
                f"cannot be decoded ({err.reason})"
            ) from None
    try:
        value = json.loads(data)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{where} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        raise ValueError(f"{where} nests deeper than {MAX_DEPTH} levels of arrays and objects") from None
    except ValueError as err:  # Python's int parser: a number past sys.get_int_max_str_digits() digits
        raise ValueError(f"{where} holds a number too long to read: {err}") from None
    # A value with fewer brackets than the limit cannot exceed it: the walk is skipped for almost every file.
    if max_depth is not None and data.count("[") + data.count("{") > max_depth and _too_deep(value, max_depth):
        raise ValueError(f"{where} nests deeper than {max_depth} levels of arrays and objects")
    if expect is not None and not isinstance(value, expect):
        kinds = expect if isinstance(expect, tuple) else (expect,)
        wanted = " or ".join(dict.fromkeys(JSON_TYPE_NAMES.get(k, k.__name__) for k in kinds))
        raise ValueError(f"{where} must hold {wanted} at the top level, got {type_name(value)}")
    return value


def read_json(
    path: str | os.PathLike, *, expect: type | tuple[type, ...] | None = dict, what: str = "JSON file"
) -> Any:
    """Read and parse the JSON file at ``path``; see ``parse_json`` for ``expect``, ``what`` and the errors.

    Raises:
        FileNotFoundError / OSError: The file cannot be read.
        ValueError: The file is not UTF-8 JSON of the expected kind, or nests too deep.
    """
    return parse_json(Path(path).read_bytes(), source=path, expect=expect, what=what)


def check_field(
    value: Any, expect: type | tuple[type, ...], *, source: str | os.PathLike, field: str, what: str = "JSON file"
) -> Any:
    """``value`` when it has the ``expect`` type, else a ValueError naming the file and the field."""
    if isinstance(value, expect) and not (isinstance(value, bool) and bool not in _as_tuple(expect)):
        return value
    wanted = " or ".join(dict.fromkeys(JSON_TYPE_NAMES.get(k, k.__name__) for k in _as_tuple(expect)))
    raise ValueError(f"{what} {str(source)!r}: {field} must be {wanted}, got {type_name(value)} {value!r:.80}")


def _as_tuple(expect: type | tuple[type, ...]) -> tuple[type, ...]:
    return expect if isinstance(expect, tuple) else (expect,)
