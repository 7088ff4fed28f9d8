"""A small reader of SentencePiece ``.model`` files (protobuf), so neither ``sentencepiece`` nor
``protobuf`` is needed to load a SentencePiece tokenizer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# SentencePiece piece types.
SPM_NORMAL, SPM_UNKNOWN, SPM_CONTROL, SPM_USER_DEFINED, SPM_UNUSED, SPM_BYTE = 1, 2, 3, 4, 5, 6


@dataclass
class SentencePieceModel:
    """The parts of a SentencePiece ``ModelProto`` a tokenizer needs."""

    pieces: list[tuple[str, float, int]] = field(default_factory=list)
    model_type: int = 1  # 1 unigram, 2 BPE, 3 word, 4 char
    byte_fallback: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    unk_piece: str = "<unk>"
    bos_piece: str = "<s>"
    eos_piece: str = "</s>"
    pad_piece: str = "<pad>"
    normalizer_name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field_number, wire_type, value)`` for each field of one protobuf message."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("truncated protobuf field")
        yield number, wire, value


def _int32(value: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    return value


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8")


def load_sentencepiece_model(path: str | Path) -> SentencePieceModel:
    """Read a SentencePiece ``.model`` file.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a SentencePiece model.
    """
    data = memoryview(Path(path).read_bytes())
    spm = SentencePieceModel()
    try:
        for number, wire, value in _fields(data):
            if wire != 2:
                continue
            if number == 1:
                piece, score, kind = "", 0.0, SPM_NORMAL
                for n, w, v in _fields(value):
                    if n == 1 and w == 2:
                        piece = _text(v)
                    elif n == 2 and w == 5:
                        score = struct.unpack("<f", v)[0]
                    elif n == 3 and w == 0:
                        kind = v
                spm.pieces.append((piece, score, kind))
            elif number == 2:
                _read_trainer_spec(value, spm)
            elif number == 3:
                _read_normalizer_spec(value, spm)
    except (ValueError, UnicodeDecodeError, struct.error, IndexError) as err:
        raise ValueError(f"{str(path)!r} is not a valid SentencePiece model file: {err}") from err
    if not spm.pieces:
        raise ValueError(f"{str(path)!r} is not a valid SentencePiece model file: it holds no pieces")
    return spm


def _read_trainer_spec(buf: memoryview, spm: SentencePieceModel) -> None:
    ints = {3: "model_type", 40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}
    strings = {45: "unk_piece", 46: "bos_piece", 47: "eos_piece", 48: "pad_piece"}
    for number, wire, value in _fields(buf):
        if wire == 0 and number in ints:
            setattr(spm, ints[number], _int32(value))
        elif wire == 0 and number == 35:
            spm.byte_fallback = bool(value)
        elif wire == 2 and number in strings:
            setattr(spm, strings[number], _text(value))


def _read_normalizer_spec(buf: memoryview, spm: SentencePieceModel) -> None:
    bools = {3: "add_dummy_prefix", 4: "remove_extra_whitespaces", 5: "escape_whitespaces"}
    for number, wire, value in _fields(buf):
        if wire == 2 and number == 1:
            spm.normalizer_name = _text(value)
        elif wire == 2 and number == 2:
            spm.precompiled_charsmap = bytes(value)
        elif wire == 0 and number in bools:
            setattr(spm, bools[number], bool(value))
