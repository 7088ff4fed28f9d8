"""Regression tests for what the fuzz campaign found (tools/fuzz_campaign.py, issue #11), each checking the
error's type and what its message names.

A finding that cannot be fixed at once is listed in tests/fuzz/known_issues.py (so the hypothesis suites
tolerate it) and gets a ``xfail(strict=True)`` reproduction here; once fixed, the reproduction passes, the
run reports it (XPASS fails the run), and the entry and the marker come out together.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import headway
from tests.fuzz.known_issues import KNOWN_ISSUES


def test_no_known_issues_left():
    assert KNOWN_ISSUES == ()


@pytest.fixture
def tokenizer_folder(env, tmp_path):
    return shutil.copytree(env.folders["vocab_only"], tmp_path / "tok")


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# -- tokenizer files ------------------------------------------------------------------------------------
def test_vocab_txt_not_utf8_is_a_clear_error(tokenizer_folder):
    """Listed under "Why" in issue #11: a bare Exception for a non-UTF-8 vocab.txt."""
    path = tokenizer_folder / "vocab.txt"
    path.write_bytes(path.read_bytes() + b"\xff\xfe\n")
    with pytest.raises(ValueError, match=r"vocab.txt .* is not UTF-8 text: byte 0xff on line 102"):
        headway.AutoTokenizer.from_pretrained(tokenizer_folder)


def test_vocab_txt_without_unk_loads_and_names_the_file_when_needed(tokenizer_folder, caplog):
    """As in the reference, a vocabulary without [UNK] loads and encodes what it can split; text it cannot
    split fails, and the error now says why and names vocab.txt."""
    path = tokenizer_folder / "vocab.txt"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if line != "[UNK]") + "\n")
    tokenizer = headway.AutoTokenizer.from_pretrained(tokenizer_folder)
    assert "has no line '[UNK]'" in caplog.text
    assert tokenizer.convert_ids_to_tokens(tokenizer("hello")["input_ids"]) == ["[CLS]", "hello", "[SEP]"]
    with pytest.raises(
        ValueError, match=r"no entry for the unknown token '\[UNK\]'.*add that line to vocab.txt"
    ):
        tokenizer("hello 東")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("do_lower_case", 7, "do_lower_case .*tokenizer_config.json.* must be true or false, got 7"),
        ("tokenize_chinese_chars", None, "tokenize_chinese_chars .* must be true or false, got None"),
        ("strip_accents", "x", "strip_accents .* must be true, false or null, got 'x'"),
        (
            "tokenizer_class",
            [1, 2],
            "tokenizer_config.json': tokenizer_class must be a string or null, got an array",
        ),
        (
            "model_max_length",
            [],
            "tokenizer_config.json': model_max_length must be a number or null, got an array",
        ),
        (
            "model_input_names",
            5,
            "tokenizer_config.json': model_input_names must be an array or a string or an object, got a",
        ),
    ],
)
def test_tokenizer_config_field_types(env, tmp_path, field, value, message):
    folder = shutil.copytree(env.folders["tokenizer"], tmp_path / "tok")
    _edit_json(folder / "tokenizer_config.json", **{field: value})
    with pytest.raises(ValueError, match=message):
        headway.AutoTokenizer.from_pretrained(folder)("hello world")


@pytest.mark.parametrize("value", [float("inf"), 1e300, None])
def test_model_max_length_without_a_limit_loads(env, tmp_path, value):
    """``Infinity`` (Python writes it; the reference reads it as no limit) was an OverflowError."""
    folder = shutil.copytree(env.folders["tokenizer"], tmp_path / "tok")
    _edit_json(folder / "tokenizer_config.json", model_max_length=value)
    tokenizer = headway.AutoTokenizer.from_pretrained(folder)
    assert tokenizer.model_max_length == int(1e30)
    assert tokenizer("hello world")["input_ids"] == [2, 15, 16, 3]


def test_config_json_tokenizer_class_type(env, tmp_path):
    folder = shutil.copytree(env.folders["vocab_only"], tmp_path / "tok")
    _edit_json(folder / "tokenizer_config.json", tokenizer_class=None)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "tokenizer_class": 5}))
    with pytest.raises(
        ValueError, match="config.json': tokenizer_class must be a string or null, got a number 5"
    ):
        headway.AutoTokenizer.from_pretrained(folder)


# -- JSON files and shard indexes -----------------------------------------------------------------------
def test_json_integer_of_5000_digits_names_the_file(env, tmp_path):
    folder = shutil.copytree(env.folders["bert"], tmp_path / "m")
    (folder / "config.json").write_text('{"model_type": "bert", "vocab_size": 1' + "0" * 5000 + "}")
    with pytest.raises(ValueError, match=r"config '.*config.json' holds a number too long to read: .*4300"):
        headway.AutoConfig.from_pretrained(folder)


def test_shard_name_too_long_is_a_clear_error(env, tmp_path):
    folder = shutil.copytree(env.folders["sharded"], tmp_path / "m")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"][next(iter(index["weight_map"]))] = "é" * 300
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(
        ValueError,
        match=r"model.safetensors.index.json' \(weight_map entry .* names 'ééé.*, which is "
        "not a usable file name: File name too long",
    ):
        headway.AutoModel.from_pretrained(folder)


# -- config.json --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("family", "field", "value", "message"),
    [
        (
            "bert",
            "hidden_act",
            "\u0000",
            r"hidden_act='\\x00' is not an activation headway knows; expected one of",
        ),
        (
            "gpt2",
            "activation_function",
            None,
            "activation_function must be the name of an activation .* got None",
        ),
        ("bert", "initializer_range", None, "initializer_range must be a number .* got None"),
        (
            "bert",
            "initializer_range",
            -1e9,
            r"initializer_range must be a finite number >= 0 .* got -1000000000.0",
        ),
        (
            "llama",
            "rope_parameters",
            1e-300,
            "rope_parameters must be an object of rotary parameters .* got 1e-300",
        ),
        ("llama", "rope_scaling", 5, "rope_scaling must be an object of rotary parameters"),
        (
            "llama",
            "rope_parameters",
            {"rope_theta": None},
            r"rope_parameters\['rope_theta'\] must be a number, got None",
        ),
        (
            "llama",
            "rope_parameters",
            {"rope_type": "linear", "factor": "x"},
            r"\['factor'\] must be a number, got 'x'",
        ),
    ],
)
def test_config_fields_named(env, tmp_path, family, field, value, message):
    folder = shutil.copytree(env.folders[family], tmp_path / "m")
    _edit_json(folder / "config.json", **{field: value})
    with pytest.raises(ValueError, match=message):
        headway.AutoModel.from_config(headway.AutoConfig.from_pretrained(folder))


def test_initializer_range_matters_only_when_initialising(env, tmp_path):
    """As in the reference, a checkpoint holding every weight loads whatever initializer_range says."""
    folder = shutil.copytree(env.folders["bert"], tmp_path / "m")
    _edit_json(folder / "config.json", initializer_range=-1.0)
    headway.AutoModel.from_pretrained(folder)
    with pytest.raises(ValueError, match="initializer_range must be a finite number >= 0"):
        headway.AutoModelForSequenceClassification.from_pretrained(folder)  # a new classifier is drawn


def test_too_big_config_names_the_field(env, tmp_path):
    folder = shutil.copytree(env.folders["bert"], tmp_path / "m")
    _edit_json(folder / "config.json", intermediate_size=2**40)
    with pytest.raises(
        ValueError,
        match=r"more than the .* GiB of memory this machine has; 100% of them are the "
        r"layers \(num_hidden_layers=2 x .*intermediate_size=1099511627776\)",
    ):
        headway.AutoModel.from_pretrained(folder)
    _edit_json(folder / "config.json", intermediate_size=32, max_position_embeddings=10**9)
    with pytest.raises(
        ValueError, match=r"the position embeddings \(max_position_embeddings=1000000000 x hidden_size"
    ):
        headway.AutoModel.from_pretrained(folder)


@pytest.mark.parametrize(
    ("family", "field"), [("bert", "num_hidden_layers"), ("gpt2", "n_layer"), ("llama", "num_hidden_layers")]
)
def test_layer_count_far_beyond_the_checkpoint_is_refused_at_once(env, tmp_path, family, field):
    """The campaign's hangs: 10**5 layers beside a 2-layer checkpoint built for minutes."""
    folder = shutil.copytree(env.folders[family], tmp_path / "m")
    _edit_json(folder / "config.json", **{field: 10**5})
    with pytest.raises(
        ValueError,
        match=rf"asks for {field}=100000 layers, but the weights in model.safetensors of "
        ".* hold 2",
    ):
        headway.AutoModel.from_pretrained(folder)
    with pytest.raises(
        ValueError, match=rf"asks for {field}=100000 layers; headway builds at most 4096 per stack"
    ):
        headway.AutoModel.from_config(headway.AutoConfig.from_pretrained(folder))


# -- runtime ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value"), [("max_new_tokens", 2.5), ("max_new_tokens", "3"), ("min_new_tokens", 1.5)]
)
def test_generation_token_counts_type(env, name, value):
    expected = "a positive int" if name == "max_new_tokens" else "a non-negative int"
    with pytest.raises(ValueError, match=f"GenerationConfig.{name} must be {expected} .*got {value!r}"):
        env.pipelines["text-generation"]("hello", **{"max_new_tokens": 3, name: value})


def test_multiple_choice_takes_rows_of_choices():
    config = headway.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    model = headway.AutoModelForMultipleChoice.from_config(config).eval()
    assert model(input_ids=torch.ones(2, 3, 5, dtype=torch.long)).logits.shape == (2, 3)
    with pytest.raises(
        ValueError,
        match=r"BertForMultipleChoice takes input_ids of shape \(batch, num_choices, "
        r"seq_len\), one row of choices per example; got \(3, 5\).*pass input_ids\[None\]",
    ):
        model(input_ids=torch.ones(3, 5, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"takes inputs_embeds of shape \(batch, num_choices, seq_len, hidden_size\)"
    ):
        model(inputs_embeds=torch.ones(3, 5, 16))
