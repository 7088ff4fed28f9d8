"""The reproductions of tests/fuzz/known_issues.py, one per issue, expected to fail until the owner fixes it.

Each is ``xfail(strict=True)``: once fixed, the test passes, the run reports it (XPASS fails the run), and
the entry comes out of KNOWN_ISSUES (so the fuzz suites hold the fix) together with the marker here.
"""

from __future__ import annotations

import json
import shutil

import pytest

import headway

REASON = "known issue, see tests/fuzz/known_issues.py"


@pytest.fixture
def tokenizer_folder(env, tmp_path):
    return shutil.copytree(env.folders["vocab_only"], tmp_path / "tok")


@pytest.mark.xfail(strict=True, reason=REASON)
def test_vocab_txt_not_utf8_is_a_clear_error(tokenizer_folder):
    """Listed under "Why" in issue #11: a bare Exception for a non-UTF-8 vocab.txt."""
    path = tokenizer_folder / "vocab.txt"
    path.write_bytes(path.read_bytes() + b"\xff\xfe\n")
    with pytest.raises(ValueError, match="vocab.txt"):
        headway.AutoTokenizer.from_pretrained(tokenizer_folder)


@pytest.mark.xfail(strict=True, reason=REASON)
def test_vocab_txt_without_unk_is_named_on_load(tokenizer_folder):
    path = tokenizer_folder / "vocab.txt"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if line != "[UNK]") + "\n")
    with pytest.raises(ValueError, match="vocab.txt"):
        headway.AutoTokenizer.from_pretrained(tokenizer_folder)("hello 東")


@pytest.mark.xfail(strict=True, reason=REASON)
@pytest.mark.parametrize(
    "field", [{"do_lower_case": 7}, {"tokenizer_class": [1, 2]}, {"model_max_length": "inf"}]
)
def test_tokenizer_config_field_types(env, tmp_path, field):
    folder = shutil.copytree(env.folders["tokenizer"], tmp_path / "tok")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    value = float("inf") if field.get("model_max_length") == "inf" else next(iter(field.values()))
    config[next(iter(field))] = value
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises((ValueError, TypeError), match=f"tokenizer_config.json|{next(iter(field))}"):
        headway.AutoTokenizer.from_pretrained(folder)("hello world")


@pytest.mark.xfail(strict=True, reason=REASON)
def test_json_integer_of_5000_digits_names_the_file(env, tmp_path):
    folder = shutil.copytree(env.folders["bert"], tmp_path / "m")
    (folder / "config.json").write_text('{"model_type": "bert", "vocab_size": 1' + "0" * 5000 + "}")
    with pytest.raises(ValueError, match="config.json"):
        headway.AutoConfig.from_pretrained(folder)


@pytest.mark.xfail(strict=True, reason=REASON)
@pytest.mark.parametrize(("field", "value"), [("hidden_act", "\u0000"), ("initializer_range", None)])
def test_config_fields_named(env, tmp_path, field, value):
    folder = shutil.copytree(env.folders["bert"], tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises((ValueError, TypeError), match=field):
        headway.AutoModel.from_config(headway.AutoConfig.from_pretrained(folder))


@pytest.mark.xfail(strict=True, reason=REASON)
def test_too_big_config_names_the_field(env, tmp_path):
    folder = shutil.copytree(env.folders["bert"], tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 2**40
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="intermediate_size=1099511627776"):
        headway.AutoModel.from_pretrained(folder)


@pytest.mark.xfail(strict=True, reason=REASON)
@pytest.mark.parametrize("value", [2.5, "3"])
def test_generation_max_new_tokens_type(env, value):
    with pytest.raises(ValueError, match="max_new_tokens"):
        env.pipelines["text-generation"]("hello", max_new_tokens=value)


@pytest.mark.xfail(strict=True, reason=REASON)
def test_shard_name_too_long_is_a_clear_error(env, tmp_path):
    folder = shutil.copytree(env.folders["sharded"], tmp_path / "m")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"][next(iter(index["weight_map"]))] = "é" * 300
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises((ValueError, FileNotFoundError), match="model.safetensors.index.json|é"):
        headway.AutoModel.from_pretrained(folder)
