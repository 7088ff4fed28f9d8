"""Every JSON file headway reads goes through ``headway.jsonfile``: a broken one is a ValueError naming it.

For each kind of file (config, generation config, tokenizer files, sentence-transformers files, shard
index, safetensors header): bytes that are not UTF-8, invalid JSON (line and column given), 10,000-deep
nesting (a RecursionError before), the wrong top-level type, and one field of the wrong type.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from headway.jsonfile import MAX_DEPTH, check_field, parse_json, read_json

DEEP = "[" * 10_000 + "]" * 10_000
BAD_UTF8 = b'{"name": "caf\xe9"}'  # Latin-1, not UTF-8
INVALID = '{\n  "a": 1,\n  "b": \n}'  # line 4 column 1: a value was expected


def _copy(source: Path, target: Path) -> Path:
    """The folder as symlinks (cheap); sub-folders copied so their files can be replaced."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            os.symlink(item, target / item.name)
    return target


def _write(folder: Path, name: str, content: str | bytes | Any) -> None:
    path = folder / name
    if path.is_symlink():
        path.unlink()
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")


def _load_config(folder: Path) -> None:
    from headway import AutoConfig

    AutoConfig.from_pretrained(folder)


def _load_generation_config(folder: Path) -> None:
    from headway.generation.config import GenerationConfig

    GenerationConfig.from_pretrained(folder)


def _load_tokenizer(folder: Path) -> None:
    from headway import AutoTokenizer

    AutoTokenizer.from_pretrained(folder)


def _load_sentence_transformer(folder: Path) -> None:
    from headway import SentenceTransformer

    SentenceTransformer(str(folder), device="cpu")


def _load_model(folder: Path) -> None:
    from headway import AutoModel

    AutoModel.from_pretrained(folder)


# file name, loader, what the top level must be, a content with one field of the wrong type and the
# message it gives (None where the field types belong to the config classes, checked elsewhere).
KINDS: dict[str, tuple[str, Callable[[Path], None], str, Any, str | None]] = {
    "config": ("config.json", _load_config, "an object", None, None),
    "generation_config": ("generation_config.json", _load_generation_config, "an object", None, None),
    "tokenizer_config": (
        "tokenizer_config.json", _load_tokenizer, "an object",
        {"tokenizer_class": "BertTokenizer", "unk_token": 5}, r"unk_token must be a token .*got a number 5",
    ),
    "special_tokens_map": (
        "special_tokens_map.json", _load_tokenizer, "an object",
        {"mask_token": {"content": "[MASK]", "lstrip": "yes"}}, r"mask_token\['lstrip'\] must be a boolean",
    ),
    "added_tokens": (
        "added_tokens.json", _load_tokenizer, "an object",
        {"<new>": "30522"}, r"the id of '<new>' must be a number, got a string",
    ),
    "tokenizer_json": (
        "tokenizer.json", _load_tokenizer, "an object",
        {"model": 5}, "not a tokenizer.json the tokenizers library can read",
    ),
    "modules": (
        "modules.json", _load_sentence_transformer, "an array",
        [{"idx": 0, "name": "0", "path": "", "type": 5}], r"entry 0 must have a 'type' string",
    ),
    "sentence_bert_config": (
        "sentence_bert_config.json", _load_sentence_transformer, "an object",
        {"max_seq_length": "long"}, r"max_seq_length must be a number, got a string",
    ),
    "config_sentence_transformers": (
        "config_sentence_transformers.json", _load_sentence_transformer, "an object",
        {"prompts": ["query: "]}, r"prompts must be an object, got an array",
    ),
    "pooling": (
        "1_Pooling/config.json", _load_sentence_transformer, "an object",
        {"word_embedding_dimension": 384, "pooling_mode": 5}, r"pooling_mode must be a string or an array",
    ),
    "shard_index": (
        "model.safetensors.index.json", _load_model, "an object",
        {"metadata": {}, "weight_map": ["model.safetensors"]}, r"weight_map must be an object.*got an array",
    ),
}


@pytest.fixture
def folder(tmp_path: Path, minilm_path: Path) -> Path:
    return _copy(Path(minilm_path), tmp_path / "model")


def _setup(folder: Path, kind: str) -> None:
    if kind == "shard_index":  # the index is only read when there is no single weight file
        (folder / "model.safetensors").unlink()


def _expect_failure(kind: str, folder: Path, content: str | bytes | Any, message: str) -> None:
    name, load, *_ = KINDS[kind]
    _setup(folder, kind)
    _write(folder, name, content)
    with pytest.raises(ValueError, match=message) as caught:
        load(folder)
    assert re.search(re.escape(name.rsplit("/", 1)[-1]), str(caught.value)), str(caught.value)  # names the file


@pytest.mark.parametrize("kind", KINDS)
def test_bad_encoding(kind: str, folder: Path) -> None:
    _expect_failure(kind, folder, BAD_UTF8, r"is not UTF-8 text: byte 0xe9 at offset 13")


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_json(kind: str, folder: Path) -> None:
    _expect_failure(kind, folder, INVALID, r"is not valid JSON: Expecting value at line 4 column 1")


@pytest.mark.parametrize("kind", KINDS)
def test_deep_nesting(kind: str, folder: Path) -> None:
    _expect_failure(kind, folder, DEEP, rf"nests deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_top_level_type(kind: str, folder: Path) -> None:
    expected = KINDS[kind][2]
    wrong, got = ("[]", "an array") if expected == "an object" else ("{}", "an object")
    _expect_failure(kind, folder, wrong, rf"must hold {expected} at the top level, got {got}")


@pytest.mark.parametrize("kind", [kind for kind, spec in KINDS.items() if spec[3] is not None])
def test_wrong_field_type(kind: str, folder: Path) -> None:
    _, _, _, content, message = KINDS[kind]
    _expect_failure(kind, folder, content, message)


def test_tokenizer_decoder_entry_must_be_a_token(folder: Path) -> None:
    _write(folder, "tokenizer_config.json", {"added_tokens_decoder": {"0": "[PAD]"}})
    with pytest.raises(ValueError, match=r"added_tokens_decoder\['0'\] must be an object, got a string"):
        _load_tokenizer(folder)


def test_modules_entry_must_be_an_object(folder: Path) -> None:
    _write(folder, "modules.json", ["sentence_transformers.models.Transformer"])
    with pytest.raises(ValueError, match=r"modules.json .*entry 0 must be an object with 'name', 'path' and 'type'"):
        _load_sentence_transformer(folder)


def test_shard_index_without_weight_map(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    _write(folder, "model.safetensors.index.json", {"metadata": {}})
    with pytest.raises(ValueError, match=r"shard index '.*model.safetensors.index.json' has no weight_map"):
        _load_model(folder)


# -- safetensors headers, which headway parses itself ---------------------------------------------------
def _safetensors(header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header + b"\0" * 4


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b'{"a": "\xff"}', r"safetensors header .* is not UTF-8 text: byte 0xff"),
        (b'{"a": }', r"safetensors header .* is not valid JSON: Expecting value at line 1 column 7"),
        (DEEP.encode(), rf"safetensors header .* nests deeper than {MAX_DEPTH} levels"),
        (b"[1, 2]", r"safetensors header .* must hold an object at the top level, got an array"),
        (
            b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}',
            r"the header entry 'w' has no data_offsets \[begin, end\] of two integers",
        ),
    ],
)
def test_bad_safetensors_header(folder: Path, header: bytes, message: str) -> None:
    _write(folder, "model.safetensors", _safetensors(header))
    with pytest.raises(ValueError, match=message) as caught:
        _load_model(folder)
    assert "model.safetensors" in str(caught.value)


# -- the reader itself ----------------------------------------------------------------------------------
def test_reader_accepts_ordinary_files(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"a": [[[1]]], "b": "é"}), encoding="utf-8")
    assert read_json(path) == {"a": [[[1]]], "b": "é"}
    assert parse_json("[1]", source="y.json", expect=list) == [1]
    assert parse_json("3", source="y.json", expect=None) == 3


def test_reader_depth_bound_is_exact() -> None:
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(at_limit, source="ok.json", expect=list)
    with pytest.raises(ValueError, match=r"'deep.json' nests deeper than"):
        parse_json("[" + at_limit + "]", source="deep.json", expect=list, what="config")


def test_reader_names_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "absent.json")


def test_check_field_refuses_a_boolean_for_a_number() -> None:
    assert check_field(3, int, source="c.json", field="n") == 3
    with pytest.raises(ValueError, match=r"config 'c.json': n must be a number, got a boolean True"):
        check_field(True, int, source="c.json", field="n", what="config")
